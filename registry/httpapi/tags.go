// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// tagList is the spec's tag listing body.
type tagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// getTags lists a repository's tags in lexical order, a page at a time.
//
// end-8a: GET /v2/<name>/tags/list → 200, 404.
// end-8b: GET /v2/<name>/tags/list?n=<integer>&last=<tag> → 200, 404: at
// most n tags after last, and a Link header to the next page when there is
// one ("Listing Tags").
func (s *Server) getTags(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	n, err := s.pageLimit(q)
	if err != nil {
		return err
	}
	last, err := queryText(q, "last", errLastTagInvalid)
	if err != nil {
		return err
	}
	// n=0 asks for nothing; ask the store for one entry anyway, so an
	// unknown repository is still a 404.
	tags, more, err := s.store.Tags(r.Context(), req.repo, last, max(n, 1))
	if err != nil {
		return err
	}
	if n == 0 {
		tags, more = nil, false
	}
	if more && len(tags) > 0 {
		setNextLink(w, "/v2/"+req.repo+"/tags/list", n, tags[len(tags)-1])
	}
	writeJSON(w, r, http.StatusOK, "application/json", tagList{Name: req.repo, Tags: nonNil(tags)})
	return nil
}

// pageLimit reads the n parameter: the default page size when absent,
// capped at the maximum, PAGINATION_NUMBER_INVALID when not a count.
func (s *Server) pageLimit(q url.Values) (int, error) {
	v := q.Get("n")
	if v == "" {
		return s.pageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errPaginationNumberInvalid.WithMessage("n must be a non-negative integer, not %q", v)
	}
	return min(n, s.maxPage), nil
}

// setNextLink sets the RFC 8288 Link header to the page after last.
func setNextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
