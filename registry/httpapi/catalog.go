// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import "net/http"

// catalog is the catalog listing body.
type catalog struct {
	Repositories []string `json:"repositories"`
}

// getCatalog lists repository names in lexical order, a page at a time.
// The OCI spec leaves this endpoint out; we serve Docker's form of it,
// paginated like the tag list.
//
// GET /v2/_catalog?n=<integer>&last=<name> → 200, with a Link header to the
// next page when there is one.
func (s *Server) getCatalog(w http.ResponseWriter, r *http.Request, _ request) error {
	q := r.URL.Query()
	n, err := s.pageLimit(q)
	if err != nil {
		return err
	}
	var repos []string
	if n > 0 {
		var more bool
		repos, more, err = s.store.Catalog(r.Context(), q.Get("last"), n)
		if err != nil {
			return err
		}
		if more && len(repos) > 0 {
			setNextLink(w, "/v2/_catalog", n, repos[len(repos)-1])
		}
	}
	writeJSON(w, r, http.StatusOK, "application/json", catalog{Repositories: nonNil(repos)})
	return nil
}
