// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// localAddr is the address a test request arrived on, as net/http puts
// it in the request's context.
type localAddr string

func (a localAddr) Network() string { return "tcp" }
func (a localAddr) String() string  { return string(a) }

// requestOn is a request to target that arrived on local ("" for none).
func requestOn(method, target, local string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if local != "" {
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(localAddr(local))))
	}
	return r
}

// TestDerivedRealm: without --auth-realm the challenge's realm never
// comes from a header the client chose, only from the connection or a
// trusted proxy's forwarded headers.
func TestDerivedRealm(t *testing.T) {
	viaProxy := func(r *http.Request) *http.Request {
		return r.WithContext(WithProxyPeer(r.Context(), "10.0.0.1:40000"))
	}
	for _, c := range []struct {
		name, target, local string
		header              map[string]string
		proxied, tls        bool
		want                string
	}{
		{name: "forged Host", target: "http://evil.example/v2/", local: "192.0.2.80:5000",
			want: "http://192.0.2.80:5000/token"},
		{name: "forged forwarded headers from an untrusted peer", target: "http://evil.example/v2/", local: "192.0.2.80:5000",
			header: map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
			want:   "http://192.0.2.80:5000/token"},
		{name: "TLS connection", target: "http://evil.example/v2/", local: "192.0.2.80:5443", tls: true,
			want: "https://192.0.2.80:5443/token"},
		{name: "IPv6 connection", target: "http://evil.example/v2/", local: "[2001:db8::80]:5000",
			want: "http://[2001:db8::80]:5000/token"},
		{name: "no connection", target: "http://evil.example/v2/", want: "http://localhost/token"},
		{name: "trusted proxy's forwarded host and scheme", target: "http://evil.example/v2/", local: "192.0.2.80:5000", proxied: true,
			header: map[string]string{"X-Forwarded-Host": "registry.example", "X-Forwarded-Proto": "https"},
			want:   "https://registry.example/token"},
		{name: "trusted proxy appended to a client's forwarded host", target: "http://evil.example/v2/", local: "192.0.2.80:5000", proxied: true,
			header: map[string]string{"X-Forwarded-Host": "evil.example, registry.example:8443"},
			want:   "http://registry.example:8443/token"},
		{name: "trusted proxy without forwarded host", target: "http://evil.example/v2/", local: "192.0.2.80:5000", proxied: true,
			header: map[string]string{"X-Forwarded-Proto": "https"},
			want:   "https://192.0.2.80:5000/token"},
		{name: "forwarded host that is not a host", target: "http://evil.example/v2/", local: "192.0.2.80:5000", proxied: true,
			header: map[string]string{"X-Forwarded-Host": "evil.example/x?"},
			want:   "http://192.0.2.80:5000/token"},
		{name: "forwarded scheme that is not one", target: "http://evil.example/v2/", local: "192.0.2.80:5000", proxied: true,
			header: map[string]string{"X-Forwarded-Proto": "javascript"},
			want:   "http://192.0.2.80:5000/token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := requestOn(http.MethodGet, c.target, c.local)
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			if c.proxied {
				r = viaProxy(r)
			}
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := DerivedRealm(r); got != c.want {
				t.Errorf("realm %s, want %s", got, c.want)
			}
			// And in the challenge itself.
			g := newGate(t)
			_, err := g.Authorize(r, nil)
			var ce *ChallengeError
			if !errors.As(err, &ce) || !strings.Contains(ce.Challenge, `realm="`+c.want+`"`) {
				t.Errorf("challenge %v, want realm %s", err, c.want)
			}
			if strings.Contains(c.want, "evil") || (err != nil && strings.Contains(err.Error()+ce.Challenge, "evil.example")) {
				t.Errorf("the realm names the forged host: %s", ce.Challenge)
			}
		})
	}
}
