// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// TokenResponse is the token endpoint's answer (the Docker token spec's
// fields; access_token too, for OAuth2 clients).
type TokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// Limits of a token request, checked before any password is hashed or
// anything is written to the audit log: the request is refused with 400
// [ErrInvalidRequest] beyond them.
const (
	// MaxLoginName is the longest user or robot name, in bytes: room for
	// the longest e-mail address (254 bytes by RFC 5321's path limit).
	MaxLoginName = 256
	// MaxLoginSecret is the longest password or robot token, in bytes.
	// bcrypt reads only a password's first 72 bytes and robot tokens are
	// typically 64 hexadecimal digits; 1 KiB leaves room for any
	// tool's token while keeping a request's work and memory small.
	MaxLoginSecret = 1024
	// MaxScopes is the most scopes one request may ask for. Clients ask
	// for one to three (a push with a cross-repository mount); the
	// token carries every scope granted, and it travels in a header of
	// every request, which proxies bound (8 to 16 KiB is usual).
	MaxScopes = 50
	// MaxScopeBytes bounds the scope parameters' total length, for the
	// same reason.
	MaxScopeBytes = 8 << 10
)

// ErrInvalidRequest answers a token request the endpoint will not read:
// over-long or malformed credentials, too many scopes. The spec has no
// code for it; this is OAuth 2's for the same case (RFC 6749 section
// 5.2), and the spec tells clients to treat unknown codes as UNKNOWN.
var ErrInvalidRequest = &registry.Error{Code: "INVALID_REQUEST", Message: "invalid token request", Status: http.StatusBadRequest}

// IssueToken answers the built-in token endpoint: GET /token with
// service and scope parameters, and Basic credentials of a user or robot
// (none for an anonymous token). It grants of each requested scope what
// the policy allows the caller, possibly nothing: a client then learns
// from the registry's DENIED which access it lacks.
func (g *Gate) IssueToken(r *http.Request) (*TokenResponse, error) {
	if g.Issuer == nil {
		return nil, registry.ErrUnsupported.WithMessage("this registry trusts an external token service; ask it for tokens")
	}
	q := r.URL.Query()
	if s := q.Get("service"); s != "" && s != g.Service {
		return nil, registry.ErrDenied.WithMessage("tokens here are for service %q, not %q", g.Service, s)
	}
	need, err := parseScopes(q["scope"])
	if err != nil {
		return nil, err
	}
	user, secret, ok, err := g.credentials(r)
	if err != nil {
		return nil, err
	}
	name := ""
	if ok {
		if err := g.login(r, user, secret); err != nil {
			return nil, err
		}
		name = user
	}
	grant := g.grant(policy.Caller{Name: name}, need)
	now := g.now()
	tok, exp, err := g.Issuer.Issue(name, g.Service, grant, now)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{Token: tok, AccessToken: tok, ExpiresIn: int(exp / time.Second), IssuedAt: now.UTC().Format(time.RFC3339)}, nil
}

// parseScopes reads the scope parameters, each holding one or more
// scopes separated by spaces, within [MaxScopes] and [MaxScopeBytes].
func parseScopes(raw []string) ([]Access, error) {
	size := 0
	for _, s := range raw {
		size += len(s)
	}
	if size > MaxScopeBytes {
		return nil, ErrInvalidRequest.WithMessage("the scopes total %d bytes; at most %d are accepted", size, MaxScopeBytes)
	}
	var need []Access
	for _, s := range raw {
		for _, one := range strings.Fields(s) {
			if len(need) == MaxScopes {
				return nil, ErrInvalidRequest.WithMessage("more than %d scopes asked for; ask for fewer", MaxScopes)
			}
			a, err := ParseScope(one)
			if err != nil {
				return nil, registry.ErrUnsupported.WithMessage("%v", err)
			}
			need = append(need, a)
		}
	}
	return need, nil
}

