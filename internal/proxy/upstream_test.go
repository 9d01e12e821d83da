// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseChallenge proves Bearer and Basic challenges are read with
// quoted commas, escapes and unquoted values.
func TestParseChallenge(t *testing.T) {
	for _, c := range []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"`,
			"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/nginx:pull"}},
		{`Bearer realm="http://r/token",scope="repository:a:pull,push",error="insufficient_scope"`,
			"bearer", map[string]string{"realm": "http://r/token", "scope": "repository:a:pull,push", "error": "insufficient_scope"}},
		{`Basic realm="registry"`, "basic", map[string]string{"realm": "registry"}},
		{`Bearer realm=http://r/token, service=reg`, "bearer", map[string]string{"realm": "http://r/token", "service": "reg"}},
		{`Bearer realm="a \"quoted\" realm"`, "bearer", map[string]string{"realm": `a "quoted" realm`}},
		{`Bearer realm="unterminated`, "bearer", map[string]string{}},
		{``, "", map[string]string{}},
	} {
		scheme, params := parseChallenge(c.in)
		if scheme != c.scheme || !cmp.Equal(params, c.params) {
			t.Errorf("parseChallenge(%q) = %q %v, want %q %v", c.in, scheme, params, c.scheme, c.params)
		}
	}
}

// TestUpstreamName proves the library/ convention applies to one-component
// names only, and only when asked.
func TestUpstreamName(t *testing.T) {
	for _, c := range []struct {
		rest    string
		library bool
		want    string
	}{{"nginx", true, "library/nginx"}, {"bitnami/nginx", true, "bitnami/nginx"}, {"nginx", false, "nginx"}} {
		if got := UpstreamName(c.rest, c.library); got != c.want {
			t.Errorf("UpstreamName(%q, %v) = %q, want %q", c.rest, c.library, got, c.want)
		}
	}
}

// TestNewUpstreamRefuses proves only http and https URLs are accepted.
func TestNewUpstreamRefuses(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "registry-1.docker.io", "https://"} {
		if _, err := NewUpstream(u, "", "", nil); err == nil {
			t.Errorf("NewUpstream(%q) accepted", u)
		}
	}
}
