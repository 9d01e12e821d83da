// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ha-registry/ha-registry/auth"
)

// TestClientBehindTrustedProxy: the request log (and with it everything
// after the server's first layer) sees the client a trusted proxy names,
// and the TCP peer otherwise.
func TestClientBehindTrustedProxy(t *testing.T) {
	fx := newFixture(t)
	tp, err := auth.ParseTrustedProxies([]string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, peer, xff string
		trust           *auth.TrustedProxies
		want            []string
		notWant         string
	}{
		{"trusted proxy", "10.0.0.1:4000", "198.51.100.9, 203.0.113.5", tp,
			[]string{`"remote":"203.0.113.5:0"`, `"proxy":"10.0.0.1:4000"`}, "198.51.100.9"},
		{"untrusted peer", "192.0.2.7:4000", "203.0.113.5", tp,
			[]string{`"remote":"192.0.2.7:4000"`}, "203.0.113.5"},
		{"no trusted proxies", "10.0.0.1:4000", "203.0.113.5", nil,
			[]string{`"remote":"10.0.0.1:4000"`}, "203.0.113.5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, logs := newServer(t, fx.store, Options{TrustedProxies: c.trust})
			req := httptest.NewRequest("GET", "/v2/", nil)
			req.RemoteAddr = c.peer
			req.Header.Set("X-Forwarded-For", c.xff)
			s.ServeHTTP(httptest.NewRecorder(), req)
			out := logs.String()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("log lacks %s:\n%s", w, out)
				}
			}
			if strings.Contains(out, c.notWant) {
				t.Errorf("log names %s:\n%s", c.notWant, out)
			}
		})
	}
}
