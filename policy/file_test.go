// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const exampleFile = `quotas:
  - match: "team-a/"
    maxBytes: 10GiB
    maxTags: 500
  - match: "team-a/app"
    maxBytes: 1GiB
retention:
  - repositories: "team-a/**"
    keepTags:
      - pattern: "^v[0-9]"
      - mostRecentlyPushed: 10
      - pulledWithin: 720h
      - pushedWithin: 168h
    deleteUntagged: true
`

// policyOpts compares policies: regular expressions and globs by how they
// are written, nil and empty lists alike.
var policyOpts = cmp.Options{
	cmp.Comparer(func(a, b *regexp.Regexp) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.String() == b.String()
	}),
	cmp.Comparer(func(a, b Glob) bool { return a.String() == b.String() }),
	cmpopts.EquateEmpty(),
}

// mustParse parses a policy file or fails the test.
func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// TestParseExample proves that the documented example parses to the
// expected quotas and retention rule, unset limits at -1 and lines kept.
func TestParseExample(t *testing.T) {
	want := &Policy{
		Quotas: []Quota{
			{Match: "team-a/", MaxBytes: 10 << 30, MaxTags: 500, Line: 2},
			{Match: "team-a/app", MaxBytes: 1 << 30, MaxTags: -1, Line: 5},
		},
		Retention: []Retention{{
			Repositories: mustGlob(t, "team-a/**"),
			KeepTags: []KeepRule{
				{Pattern: regexp.MustCompile("^v[0-9]")},
				{MostRecentlyPushed: 10},
				{PulledWithin: 720 * time.Hour},
				{PushedWithin: 168 * time.Hour},
			},
			DeleteUntagged: true,
			UntaggedGrace:  DefaultUntaggedGrace,
			Line:           8,
		}},
	}
	if diff := cmp.Diff(want, mustParse(t, exampleFile), policyOpts); diff != "" {
		t.Errorf("Parse(example) mismatch (-want +got):\n%s", diff)
	}
}

// TestParseOptionalFields proves that byte counts without a unit, a
// maxTags of zero, deleteUntagged false and an untaggedGrace are read.
func TestParseOptionalFields(t *testing.T) {
	src := `quotas:
  - match: solo
    maxBytes: 1024
    maxTags: 0
retention:
  - repositories: "**"
    deleteUntagged: false
    untaggedGrace: 90m
