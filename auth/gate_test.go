// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// gatePolicy is the access policy of the gate tests: alice is in team-a,
// bob is not, ci-bot is a robot.
const gatePolicy = `
groups:
  team-a: [alice]
access:
  - repositories: "x/y"
    pull: [alice, ci-bot]
    push: [alice]
  - repositories: "public/**"
    pull: [anonymous]
    push: [group:team-a]
  - repositories: "team-a/**"
    pull: [authenticated]
    push: [group:team-a]
    delete: [alice]
`

// newGate returns a gate with the built-in issuer (ed25519), the test
// identities, gatePolicy, a throttle of 3 failures a minute and the clock
// stopped at testNow.
func newGate(t *testing.T) *Gate {
	t.Helper()
	iss := mustIssuer(t, testIssuer, ed25519Key(t))
	p, err := policy.Parse([]byte(gatePolicy))
	if err != nil {
		t.Fatal(err)
	}
	ids := testIdentities(t)
	return &Gate{
		Service:    testAudience,
		Verifier:   mustVerifier(t, iss.Trusted(testAudience)),
		Issuer:     iss,
		Identities: func() *Identities { return ids },
		Policy:     func() *policy.Policy { return p },
		Throttle:   NewThrottle(3, time.Minute),
		Now:        func() time.Time { return testNow },
	}
}

