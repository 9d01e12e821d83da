// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

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
	// Unverified marks an Identity no one proved: the name a failed login
	// tried. The audit log stores it cut short and says so.
	Unverified bool
	// Attempts is how many attempts the record stands for (0 means 1):
	// refused logins are recorded one row per throttle window.
	Attempts int
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
// credentials → 200 with the token, 400 for over-long credentials or too
// many scopes, 401 for wrong or malformed credentials, 429 after repeated
// failures.
func (s *Server) token(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	exchangeFrom(r.Context()).route = "token"
	resp, err := s.auth.IssueToken(r)
	if s.audit != nil {
		s.auditLogin(r, err)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, "application/json", resp)
}

// refusalReporter is a token issuer whose throttle reports refused logins
// in bulk (an *auth.Gate).
type refusalReporter interface {
	ClosedRefusals() []auth.Refusals
}

// auditLogin records a failed login, and the throttle's refusals, so
// that the table grows by a bounded number of rows however many requests
// come: a wrong password is one row (the throttle bounds how many come);
// refusals of the throttle are one row at the first of a window, and one
// for the rest when it ends (written on a later request to the endpoint).
// Requests refused before any credentials were checked (malformed or
// over-long) write nothing: nothing bounds them.
func (s *Server) auditLogin(r *http.Request, err error) {
	// Not the request's context: a client that hangs up on its refusal
	// must not keep it out of the log.
	ctx := context.WithoutCancel(r.Context())
	if rr, ok := s.auth.(refusalReporter); ok {
		for _, rf := range rr.ClosedRefusals() {
			s.auditRefusals(ctx, rf, fmt.Sprintf("%s: %d more attempts refused from %s to %s", rf.Why, rf.Count-1,
				rf.Start.UTC().Format(time.RFC3339), rf.End.UTC().Format(time.RFC3339)), rf.Count-1)
		}
	}
	var throttled *auth.ThrottledError
	switch {
	case errors.As(err, &throttled):
		if throttled.First {
			rf := throttled.Refusals
			s.auditRefusals(ctx, rf, fmt.Sprintf("%s: refused until %s; later refusals are counted in one row",
				rf.Why, rf.End.UTC().Format(time.RFC3339)), 1)
		}
	case errors.Is(err, auth.ErrBadCredentials):
		user, _, _ := r.BasicAuth()
		ctx = auth.WithCaller(ctx, auth.Caller{Address: auth.ClientAddr(r)})
		s.audit(ctx, AuditRecord{Action: "login.failed", Identity: user, Unverified: true, Detail: registry.AsError(err).Message})
	}
}

// auditRefusals records attempts the throttle refused under rf's count.
func (s *Server) auditRefusals(ctx context.Context, rf auth.Refusals, detail string, attempts int) {
	ctx = auth.WithCaller(ctx, auth.Caller{Address: rf.Addr})
	s.audit(ctx, AuditRecord{Action: "login.failed", Identity: rf.Name, Unverified: rf.Name != "", Detail: detail, Attempts: attempts})
}
