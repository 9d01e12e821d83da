// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const remotesFile = `remotes:
  - prefix: "dockerhub/"
    url: https://registry-1.docker.io/
    library: true
    credentialsEnv: HUB
    tagRecheck: 10m
  - prefix: "ghcr/"
    url: https://ghcr.io
virtual:
  - name: "base/"
    sources: ["team-a/", "dockerhub/"]
  - name: "tools/lint"
    sources: ["team-a/lint", "ghcr/acme/lint"]
`

// TestRemotesAndVirtual proves remotes match by prefix with their
// settings and defaults, and virtual names resolve in order.
func TestRemotesAndVirtual(t *testing.T) {
	p := mustParse(t, remotesFile)
	r, ok := p.RemoteFor("dockerhub/nginx")
	if !ok || r.URL != "https://registry-1.docker.io" || !r.Library || r.CredentialsEnv != "HUB" || r.TagRecheck != 10*time.Minute {
		t.Errorf("dockerhub remote: %+v %v", r, ok)
	}
	if r, ok := p.RemoteFor("ghcr/acme/lint"); !ok || r.TagRecheck != DefaultTagRecheck {
		t.Errorf("ghcr remote: %+v %v", r, ok)
	}
	if _, ok := p.RemoteFor("team-a/app"); ok {
		t.Error("team-a/app is under a remote")
	}
	for _, c := range []struct {
		repo string
		want []string
	}{
		{"base/nginx", []string{"team-a/nginx", "dockerhub/nginx"}},
		{"tools/lint", []string{"team-a/lint", "ghcr/acme/lint"}},
		{"base/", nil},
		{"other/x", nil},
	} {
		got, ok := p.Resolve(c.repo)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("Resolve(%q) = %v %v, want %v", c.repo, got, ok, c.want)
		}
	}
}

// TestRemotesRefusals proves bad remotes and virtual names are refused
// with line and key.
func TestRemotesRefusals(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"no url", "remotes:\n  - prefix: hub/\n", "line 2: remotes[0]: needs url"},
		{"prefix not a namespace", "remotes:\n  - prefix: hub\n    url: https://x\n", `line 2: remotes[0].prefix: "hub" is not a namespace`},
		{"credentials in url", "remotes:\n  - prefix: hub/\n    url: https://u:p@x\n", "use credentialsEnv"},
		{"overlap", "remotes:\n  - prefix: hub/\n    url: https://x\n  - prefix: hub/a/\n    url: https://y\n", "overlap"},
		{"virtual without sources", "virtual:\n  - name: v/\n", "line 2: virtual[0]: needs a name and at least one source"},
		{"virtual kinds mixed", "virtual:\n  - name: v/\n    sources: [team-a/app]\n", "a namespace reads namespaces"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse([]byte(c.file)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}