// bearerFor is an Authorization header with a token of g's issuer.
func bearerFor(t *testing.T, g *Gate, subject string, access ...Access) string {
	t.Helper()
	tok, _, err := g.Issuer.Issue(subject, testAudience, access, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func repoAccess(name string, actions ...string) Access {
	return Access{Type: "repository", Name: name, Actions: actions}
}

// wantRegistryError checks that err is sentinel with message msg ("" for any).
func wantRegistryError(t *testing.T, err error, sentinel *registry.Error, msg string) {
	t.Helper()
	var re *registry.Error
	if !errors.Is(err, sentinel) || !errors.As(err, &re) {
		t.Fatalf("err = %v, want %s", err, sentinel.Code)
	}
	if msg != "" && re.Message != msg {
		t.Errorf("message = %q, want %q", re.Message, msg)
	}
}

func TestAuthorize(t *testing.T) {
	g := newGate(t)
	pullXY := []Access{repoAccess("x/y", "pull")}
	const challengeXY = `Bearer realm="http://registry.example/token",service="registry.example",scope="repository:x/y:pull"`
	expired, _, err := g.Issuer.Issue("alice", testAudience, pullXY, testNow.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other := mustIssuer(t, testIssuer, ed25519Key(t))
	forged, _, err := other.Issue("alice", testAudience, pullXY, testNow)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		target string // default http://registry.example/v2/x/y/manifests/latest
		local  string // the address the connection arrived on; default registry.example
		header map[string]string
		need   []Access
		// One of: the challenge of an UNAUTHORIZED answer, the message of
		// a DENIED one, or the caller's name.
		challenge, denied, caller string
	}{
		{name: "no token", need: pullXY, challenge: challengeXY},
		{name: "no token, any valid token needed",
			challenge: `Bearer realm="http://registry.example/token",service="registry.example"`},
		{name: "no token, X-Forwarded-Proto of an untrusted peer", need: pullXY, header: map[string]string{"X-Forwarded-Proto": "https"},
			challenge: challengeXY},
		{name: "no token over TLS", target: "https://registry.example:5443/v2/x/y/manifests/latest", local: "registry.example:5443", need: pullXY,
			challenge: `Bearer realm="https://registry.example:5443/token",service="registry.example",scope="repository:x/y:pull"`},
		{name: "several accesses needed",
			need:      []Access{repoAccess("x/y", "pull", "push"), repoAccess("public/app", "pull")},
			challenge: `Bearer realm="http://registry.example/token",service="registry.example",scope="repository:x/y:pull,push repository:public/app:pull"`},
		{name: "Basic credentials are no token", need: pullXY,
			header: map[string]string{"Authorization": "Basic YWxpY2U6YWxpY2Utc2VjcmV0"}, challenge: challengeXY},
		{name: "empty bearer", need: pullXY, header: map[string]string{"Authorization": "Bearer  "}, challenge: challengeXY},
		{name: "garbage token", need: pullXY, header: map[string]string{"Authorization": "Bearer not-a-token"},
			challenge: challengeXY + `,error="invalid_token"`},
		{name: "expired token", need: pullXY, header: map[string]string{"Authorization": "Bearer " + expired},
			challenge: challengeXY + `,error="invalid_token"`},
		{name: "token signed by an untrusted key", need: pullXY, header: map[string]string{"Authorization": "Bearer " + forged},
			challenge: challengeXY + `,error="invalid_token"`},
		{name: "invalid token, any valid token needed", header: map[string]string{"Authorization": "Bearer not-a-token"},
			challenge: `Bearer realm="http://registry.example/token",service="registry.example",error="invalid_token"`},
		{name: "token lacks the scope, policy allows", need: pullXY,
			header:    map[string]string{"Authorization": bearerFor(t, g, "alice", repoAccess("public/app", "pull"))},
			challenge: challengeXY + `,error="insufficient_scope"`},
		{name: "token grants pull, push needed, policy allows",
			need:      []Access{repoAccess("x/y", "pull", "push")},
			header:    map[string]string{"Authorization": bearerFor(t, g, "alice", repoAccess("x/y", "pull"))},
			challenge: `Bearer realm="http://registry.example/token",service="registry.example",scope="repository:x/y:pull,push",error="insufficient_scope"`},
		{name: "catalog not granted",
			need:      []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
			header:    map[string]string{"Authorization": bearerFor(t, g, "bob")},
			challenge: `Bearer realm="http://registry.example/token",service="registry.example",scope="registry:catalog:*",error="insufficient_scope"`},
		{name: "policy denies the user", need: pullXY,
			header: map[string]string{"Authorization": bearerFor(t, g, "bob")}, denied: "bob may not pull x/y"},
		{name: "policy denies push after granted pull",
			need:   []Access{repoAccess("team-a/app", "pull", "push")},
			header: map[string]string{"Authorization": bearerFor(t, g, "bob", repoAccess("team-a/app", "pull"))},
			denied: "bob may not push team-a/app"},
		{name: "policy denies anonymous", need: pullXY,
			header: map[string]string{"Authorization": bearerFor(t, g, "")}, denied: "an anonymous caller may not pull x/y"},
		{name: "policy denies unmatched repository", need: []Access{repoAccess("other/repo", "pull")},
			header: map[string]string{"Authorization": bearerFor(t, g, "alice")}, denied: "alice may not pull other/repo"},
		{name: "good token", need: pullXY,
			header: map[string]string{"Authorization": bearerFor(t, g, "alice", pullXY...)}, caller: "alice"},
		{name: "good token, lower-case scheme", need: pullXY,
			header: map[string]string{"Authorization": "bearer" + bearerFor(t, g, "alice", pullXY...)[len("Bearer"):]}, caller: "alice"},
		{name: "wildcard grant", need: []Access{repoAccess("team-a/app", "pull", "push", "delete")},
			header: map[string]string{"Authorization": bearerFor(t, g, "alice", repoAccess("team-a/app", "*"))}, caller: "alice"},
		{name: "any valid token, anonymous",
			header: map[string]string{"Authorization": bearerFor(t, g, "")}, caller: ""},
		{name: "robot", need: pullXY,
			header: map[string]string{"Authorization": bearerFor(t, g, "ci-bot", pullXY...)}, caller: "ci-bot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = "http://registry.example/v2/x/y/manifests/latest"
			}
			local := tc.local
			if local == "" {
				local = "registry.example"
			}
			r := requestOn(http.MethodGet, target, local)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			c, err := g.Authorize(r, tc.need)

			var ce *ChallengeError
			switch {
			case tc.challenge != "":
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a challenge", err)
				}
				if ce.Challenge != tc.challenge {
					t.Errorf("challenge:\n got %s\nwant %s", ce.Challenge, tc.challenge)
				}
				wantRegistryError(t, err, registry.ErrUnauthorized, "")
			case tc.denied != "":
				if errors.As(err, &ce) {
					t.Fatalf("err = %v with challenge %s, want DENIED without one", err, ce.Challenge)
				}
				wantRegistryError(t, err, registry.ErrDenied, tc.denied)
			default:
				if err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				if c.Name != tc.caller || c.Address != "192.0.2.1" || c.Claims == nil || c.Claims.Subject != tc.caller {
					t.Errorf("caller = %+v, want %q from 192.0.2.1 with its claims", c, tc.caller)
				}
			}
		})
	}
}

func TestAuthorizeConfiguredRealm(t *testing.T) {
	g := newGate(t)
	g.Realm = "https://auth.example/token"
	r := httptest.NewRequest(http.MethodGet, "http://evil.example/v2/", nil)
	r = r.WithContext(WithProxyPeer(r.Context(), "10.0.0.1:40000"))
	r.Header.Set("X-Forwarded-Host", "evil.example")
	_, err := g.Authorize(r, nil)
	var ce *ChallengeError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a challenge", err)
	}
	if want := `Bearer realm="https://auth.example/token",service="registry.example"`; ce.Challenge != want {
		t.Errorf("challenge = %s, want %s", ce.Challenge, want)
	}
}

