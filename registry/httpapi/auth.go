// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/registry"
)

// AuditRecord is an event that changed nothing but belongs in the audit
// log: a refusal, a failed login. The caller in the context gives the
// identity and address unless Identity is set.
type AuditRecord struct {
	Action     string
	Identity   string
	Repository string
	Detail     string
}

// Authorizer guards the API (an *auth.Gate); nil leaves it open.
type Authorizer interface {
	// Authorize returns the caller whose token grants need, or the
	// error to answer with (an *auth.ChallengeError carries its
	// WWW-Authenticate header).
	Authorize(r *http.Request, need []auth.Access) (auth.Caller, error)
	// Allowed reports whether the caller in ctx may take action on repo.
	Allowed(ctx context.Context, repo, action string) bool
	// IssueToken answers the built-in token endpoint.
	IssueToken(r *http.Request) (*auth.TokenResponse, error)
}

// need is the access a request needs, by the Docker token spec's scopes:
// reads need pull, writes pull and push (as clients ask for both), and
// deletions delete. GET /v2/ needs only a valid token.
func need(req request, method string) []auth.Access {
	repo := func(actions ...string) []auth.Access {
		return []auth.Access{{Type: "repository", Name: req.repo, Actions: actions}}
	}
	read := method == http.MethodGet || method == http.MethodHead
	switch req.kind {
	case kindBase:
		return nil
	case kindCatalog:
		return []auth.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	case kindUploads, kindUpload:
		return repo("pull", "push")
	}
	switch {
	case read:
		return repo("pull")
	case method == http.MethodDelete:
		return repo("delete")
	default:
		return repo("pull", "push")
	}
}

// authorize runs the gate for a parsed request. The request it returns
// carries the caller (or, with the gate off, the client's address) for
// the handlers and the audit log, also when the gate refuses.
func (s *Server) authorize(r *http.Request, req request) (*http.Request, error) {
	if s.auth == nil {
		return r.WithContext(auth.WithCaller(r.Context(), auth.Caller{Address: auth.ClientAddr(r)})), nil
	}
	c, err := s.auth.Authorize(r, need(req, r.Method))
	if c.Address == "" {
		c.Address = auth.ClientAddr(r)
	}
	exchangeFrom(r.Context()).caller = c.Name
	return r.WithContext(auth.WithCaller(r.Context(), c)), err
}

// auditRefusal records a request the policy refused (DENIED) in the
// audit log; other errors are the client's mistakes or failures, which
// the request log has.
func (s *Server) auditRefusal(r *http.Request, repo string, err error) {
	if s.audit == nil || !errors.Is(err, registry.ErrDenied) {
		return
	}
	// Not the request's context: a client that hangs up on its refusal
	// must not keep it out of the log.
	s.audit(context.WithoutCancel(r.Context()), AuditRecord{Action: "denied", Repository: repo, Detail: registry.AsError(err).Message})
}

// canPull reports whether the request's caller may read repo.
func (s *Server) canPull(ctx context.Context, repo string) bool {
	return s.auth == nil || s.auth.Allowed(ctx, repo, "pull")
}

// token serves the built-in token endpoint.
//
// GET /token?service=<service>&scope=<scope>... with optional Basic
// credentials → 200 with the token, 401 for wrong credentials, 429 after
// repeated failures.
func (s *Server) token(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	exchangeFrom(r.Context()).route = "token"
	resp, err := s.auth.IssueToken(r)
	if err != nil {
		if s.audit != nil && (errors.Is(err, registry.ErrUnauthorized) || errors.Is(err, registry.ErrTooManyRequests)) {
			user, _, _ := r.BasicAuth()
			ctx := auth.WithCaller(context.WithoutCancel(r.Context()), auth.Caller{Address: auth.ClientAddr(r)})
			s.audit(ctx, AuditRecord{Action: "login.failed", Identity: user, Detail: registry.AsError(err).Message})
		}
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, "application/json", resp)
}