// credentials returns the request's Basic credentials, ok false when it
// has none (an anonymous request, or another scheme, which the endpoint
// does not read). Malformed Basic credentials are refused with a
// challenge rather than read as anonymous, which would hide a client's
// mistake behind a later DENIED; over-long or unprintable ones with
// [ErrInvalidRequest].
func (g *Gate) credentials(r *http.Request) (user, secret string, ok bool, err error) {
	user, secret, ok = r.BasicAuth()
	if !ok {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Basic") {
			return "", "", false, &ChallengeError{Challenge: fmt.Sprintf("Basic realm=%q", g.Service),
				Err: registry.ErrUnauthorized.WithMessage("malformed Basic credentials: want base64 of name:secret")}
		}
		return "", "", false, nil
	}
	switch {
	case len(user) > MaxLoginName:
		return "", "", false, ErrInvalidRequest.WithMessage("the user name is %d bytes long; at most %d are accepted", len(user), MaxLoginName)
	case !printable(user):
		return "", "", false, ErrInvalidRequest.WithMessage("the user name must be UTF-8 text without control characters")
	case len(secret) > MaxLoginSecret:
		return "", "", false, ErrInvalidRequest.WithMessage("the password is %d bytes long; at most %d are accepted", len(secret), MaxLoginSecret)
	}
	return user, secret, true, nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

// login checks credentials under the throttle: a refusal is a
// [*ThrottledError], wrong credentials a challenge.
func (g *Gate) login(r *http.Request, user, secret string) error {
	now, addr := g.now(), ClientAddr(r)
	if g.Throttle != nil {
		if err := g.Throttle.Allow(now, user, addr); err != nil {
			return err
		}
	}
	if err := g.Identities().Authenticate(user, secret); err != nil {
		if g.Throttle != nil {
			g.Throttle.Fail(now, user, addr)
		}
		return &failedLogin{&ChallengeError{Err: registry.ErrUnauthorized.WithMessage("%v", err),
			Challenge: fmt.Sprintf("Basic realm=%q", g.Service)}}
	}
	return nil
}

// failedLogin is wrong credentials: answered with its challenge, and
// [ErrBadCredentials] to errors.Is, which tells it from malformed ones.
type failedLogin struct{ challenge *ChallengeError }

func (e *failedLogin) Error() string   { return e.challenge.Error() }
func (e *failedLogin) Unwrap() []error { return []error{e.challenge, ErrBadCredentials} }

// ClosedRefusals returns, once, the throttle's windows of refused logins
// that have ended, for the audit log ([Throttle.ClosedRefusals]).
func (g *Gate) ClosedRefusals() []Refusals {
	if g.Throttle == nil {
		return nil
	}
	return g.Throttle.ClosedRefusals(g.now())
}

// grant keeps of need what the policy allows c.
func (g *Gate) grant(c policy.Caller, need []Access) []Access {
	p := g.Policy()
	out := []Access{}
	for _, a := range need {
		var acts []string
		switch {
		case a.Type == "registry" && a.Name == "catalog":
			// Anyone may list; the catalog shows only what the caller may pull.
			acts = []string{"*"}
		case a.Type == "repository":
			for _, act := range a.Actions {
				cand := []string{act}
				if act == "*" {
					cand = []string{policy.ActionPull, policy.ActionPush, policy.ActionDelete}
				}
				for _, x := range cand {
					if !slices.Contains(acts, x) && p.Allowed(c, a.Name, x) {
						acts = append(acts, x)
					}
				}
			}
		}
		if len(acts) > 0 {
			out = append(out, Access{Type: a.Type, Name: a.Name, Actions: acts})
		}
	}
	return out
}

// ParseScope reads a scope such as repository:team-a/app:pull,push or
// registry:catalog:*.
func ParseScope(s string) (Access, error) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndex(rest, ":")
	if !ok || i <= 0 || i == len(rest)-1 {
		return Access{}, fmt.Errorf("scope %q is not type:name:actions", s)
	}
	a := Access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")}
	switch typ {
	case "repository":
		if err := registry.ValidateName(a.Name); err != nil {
			return Access{}, fmt.Errorf("scope %q: %v", s, err)
		}
	case "registry":
	default:
		return Access{}, fmt.Errorf("scope %q: unknown resource type %q", s, typ)
	}
	return a, nil
}