`
	want := &Policy{
		Quotas: []Quota{{Match: "solo", MaxBytes: 1024, MaxTags: 0, Line: 2}},
		Retention: []Retention{{
			Repositories:  mustGlob(t, "**"),
			UntaggedGrace: 90 * time.Minute,
			Line:          6,
		}},
	}
	if diff := cmp.Diff(want, mustParse(t, src), policyOpts); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

// TestParseEmpty proves that a file with no content, only comments or a
// bare null is an empty policy, not an error.
func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# no policy yet\n# really\n", "---\n", "~\n"} {
		p, err := Parse([]byte(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if diff := cmp.Diff(&Policy{}, p, policyOpts); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", src, diff)
		}
	}
}

// TestParseRefusals proves that each mistake is refused with its line,
// the path of the key and a phrase saying what is wrong.
func TestParseRefusals(t *testing.T) {
	const rt = "retention:\n  - repositories: \"a/**\"\n"
	tests := []struct {
		name string
		src  string
		want []string // phrases of the error
	}{
		{"unknown top-level key", "quota:\n  - match: a/\n",
			[]string{"line 1: quota: unknown key", "known here: access, groups, quotas, remotes, retention, scanning, virtual, webhooks"}},
		{"unknown key in a quota", "quotas:\n  - match: a/\n    maxTags: 1\n    maxbytes: 1GiB\n",
			[]string{"line 4: quotas[0].maxbytes: unknown key", "known here: match, maxBytes, maxTags"}},
		{"key given twice", "quotas:\n  - match: a/\n    maxTags: 1\n    maxTags: 2\n",
			[]string{"line 4: quotas[0].maxTags: key given twice"}},
		{"top-level key given twice", "quotas: []\nretention: []\nquotas: []\n",
			[]string{"line 3: quotas: key given twice"}},
		{"quota without match", "quotas:\n  - maxTags: 1\n",
			[]string{"line 2: quotas[0]: needs match"}},
		{"quota without any limit", "quotas:\n  - match: a/\n",
			[]string{"line 2: quotas[0]: sets no limit", "maxBytes, maxTags"}},
		{"bad size", "quotas:\n  - match: a/\n    maxBytes: lots\n",
			[]string{`line 3: quotas[0].maxBytes: "lots" is not a size`}},
		{"negative size", "quotas:\n  - match: a/\n    maxBytes: -5GiB\n",
			[]string{`line 3: quotas[0].maxBytes: size "-5GiB" is negative`}},
		{"negative maxTags", "quotas:\n  - match: a/\n    maxTags: -1\n",
			[]string{"line 3: quotas[0].maxTags: must be at least 0, not -1"}},
		{"fractional maxTags", "quotas:\n  - match: a/\n    maxTags: 1.5\n",
			[]string{`line 3: quotas[0].maxTags: must be a whole number, not "1.5"`}},
		{"match not a name", "quotas:\n  - match: \"Team-A/\"\n    maxTags: 1\n",
			[]string{`line 2: quotas[0].match: "Team-A/" is neither a repository name nor a namespace`}},
		{"match not a string", "quotas:\n  - match: 5\n    maxTags: 1\n",
			[]string{"line 2: quotas[0].match: must be a string; quote it"}},
		{"match empty", "quotas:\n  - match: \"\"\n    maxTags: 1\n",
			[]string{"line 2: quotas[0].match: must not be empty"}},
		{"duplicate match", "quotas:\n  - match: a/\n    maxTags: 1\n  - match: a/\n    maxBytes: 1GiB\n",
			[]string{`line 4: quotas[1].match: "a/" already has a quota at line 2`}},
		{"quotas not a list", "quotas:\n  match: a/\n",
			[]string{"line 2: quotas: must be a list"}},
		{"quota not a mapping", "quotas:\n  - a/\n",
			[]string{"line 2: quotas[0]: must be a mapping"}},
		{"document not a mapping", "- quotas\n",
			[]string{"line 1: must be a mapping"}},
		{"retention without repositories", "retention:\n  - deleteUntagged: true\n",
			[]string{"line 2: retention[0]: needs repositories"}},
		{"two rules in one keepTags entry", rt + "    keepTags:\n      - pattern: x\n        mostRecentlyPushed: 3\n",
			[]string{"line 4: retention[0].keepTags[0]: give exactly one rule per list entry"}},
		{"empty keepTags entry", rt + "    keepTags:\n      - {}\n",
			[]string{"line 4: retention[0].keepTags[0]: give exactly one rule per list entry"}},
		{"unknown keep rule", rt + "    keepTags:\n      - newest: 3\n",
			[]string{"line 4: retention[0].keepTags[0].newest: unknown key", "mostRecentlyPushed"}},
		{"bad pattern", rt + "    keepTags:\n      - pattern: \"v[0-9\"\n",
			[]string{"line 4: retention[0].keepTags[0].pattern: not a regular expression"}},
		{"duration in days", rt + "    keepTags:\n      - pulledWithin: 30d\n",
			[]string{`line 4: retention[0].keepTags[0].pulledWithin: "30d" is not a duration`, "720h"}},
		{"zero duration", rt + "    keepTags:\n      - pushedWithin: 0s\n",
			[]string{"line 4: retention[0].keepTags[0].pushedWithin: must be above zero, not 0s"}},
		{"zero grace", rt + "    untaggedGrace: 0s\n",
			[]string{"line 3: retention[0].untaggedGrace: must be above zero"}},
		{"mostRecentlyPushed 0", rt + "    keepTags:\n      - mostRecentlyPushed: 0\n",
			[]string{"line 4: retention[0].keepTags[0].mostRecentlyPushed: must be at least 1, not 0"}},
		{"deleteUntagged yes", rt + "    deleteUntagged: yes\n",
			[]string{`line 3: retention[0].deleteUntagged: must be true or false, not "yes"`}},
		{"deleteUntagged quoted", rt + "    deleteUntagged: \"true\"\n",
			[]string{`line 3: retention[0].deleteUntagged: must be true or false, not "true"`}},
		{"bad repositories", "retention:\n  - repositories: [a]\n",
			[]string{"line 2: retention[0].repositories: must be a single value"}},
		{"second document", "quotas: []\n---\nretention: []\n",
			[]string{"line 2: a second YAML document"}},
		{"invalid YAML", "quotas: [\n",
			[]string{"not valid YAML", "line 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", p)
			}
			if p != nil {
				t.Errorf("Parse returned a policy with its error: %+v", p)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestParseAllErrors proves that every error in a file is reported in one
// error, each a FieldError with its own line and key.
func TestParseAllErrors(t *testing.T) {
	src := `quotas:
  - match: a/
  - match: b/
    maxTags: -3
retention:
  - keepTags:
      - pulledWithin: 30d
