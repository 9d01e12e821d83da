// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

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
	var need []Access
	for _, raw := range q["scope"] {
		for _, one := range strings.Fields(raw) {
			a, err := ParseScope(one)
			if err != nil {
				return nil, registry.ErrUnsupported.WithMessage("%v", err)
			}
			need = append(need, a)
		}
	}
	name := ""
	if user, secret, ok := r.BasicAuth(); ok {
		now := g.now()
		keys := []string{"user:" + user, "addr:" + ClientAddr(r)}
		if g.Throttle != nil && g.Throttle.Blocked(now, keys...) {
			return nil, registry.ErrTooManyRequests.WithMessage("%v; wait a minute", errThrottled)
		}
		if err := g.Identities().Authenticate(user, secret); err != nil {
			if g.Throttle != nil {
				g.Throttle.Fail(now, keys...)
			}
			return nil, &ChallengeError{Err: registry.ErrUnauthorized.WithMessage("%v", err),
				Challenge: fmt.Sprintf("Basic realm=%q", g.Service)}
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
