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
	last, err := queryText(q, "last", errLastNameInvalid)
	if err != nil {
		return err
	}
	var repos []string
	// With authentication on, the page holds only what the caller may
	// pull: read on until it is full or the catalog ends.
	for more := true; more && len(repos) < n; {
		var page []string
		page, more, err = s.store.Catalog(r.Context(), last, n)
		if err != nil {
			return err
		}
		for _, repo := range page {
			if len(repos) == n {
				more = true
				break
			}
			if s.canPull(r.Context(), repo) {
				repos = append(repos, repo)
			}
		}
		if len(page) == 0 {
			break
		}
		last = page[len(page)-1]
		if more && len(repos) == n {
			setNextLink(w, "/v2/_catalog", n, repos[len(repos)-1])
		}
	}
	writeJSON(w, r, http.StatusOK, "application/json", catalog{Repositories: nonNil(repos)})
	return nil
}