`
	_, err := Parse([]byte(src))
	if err == nil {
		t.Fatal("Parse succeeded, want an error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %q is not a joined error", err)
	}
	var got []FieldError
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %q is not a FieldError", e)
		}
		got = append(got, FieldError{Line: fe.Line, Key: fe.Key})
	}
	want := []FieldError{
		{Line: 2, Key: "quotas[0]"},
		{Line: 4, Key: "quotas[1].maxTags"},
		{Line: 7, Key: "retention[0].keepTags[0].pulledWithin"},
		{Line: 6, Key: "retention[0]"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

// TestParseEmptyRepositories proves that an empty repositories glob, a
// rule that would match nothing, is refused with its line and key.
func TestParseEmptyRepositories(t *testing.T) {
	p, err := Parse([]byte("retention:\n  - repositories: \"\"\n    deleteUntagged: true\n"))
	if err == nil {
		t.Fatalf("Parse = %+v, want an error for the empty glob", p.Retention)
	}
	if !strings.Contains(err.Error(), "line 2: retention[0].repositories: must not be empty") {
		t.Errorf("error = %q, want it to name line 2 and retention[0].repositories", err)
	}
}

// TestParseEmptyPattern proves that an empty pattern is refused rather
// than dropped: dropped, the other rules would remove tags that "" (which
// matches every name) says to keep.
func TestParseEmptyPattern(t *testing.T) {
	src := "retention:\n  - repositories: \"**\"\n    keepTags:\n      - pattern: \"\"\n      - mostRecentlyPushed: 1\n"
	p, err := Parse([]byte(src))
	if err == nil {
		t.Fatalf("Parse = %+v, want an error for the empty pattern", p.Retention)
	}
	if !strings.Contains(err.Error(), "line 4: retention[0].keepTags[0].pattern: must not be empty") {
		t.Errorf("error = %q, want it to name line 4 and the pattern", err)
	}
}

// TestQuotasFor proves that a namespace quota covers every repository
// under it and an exact quota only its own repository, both at once.
func TestQuotasFor(t *testing.T) {
	p := mustParse(t, exampleFile)
	tests := []struct {
		repo string
		want []string // the matches of the quotas returned
	}{
		{"team-a/app", []string{"team-a/", "team-a/app"}},
		{"team-a/other", []string{"team-a/"}},
		{"team-a/app/sub", []string{"team-a/"}},
		{"team-b/x", nil},
		{"team-ab/app", nil},
		{"team-a", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, q := range p.QuotasFor(tt.repo) {
			got = append(got, q.Match)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("QuotasFor(%q) mismatch (-want +got):\n%s", tt.repo, diff)
		}
	}
	var none *Policy
	if qs := none.QuotasFor("team-a/app"); qs != nil {
		t.Errorf("(*Policy)(nil).QuotasFor = %v, want nil", qs)
	}
}

// TestRetentionFor proves that the first rule in file order matching a
// repository is the one returned, and none when no rule matches.
func TestRetentionFor(t *testing.T) {
	p := mustParse(t, `retention:
  - repositories: "team-a/app"
  - repositories: "team-a/**"
  - repositories: "*/app"
`)
	tests := []struct {
		repo     string
		wantLine int // 0: no rule
	}{
		{"team-a/app", 2},
		{"team-a/other", 3},
		{"team-a/x/app", 3},
		{"team-b/app", 4},
		{"team-b/other", 0},
	}
	for _, tt := range tests {
		r, ok := p.RetentionFor(tt.repo)
		if ok != (tt.wantLine != 0) || (ok && r.Line != tt.wantLine) {
			t.Errorf("RetentionFor(%q) = %+v, %v; want the rule at line %d", tt.repo, r, ok, tt.wantLine)
		}
	}
	var none *Policy
	if r, ok := none.RetentionFor("team-a/app"); ok || r != nil {
		t.Errorf("(*Policy)(nil).RetentionFor = %v, %v; want nil, false", r, ok)
	}
}

// TestKeepRuleString proves that each keep rule writes itself as in the file.
func TestKeepRuleString(t *testing.T) {
	tests := []struct {
		rule KeepRule
		want string
	}{
		{KeepRule{Pattern: regexp.MustCompile("^v[0-9]")}, `pattern: "^v[0-9]"`},
		{KeepRule{MostRecentlyPushed: 10}, "mostRecentlyPushed: 10"},
		{KeepRule{PulledWithin: 720 * time.Hour}, "pulledWithin: 720h0m0s"},
		{KeepRule{PushedWithin: 90 * time.Minute}, "pushedWithin: 1h30m0s"},
	}
	for _, tt := range tests {
		if got := tt.rule.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// TestLoad proves that Load reads a good file and names the path when the
// file is missing or refused.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	missing := filepath.Join(dir, "missing.yaml")
	for path, src := range map[string]string{good: exampleFile, bad: "quotas:\n  - match: a/\n"} {
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Load(good)
	if err != nil {
		t.Fatalf("Load(good): %v", err)
	}
	if diff := cmp.Diff(mustParse(t, exampleFile), p, policyOpts); diff != "" {
		t.Errorf("Load(good) mismatch (-want +got):\n%s", diff)
	}

	_, err = Load(missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want a not-exist error naming %s", err, missing)
	}
	_, err = Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 2: quotas[0]: sets no limit") {
		t.Errorf("Load(bad) error = %v, want it to name %s and the line", err, bad)
	}
}

// TestCurrent proves that Current never hands out a nil policy and that
// Set swaps the policy in force.
func TestCurrent(t *testing.T) {
	var nilCurrent *Current
	if nilCurrent.Get() == nil || NewCurrent(nil).Get() == nil {
		t.Fatal("Get returned nil")
	}
	c := NewCurrent(nil)
	if qs := c.QuotasFor("team-a/app"); len(qs) != 0 {
		t.Errorf("QuotasFor with no policy = %v, want none", qs)
	}
	c.Set(mustParse(t, exampleFile))
	if qs := c.QuotasFor("team-a/app"); len(qs) != 2 {
		t.Errorf("QuotasFor after Set = %v, want 2 quotas", qs)
	}
}
