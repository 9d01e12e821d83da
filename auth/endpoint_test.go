// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ha-registry/ha-registry/registry"
)

// TestIssueTokenLimits: over-long or unprintable credentials and too many
// scopes are refused with 400 before any password is checked (so the
// throttle counts nothing), at the limits they are read.
func TestIssueTokenLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	scopes := func(n int) string {
		q := make([]string, n)
		for i := range q {
			q[i] = "scope=repository:r/app" + strconv.Itoa(i) + ":pull"
		}
		return strings.Join(q, "&")
	}
	for _, tc := range []struct {
		name, query, user, password string
		refused                     bool
	}{
		{"name at the limit", "", long(MaxLoginName), "pw", false},
		{"name over the limit", "", long(MaxLoginName + 1), "pw", true},
		{"a 3 KB name", "", long(3000), "pw", true},
		{"name with a newline", "", "alice\nbob", "pw", true},
		{"name with NUL", "", "alice\x00", "pw", true},
		{"name with DEL", "", "alice\x7f", "pw", true},
		{"name of invalid UTF-8", "", "alice\xff\xfe", "pw", true},
		{"name in another script", "", "ゆき", "pw", false},
		{"secret at the limit", "", "alice", long(MaxLoginSecret), false},
		{"secret over the limit", "", "alice", long(MaxLoginSecret + 1), true},
		{"scopes at the limit", scopes(MaxScopes), "", "", false},
		{"one scope too many", scopes(MaxScopes + 1), "", "", true},
		{"too many scopes in one parameter", "scope=" + strings.Repeat("registry:catalog:*+", MaxScopes+1), "", "", true},
		{"scopes too long together", "scope=repository:" + long(MaxScopeBytes) + ":pull", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t)
			_, err := g.IssueToken(tokenRequest(tc.query, tc.user, tc.password))
			if !tc.refused {
				if errors.Is(err, ErrInvalidRequest) {
					t.Errorf("refused at the limit: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRequest) || registry.AsError(err).HTTPStatus() != http.StatusBadRequest {
				t.Fatalf("err = %v, want 400 INVALID_REQUEST", err)
			}
			if len(g.Throttle.seen) != 0 {
				t.Errorf("a refused request was counted by the throttle: %v", g.Throttle.seen)
			}
		})
	}
}

// TestIssueTokenMalformedBasic: Basic credentials that cannot be read are
// refused with a Basic challenge instead of getting an anonymous token;
// no Authorization header, or another scheme, still gets one.
func TestIssueTokenMalformedBasic(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		refused      bool
	}{
		{"not base64", "Basic !!!not-base64!!!", true},
		{"no colon", "Basic " + "YWxpY2U=", true}, // "alice"
		{"empty", "Basic ", true},
		{"scheme in lower case", "basic YWxpY2U=", true},
		{"no header", "", false},
		{"another scheme", "Bearer abc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tokenRequest("scope=repository:public/app:pull", "", "")
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			resp, err := newGate(t).IssueToken(r)
			if !tc.refused {
				if err != nil || resp == nil {
					t.Fatalf("err = %v, want an anonymous token", err)
				}
				return
			}
			var ce *ChallengeError
			if !errors.As(err, &ce) || !errors.Is(err, registry.ErrUnauthorized) || ce.Challenge != `Basic realm="registry.example"` {
				t.Fatalf("err = %#v, want UNAUTHORIZED with a Basic challenge", err)
			}
			if !strings.Contains(err.Error(), "malformed Basic credentials") {
				t.Errorf("message %q does not say the credentials are malformed", err)
			}
		})
	}
}

// TestIssueTokenLockOutByName: someone guessing alice's password from one
// address does not lock alice out from hers; from many addresses, the
// name's ceiling does, and says so.
func TestIssueTokenLockOutByName(t *testing.T) {
	g := newGate(t)
	attempt := func(user, password, addr string) error {
		r := tokenRequest("", user, password)
		r.RemoteAddr = addr + ":4000"
		_, err := g.IssueToken(r)
		return err
	}
	for range g.Throttle.Failures {
		if err := attempt("alice", "guess", "203.0.113.66"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("a wrong password: %v", err)
		}
	}
	if err := attempt("alice", "alice-secret", "203.0.113.66"); !errors.Is(err, registry.ErrTooManyRequests) {
		t.Errorf("the guesser's next attempt: %v, want TOOMANYREQUESTS", err)
	}
	if err := attempt("alice", "alice-secret", "192.0.2.10"); err != nil {
		t.Errorf("alice from her own address after a guesser's failures: %v, want a token", err)
	}

	// A distributed guess reaches the name's ceiling.
	for i := g.Throttle.Failures; i < NameFactor*g.Throttle.Failures; i++ {
		if err := attempt("alice", "guess", "198.51.100."+strconv.Itoa(i)); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password %d: %v", i+1, err)
		}
	}
	err := attempt("alice", "alice-secret", "192.0.2.10")
	if !errors.Is(err, registry.ErrTooManyRequests) || !strings.Contains(err.Error(), "too many failed logins of this name") {
		t.Errorf("alice after %d failures from many addresses: %v, want TOOMANYREQUESTS for the name", NameFactor*g.Throttle.Failures, err)
	}
}
