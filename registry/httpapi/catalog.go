// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"context"
	"net/http"
)

// catalog is the catalog listing body.
type catalog struct {
	Repositories []string `json:"repositories"`
}

// catalogBatch is how many names one listing query reads while the
// caller may not see every repository. Judging a name is an in-memory
// check of the caller's rights; the queries are the cost. Reading batches
// this size, the names a caller may not pull cost one query per thousand
// rather than one each.
const catalogBatch = 1000

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
	repos, next, err := s.visibleRepositories(r.Context(), last, n)
	if err != nil {
		return err
	}
	if next {
		setNextLink(w, "/v2/_catalog", n, repos[len(repos)-1])
	}
	writeJSON(w, r, http.StatusOK, "application/json", catalog{Repositories: nonNil(repos)})
	return nil
}

// visibleRepositories returns the first n repositories after last that
// the caller may pull, and whether more names follow them. With
// authentication on it reads batches of at least catalogBatch names until
// the page is full or the catalog ends.
func (s *Server) visibleRepositories(ctx context.Context, last string, n int) ([]string, bool, error) {
	batch := n
	if s.auth != nil {
		batch = max(n, catalogBatch)
	}
	var repos []string
	for n > 0 {
		names, more, err := s.store.Catalog(ctx, last, batch)
		if err != nil {
			return nil, false, err
		}
		for i, repo := range names {
			if !s.canPull(ctx, repo) {
				continue
			}
			repos = append(repos, repo)
			if len(repos) == n {
				return repos, more || i < len(names)-1, nil
			}
		}
		if !more || len(names) == 0 {
			break
		}
		last = names[len(names)-1]
	}
	return repos, false, nil
}
