// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// Caller is who an authorized request comes from.
type Caller struct {
	// Name is the token's subject: a user or robot, "" when anonymous.
	Name string
	// Address is the client's IP address, as the registry sees it.
	Address string
	// Claims are the token's; nil only when the gate is off.
	Claims *Claims
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries, if any.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Gate guards the API with the Docker token flow: requests carry a bearer
// token, from the built-in token endpoint or a trusted external token
// service, whose access claims must grant what the request does. Every
// replica verifies every token itself with the configured keys.
type Gate struct {
	// Service is the registry's name in tokens (their audience) and in
	// challenges.
	Service string
	// Realm is the token endpoint's URL in challenges; "" means this
	// registry's own /token, as the client reached it.
	Realm string
	// Verifier checks tokens: the built-in issuer's and trusted ones'.
	Verifier *Verifier
	// Issuer signs the built-in endpoint's tokens; nil turns the endpoint
	// off (an external token service issues them all).
	Issuer *Issuer
	// Identities returns who may log in at the built-in endpoint (read on
	// every login, so that a reload applies at once).
	Identities func() *Identities
	// Policy returns the policy in force, whose access rules decide what
	// the built-in endpoint grants and what a request is denied outright.
	Policy func() *policy.Policy
	// Throttle slows down password guessing at the token endpoint.
	Throttle *Throttle
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Authorize checks that r's bearer token grants every access in need
// (none: any valid token, as for GET /v2/) and returns its caller. A
// missing, invalid or insufficient token is UNAUTHORIZED with a
// challenge naming what to ask for; an access the policy denies the
// token's subject outright is DENIED, since no token would help.
func (g *Gate) Authorize(r *http.Request, need []Access) (Caller, error) {
	raw, ok := bearer(r)
	if !ok {
		return Caller{}, g.challenge(r, need, "")
	}
	claims, err := g.Verifier.Verify(raw, g.now())
	if err != nil {
		return Caller{}, g.challenge(r, need, "invalid_token")
	}
	c := Caller{Name: claims.Subject, Address: ClientAddr(r), Claims: claims}
	for _, a := range need {
		for _, act := range a.Actions {
			if claims.Allows(a.Type, a.Name, act) {
				continue
			}
			if a.Type == "repository" && !g.Policy().Allowed(policy.Caller{Name: c.Name}, a.Name, act) {
				return c, registry.ErrDenied.WithMessage("%s may not %s %s", describe(c), act, a.Name)
			}
			return c, g.challenge(r, need, "insufficient_scope")
		}
	}
	return c, nil
}

// Allowed reports whether the caller in ctx may take action on repo: its
// token grants it, or the policy in force does. A context without an
// authorized caller is allowed nothing.
func (g *Gate) Allowed(ctx context.Context, repo, action string) bool {
	c, ok := CallerFrom(ctx)
	if !ok || c.Claims == nil {
		return false
	}
	if c.Claims.Allows("repository", repo, action) {
		return true
	}
	return g.Policy().Allowed(policy.Caller{Name: c.Name}, repo, action)
}

func describe(c Caller) string {
	if c.Name == "" {
		return "an anonymous caller"
	}
	return c.Name
}

// ChallengeError is an UNAUTHORIZED answer with the WWW-Authenticate
// header the client must follow.
type ChallengeError struct {
	Err       *registry.Error
	Challenge string
}

// Error implements error.
func (e *ChallengeError) Error() string { return e.Err.Error() }

// Unwrap lets errors.As find the registry error.
func (e *ChallengeError) Unwrap() error { return e.Err }

func (g *Gate) challenge(r *http.Request, need []Access, reason string) error {
	var b strings.Builder
	fmt.Fprintf(&b, `Bearer realm=%q,service=%q`, g.realm(r), g.Service)
	if s := scopeString(need); s != "" {
		fmt.Fprintf(&b, `,scope=%q`, s)
	}
	if reason != "" {
		fmt.Fprintf(&b, `,error=%q`, reason)
	}
	msg := "authentication required"
	switch reason {
	case "invalid_token":
		msg = "invalid or expired token"
	case "insufficient_scope":
		msg = "the token does not grant this access"
	}
	return &ChallengeError{Err: registry.ErrUnauthorized.WithMessage("%s", msg), Challenge: b.String()}
}

// realm is the token endpoint named in challenges: the configured one,
// else one derived without trusting the client's headers (see
// [DerivedRealm]).
func (g *Gate) realm(r *http.Request) string {
	if g.Realm != "" {
		return g.Realm
	}
	return DerivedRealm(r)
}

// DerivedRealm is this registry's own /token URL for r when no realm is
// configured. Host and scheme come from X-Forwarded-Host and
// X-Forwarded-Proto only when a trusted proxy forwarded r ([ProxyPeer]);
// otherwise from the address the connection arrived on and whether it is
// TLS. Never from the Host header: a client that sends Host: evil.example
// must not be told to send credentials there.
func DerivedRealm(r *http.Request) string {
	scheme, host := "http", ""
	if r.TLS != nil {
		scheme = "https"
	}
	if _, ok := ProxyPeer(r.Context()); ok {
		if p := lastValue(r.Header.Values("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := lastValue(r.Header.Values("X-Forwarded-Host")); validHost(h) {
			host = h
		}
	}
	if host == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host + "/token"
}

// lastValue is the last entry of a header that proxies append to: the one
// the nearest proxy wrote.
func lastValue(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	l := lines[len(lines)-1]
	return strings.TrimSpace(l[strings.LastIndex(l, ",")+1:])
}

// validHost accepts a host name or address with an optional port, and
// nothing that would change the meaning of the URL it goes into.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}

// scopeString writes need in the challenge's scope syntax.
func scopeString(need []Access) string {
	var parts []string
	for _, a := range need {
		parts = append(parts, a.Type+":"+a.Name+":"+strings.Join(a.Actions, ","))
	}
	return strings.Join(parts, " ")
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// ClientAddr is the request's remote address without its port: the TCP
// peer, or the client a trusted proxy named (the HTTP server rewrites
// RemoteAddr, see [TrustedProxies]); never a header a client could forge.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// errThrottled is a login refused because of earlier failures.
var errThrottled = errors.New("too many failed logins")
