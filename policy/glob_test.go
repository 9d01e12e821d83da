// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"strings"
	"testing"
)

// mustGlob compiles a repository glob or fails the test.
func mustGlob(t *testing.T, pattern string) Glob {
	t.Helper()
	g, err := ParseGlob(pattern)
	if err != nil {
		t.Fatalf("ParseGlob(%q): %v", pattern, err)
	}
	return g
}

// TestGlobMatch proves that "*" stays within a path component, "**"
// crosses components, "?" is one character other than "/", and every
// other character, dots included, matches only itself.
func TestGlobMatch(t *testing.T) {
	tests := []struct {
		glob, repo string
		want       bool
	}{
		{"team-a/**", "team-a/app", true},
		{"team-a/**", "team-a/x/y", true},
		{"team-a/**", "team-a/tools/lint", true},
		{"team-a/**", "team-a", false},
		{"team-a/**", "team-ab/app", false},
		{"team-a/**", "other/team-a/app", false},
		{"team-a/*", "team-a/app", true},
		{"team-a/*", "team-a/x/y", false},
		{"team-a/*", "team-a", false},
		{"*/app", "team-a/app", true},
		{"*/app", "team-a/x/app", false},
		{"**/app", "team-a/x/app", true},
		{"**/app", "team-a/x/application", false},
		{"team-a/*-svc", "team-a/pay-svc", true},
		{"team-a/*-svc", "team-a/pay-svc2", false},
		{"app?", "app1", true},
		{"app?", "app", false},
		{"app?", "app12", false},
		{"a?b", "a/b", false},
		{"a.b/*", "a.b/c", true},
		{"a.b/*", "axb/c", false},
		{"a+b", "a+b", true},
		{"a+b", "aab", false},
		{"team-a/app", "team-a/app", true},
		{"team-a/app", "team-a/app/sub", false},
		{"team-a/app", "team-a/ap", false},
		{"**", "anything", true},
		{"**", "a/b/c/d", true},
		{"*", "a", true},
		{"*", "a/b", false},
	}
	for _, tt := range tests {
		t.Run(tt.glob+" "+tt.repo, func(t *testing.T) {
			g := mustGlob(t, tt.glob)
			if got := g.Match(tt.repo); got != tt.want {
				t.Errorf("ParseGlob(%q).Match(%q) = %v, want %v", tt.glob, tt.repo, got, tt.want)
			}
		})
	}
}

// TestParseGlobEmpty proves that an empty glob is refused.
func TestParseGlobEmpty(t *testing.T) {
	g, err := ParseGlob("")
	if err == nil {
		t.Fatalf("ParseGlob(\"\") = %v, want an error", g)
	}
	if !strings.Contains(err.Error(), "empty") {
		t.Errorf("ParseGlob(\"\") error = %q, want it to say the glob is empty", err)
	}
}

// TestGlobString proves that a glob writes itself as given, and that the
// zero Glob matches nothing.
func TestGlobString(t *testing.T) {
	for _, p := range []string{"team-a/**", "a.b/*", "app?", "**"} {
		if got := mustGlob(t, p).String(); got != p {
			t.Errorf("ParseGlob(%q).String() = %q", p, got)
		}
	}
	var zero Glob
	for _, repo := range []string{"", "a", "team-a/app"} {
		if zero.Match(repo) {
			t.Errorf("Glob{}.Match(%q) = true, want false", repo)
		}
	}
}