func TestAllowed(t *testing.T) {
	g := newGate(t)
	withCaller := func(name string, access ...Access) context.Context {
		return WithCaller(context.Background(), Caller{Name: name, Address: "192.0.2.1", Claims: &Claims{Access: access}})
	}
	for _, tc := range []struct {
		name         string
		ctx          context.Context
		repo, action string
		want         bool
	}{
		{"claims grant", withCaller("bob", repoAccess("x/y", "pull")), "x/y", "pull", true},
		{"claims grant all", withCaller("bob", repoAccess("x/y", "*")), "x/y", "delete", true},
		{"policy allows", withCaller("alice"), "x/y", "push", true},
		{"policy allows authenticated", withCaller("bob"), "team-a/app", "pull", true},
		{"policy allows anonymous", withCaller(""), "public/app", "pull", true},
		{"neither, user", withCaller("bob", repoAccess("x/y", "pull")), "x/y", "push", false},
		{"neither, other repository", withCaller("bob", repoAccess("x/y", "pull")), "x/z", "pull", false},
		{"neither, anonymous", withCaller(""), "team-a/app", "pull", false},
		{"neither, unmatched repository", withCaller("alice"), "other/repo", "pull", false},
		{"no caller", context.Background(), "public/app", "pull", false},
		{"caller without claims", WithCaller(context.Background(), Caller{Name: "alice"}), "x/y", "pull", false},
	} {
		if got := g.Allowed(tc.ctx, tc.repo, tc.action); got != tc.want {
			t.Errorf("%s: Allowed(%q, %q) = %v, want %v", tc.name, tc.repo, tc.action, got, tc.want)
		}
	}
}

// tokenRequest is a GET /token with query, and Basic credentials unless
// user is "".
func tokenRequest(query, user, password string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://registry.example/token?"+query, nil)
	if user != "" {
		r.SetBasicAuth(user, password)
	}
	return r
}

func TestIssueToken(t *testing.T) {
	catalog := Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}
	for _, tc := range []struct {
		name, query, user, password string
		want                        []Access
	}{
		{"anonymous pull", "service=registry.example&scope=repository:public/app:pull", "", "",
			[]Access{repoAccess("public/app", "pull")}},
		{"anonymous asks for more", "scope=repository:public/app:pull,push,delete", "", "",
			[]Access{repoAccess("public/app", "pull")}},
		{"anonymous, authenticated-only repository", "scope=repository:team-a/app:pull", "", "", []Access{}},
		{"intersection", "service=registry.example&scope=repository:x/y:pull,push,delete", "alice", "alice-secret",
			[]Access{repoAccess("x/y", "pull", "push")}},
		{"wildcard, everything allowed", "scope=repository:team-a/app:*", "alice", "alice-secret",
			[]Access{repoAccess("team-a/app", "pull", "push", "delete")}},
		{"wildcard, pull allowed", "scope=repository:team-a/app:*", "bob", "bob-secret",
			[]Access{repoAccess("team-a/app", "pull")}},
		{"wildcard and named actions", "scope=repository:team-a/app:pull,*", "alice", "alice-secret",
			[]Access{repoAccess("team-a/app", "pull", "push", "delete")}},
		{"unknown action", "scope=repository:x/y:pull,own", "alice", "alice-secret",
			[]Access{repoAccess("x/y", "pull")}},
		{"nothing allowed", "scope=repository:x/y:pull", "bob", "bob-secret", []Access{}},
		{"no rule matches", "scope=repository:other/repo:pull,push,*", "alice", "alice-secret", []Access{}},
		{"robot", "scope=repository:x/y:pull,push", "ci-bot", robotToken, []Access{repoAccess("x/y", "pull")}},
		{"catalog", "scope=registry:catalog:*", "bob", "bob-secret", []Access{catalog}},
		{"anonymous catalog", "scope=registry:catalog:*", "", "", []Access{catalog}},
		{"other registry resource", "scope=registry:gc:*", "alice", "alice-secret", []Access{}},
		{"no scope", "service=registry.example", "alice", "alice-secret", []Access{}},
		{"several scopes", "scope=repository:x/y:pull+repository:public/app:push&scope=registry:catalog:*", "alice", "alice-secret",
			[]Access{repoAccess("x/y", "pull"), repoAccess("public/app", "push"), catalog}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t)
			resp, err := g.IssueToken(tokenRequest(tc.query, tc.user, tc.password))
			if err != nil {
				t.Fatalf("IssueToken: %v", err)
			}
			if resp.AccessToken != resp.Token || resp.ExpiresIn != 300 || resp.IssuedAt != "2026-03-01T12:00:00Z" {
				t.Errorf("response = %+v, want access_token = token, expires_in 300, issued_at 2026-03-01T12:00:00Z", resp)
			}
			claims, err := g.Verifier.Verify(resp.Token, testNow)
			if err != nil {
				t.Fatalf("the issued token does not verify: %v", err)
			}
			if claims.Subject != tc.user {
				t.Errorf("subject = %q, want %q", claims.Subject, tc.user)
			}
			if diff := cmp.Diff(tc.want, claims.Access); diff != "" {
				t.Errorf("granted access (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssueTokenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, query, user, password string
		want                        *registry.Error
		challenge                   string
	}{
		{"wrong service", "service=other.example&scope=repository:x/y:pull", "alice", "alice-secret", registry.ErrDenied, ""},
		{"scope without actions", "scope=repository:x/y", "alice", "alice-secret", registry.ErrUnsupported, ""},
		{"scope of unknown type", "scope=blob:x/y:pull", "", "", registry.ErrUnsupported, ""},
		{"scope with an invalid name", "scope=repository:X/Y:pull", "", "", registry.ErrUnsupported, ""},
		{"wrong password", "scope=repository:x/y:pull", "alice", "bob-secret", registry.ErrUnauthorized, `Basic realm="registry.example"`},
		{"unknown user", "scope=repository:x/y:pull", "mallory", "alice-secret", registry.ErrUnauthorized, `Basic realm="registry.example"`},
		{"wrong robot token", "scope=repository:x/y:pull", "ci-bot", "guess", registry.ErrUnauthorized, `Basic realm="registry.example"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := newGate(t).IssueToken(tokenRequest(tc.query, tc.user, tc.password))
			if resp != nil {
				t.Errorf("response = %+v, want none", resp)
			}
			wantRegistryError(t, err, tc.want, "")
			var ce *ChallengeError
			if got := errors.As(err, &ce); got != (tc.challenge != "") || got && ce.Challenge != tc.challenge {
				t.Errorf("err = %#v, want challenge %q", err, tc.challenge)
			}
		})
	}

	g := newGate(t)
	g.Issuer = nil
	_, err := g.IssueToken(tokenRequest("scope=repository:x/y:pull", "alice", "alice-secret"))
	wantRegistryError(t, err, registry.ErrUnsupported, "")
}

func TestIssueTokenThrottle(t *testing.T) {
	g := newGate(t)
	for i := range g.Throttle.Failures {
		_, err := g.IssueToken(tokenRequest("", "alice", "wrong"))
		wantRegistryError(t, err, registry.ErrUnauthorized, "")
		if t.Failed() {
			t.Fatalf("failure %d", i+1)
		}
	}
	for _, tc := range []struct {
		name, user, password, addr string
		blocked                    bool
	}{
		{"right password, blocked user", "alice", "alice-secret", "198.51.100.7:4000", true},
		{"other user, blocked address", "bob", "bob-secret", "192.0.2.1:1234", true},
		{"other user, other address", "bob", "bob-secret", "198.51.100.7:4000", false},
		{"anonymous, blocked address", "", "", "192.0.2.1:1234", false},
	} {
		r := tokenRequest("scope=repository:public/app:pull", tc.user, tc.password)
		r.RemoteAddr = tc.addr
		_, err := g.IssueToken(r)
		switch {
		case tc.blocked && !errors.Is(err, registry.ErrTooManyRequests):
			t.Errorf("%s: err = %v, want TOOMANYREQUESTS", tc.name, err)
		case !tc.blocked && err != nil:
			t.Errorf("%s: err = %v, want a token", tc.name, err)
		}
	}

	// Once the failures age out of the window, alice logs in again.
	g.Now = func() time.Time { return testNow.Add(g.Throttle.Window + time.Second) }
	if _, err := g.IssueToken(tokenRequest("", "alice", "alice-secret")); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		scope string
		want  Access
	}{
		{"repository:x/y:pull", repoAccess("x/y", "pull")},
		{"repository:alpine:pull,push", repoAccess("alpine", "pull", "push")},
		{"repository:team-a/sub/app.v2:*", repoAccess("team-a/sub/app.v2", "*")},
		{"registry:catalog:*", Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
	} {
		got, err := ParseScope(tc.scope)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", tc.scope, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseScope(%q) (-want +got):\n%s", tc.scope, diff)
		}
	}
	for _, s := range []string{
		"", "repository", "repository:x/y", "repository::pull", "repository:x/y:", ":x/y:pull",
		"blob:x/y:pull", "Repository:x/y:pull",
		"repository:X/Y:pull", "repository:x/y/:pull", "repository:x//y:pull", "repository:x/y:extra:pull",
	} {
		if a, err := ParseScope(s); err == nil {
			t.Errorf("ParseScope(%q) = %+v, want an error", s, a)
		}
	}
}
