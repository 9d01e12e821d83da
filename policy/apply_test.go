// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeIndex is a RetentionIndex whose methods are the test's functions; a
// method the test leaves nil fails the test when called.
type fakeIndex struct {
	t                      *testing.T
	repositoryNames        func() ([]string, error)
	repositoryState        func(repo string) (RepositoryState, error)
	removeTag              func(repo, tag, digest string, pushedAt time.Time) (bool, error)
	removeUntaggedManifest func(repo, digest string) (bool, error)
}

var _ RetentionIndex = fakeIndex{}

func (f fakeIndex) RepositoryNames(context.Context) ([]string, error) {
	if f.repositoryNames == nil {
		f.t.Fatal("unexpected RepositoryNames")
	}
	return f.repositoryNames()
}

func (f fakeIndex) RepositoryState(_ context.Context, repo string) (RepositoryState, error) {
	if f.repositoryState == nil {
		f.t.Fatalf("unexpected RepositoryState(%q)", repo)
	}
	return f.repositoryState(repo)
}

func (f fakeIndex) RemoveTag(_ context.Context, repo, tag, digest string, pushedAt time.Time) (bool, error) {
	if f.removeTag == nil {
		f.t.Fatalf("unexpected RemoveTag(%q, %q)", repo, tag)
	}
	return f.removeTag(repo, tag, digest, pushedAt)
}

func (f fakeIndex) RemoveUntaggedManifest(_ context.Context, repo, digest string) (bool, error) {
	if f.removeUntaggedManifest == nil {
		f.t.Fatalf("unexpected RemoveUntaggedManifest(%q, %q)", repo, digest)
	}
	return f.removeUntaggedManifest(repo, digest)
}

// TestPlanRetention proves that PlanRetention plans the repositories a
// rule matches, never reads the others, and leaves out plans that remove
// nothing.
func TestPlanRetention(t *testing.T) {
	p := mustParse(t, `retention:
  - repositories: "team-a/**"
    keepTags:
      - mostRecentlyPushed: 1
`)
	states := map[string]RepositoryState{
		"team-a/app":   {Name: "team-a/app", Tags: []TagState{tag("new", "sha256:1", time.Hour), tag("old", "sha256:2", day)}},
		"team-a/clean": {Name: "team-a/clean", Tags: []TagState{tag("only", "sha256:3", 100*day)}},
	}
	idx := fakeIndex{
		t:               t,
		repositoryNames: func() ([]string, error) { return []string{"team-a/app", "team-b/x", "team-a/clean"}, nil },
		repositoryState: func(repo string) (RepositoryState, error) {
			st, ok := states[repo]
			if !ok {
				t.Errorf("RepositoryState(%q) read a repository no rule matches", repo)
			}
			return st, nil
		},
	}
	plans, err := PlanRetention(context.Background(), idx, p, now)
	if err != nil {
		t.Fatalf("PlanRetention: %v", err)
	}
	want := []RepositoryPlan{{
		Repository: "team-a/app",
		RuleLine:   2,
		Tags: []TagRemoval{{
			Repository: "team-a/app", Tag: "old", Digest: "sha256:2", PushedAt: now.Add(-day),
			Why: []string{"not among the 1 most recently pushed (it is number 2)"},
		}},
	}}
	if diff := cmp.Diff(want, plans); diff != "" {
		t.Errorf("plans mismatch (-want +got):\n%s", diff)
	}
}

// TestPlanRetentionNoRules proves that without retention rules nothing is
// read and nothing planned.
func TestPlanRetentionNoRules(t *testing.T) {
	for _, p := range []*Policy{nil, {}, mustParse(t, "quotas:\n  - match: a/\n    maxTags: 1\n")} {
		plans, err := PlanRetention(context.Background(), fakeIndex{t: t}, p, now)
		if err != nil || plans != nil {
			t.Errorf("PlanRetention(%+v) = %v, %v; want nil, nil", p, plans, err)
		}
	}
}

// TestPlanRetentionErrors proves that a failure to list or read
// repositories is returned, with the plans made before it.
func TestPlanRetentionErrors(t *testing.T) {
	p := mustParse(t, "retention:\n  - repositories: \"**\"\n    keepTags:\n      - pattern: \"^v\"\n")
	boom := errors.New("boom")
	_, err := PlanRetention(context.Background(), fakeIndex{t: t, repositoryNames: func() ([]string, error) { return nil, boom }}, p, now)
	if !errors.Is(err, boom) {
		t.Errorf("PlanRetention with a failing RepositoryNames: error = %v, want %v", err, boom)
	}

	idx := fakeIndex{
		t:               t,
		repositoryNames: func() ([]string, error) { return []string{"a/one", "a/two", "a/three"}, nil },
		repositoryState: func(repo string) (RepositoryState, error) {
			if repo == "a/two" {
				return RepositoryState{}, boom
			}
			if repo == "a/three" {
				t.Errorf("RepositoryState(%q) read after an error", repo)
			}
			return RepositoryState{Name: repo, Tags: []TagState{tag("dev", "sha256:1", day)}}, nil
		},
	}
	plans, err := PlanRetention(context.Background(), idx, p, now)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading a/two") {
		t.Errorf("error = %v, want it to wrap %v and name a/two", err, boom)
	}
	if len(plans) != 1 || plans[0].Repository != "a/one" {
		t.Errorf("plans = %+v, want the plan of a/one", plans)
	}
}

// applyPlans are two repositories' plans, each with two tags and two
// manifests.
func applyPlans() []RepositoryPlan {
	plan := func(repo string, line int) RepositoryPlan {
		return RepositoryPlan{
			Repository: repo,
			RuleLine:   line,
			Tags: []TagRemoval{
				{Repository: repo, Tag: "a", Digest: "sha256:a", PushedAt: now.Add(-day), Why: []string{"too old"}},
				{Repository: repo, Tag: "b", Digest: "sha256:b", PushedAt: now.Add(-2 * day), Why: []string{"too old"}},
			},
			Manifests: []ManifestRemoval{
				{Repository: repo, Digest: "sha256:a", Why: "untagged"},
				{Repository: repo, Digest: "sha256:c", Why: "untagged"},
			},
		}
	}
	return []RepositoryPlan{plan("r/one", 3), plan("r/two", 7)}
}

// recordingIndex is a fakeIndex that records each removal as "tag repo:tag"
// or "manifest repo@digest" and answers with result.
func recordingIndex(t *testing.T, calls *[]string, result func(call string) (bool, error)) fakeIndex {
	return fakeIndex{
		t: t,
		removeTag: func(repo, tag, digest string, pushedAt time.Time) (bool, error) {
			if digest != "sha256:"+tag || pushedAt.IsZero() {
				t.Errorf("RemoveTag(%s, %s) got digest %q and push time %v from the plan", repo, tag, digest, pushedAt)
			}
			c := fmt.Sprintf("tag %s:%s", repo, tag)
			*calls = append(*calls, c)
			return result(c)
		},
		removeUntaggedManifest: func(repo, digest string) (bool, error) {
			c := fmt.Sprintf("manifest %s@%s", repo, digest)
			*calls = append(*calls, c)
			return result(c)
		},
	}
}

// TestApplyRetention proves that ApplyRetention removes each plan's tags
// before its manifests and files a removal the index refuses under
// Skipped, the others under Removed.
func TestApplyRetention(t *testing.T) {
	var calls []string
	refused := map[string]bool{"tag r/one:b": true, "manifest r/one@sha256:c": true, "tag r/two:a": true}
	idx := recordingIndex(t, &calls, func(c string) (bool, error) { return !refused[c], nil })
	plans := applyPlans()
	got, err := ApplyRetention(context.Background(), idx, plans)
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	wantCalls := []string{
		"tag r/one:a", "tag r/one:b", "manifest r/one@sha256:a", "manifest r/one@sha256:c",
		"tag r/two:a", "tag r/two:b", "manifest r/two@sha256:a", "manifest r/two@sha256:c",
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
	one, two := plans[0], plans[1]
	want := Applied{
		Removed: []RepositoryPlan{
			{Repository: "r/one", RuleLine: 3, Tags: one.Tags[:1], Manifests: one.Manifests[:1]},
			{Repository: "r/two", RuleLine: 7, Tags: two.Tags[1:], Manifests: two.Manifests},
		},
		Skipped: []RepositoryPlan{
			{Repository: "r/one", RuleLine: 3, Tags: one.Tags[1:], Manifests: one.Manifests[1:]},
			{Repository: "r/two", RuleLine: 7, Tags: two.Tags[:1]},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Applied mismatch (-want +got):\n%s", diff)
	}
}

// TestApplyRetentionStops proves that ApplyRetention stops at the first
// error, saying what it was removing, and returns what it did until then.
func TestApplyRetentionStops(t *testing.T) {
	boom := errors.New("boom")
	plans := applyPlans()
	one := plans[0]
	tests := []struct {
		name      string
		failAt    string
		refuse    string
		wantErr   string
		wantCalls int
		want      Applied
	}{
		{
			name:      "at a manifest",
			failAt:    "manifest r/one@sha256:c",
			refuse:    "tag r/one:b",
			wantErr:   "removing manifest r/one@sha256:c",
			wantCalls: 4,
			want: Applied{
				Removed: []RepositoryPlan{{Repository: "r/one", RuleLine: 3, Tags: one.Tags[:1], Manifests: one.Manifests[:1]}},
				Skipped: []RepositoryPlan{{Repository: "r/one", RuleLine: 3, Tags: one.Tags[1:]}},
			},
		},
		{
			name:      "at the second tag",
			failAt:    "tag r/one:b",
			wantErr:   "removing tag r/one:b",
			wantCalls: 2,
			want:      Applied{Removed: []RepositoryPlan{{Repository: "r/one", RuleLine: 3, Tags: one.Tags[:1]}}},
		},
		{
			name:      "at a tag of the second plan",
			failAt:    "tag r/two:a",
			wantErr:   "removing tag r/two:a",
			wantCalls: 5,
			want:      Applied{Removed: []RepositoryPlan{one}},
		},
		{
			name:      "at the first tag",
			failAt:    "tag r/one:a",
			wantErr:   "removing tag r/one:a",
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			idx := recordingIndex(t, &calls, func(c string) (bool, error) {
				if c == tt.failAt {
					return false, boom
				}
				return c != tt.refuse, nil
			})
			got, err := ApplyRetention(context.Background(), idx, applyPlans())
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want it to wrap %v and say %q", err, boom, tt.wantErr)
			}
			if len(calls) != tt.wantCalls {
				t.Errorf("made %d calls %v, want %d", len(calls), calls, tt.wantCalls)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Applied mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPrintPlans proves that PrintPlans writes one line per removal,
// starting with the verb, tags before manifests.
func TestPrintPlans(t *testing.T) {
	plans := []RepositoryPlan{{
		Repository: "team-a/app",
		RuleLine:   8,
		Tags: []TagRemoval{
			{Tag: "dev", Digest: "sha256:d", Why: []string{`pattern "^v" does not match`, "not among the 1 most recently pushed (it is number 2)"}},
		},
		Manifests: []ManifestRemoval{{Digest: "sha256:u", Why: "untagged, and no kept tag reaches it"}},
	}, {Repository: "team-b/x", RuleLine: 12, Manifests: []ManifestRemoval{{Digest: "sha256:v", Why: "its tags are removed"}}}}
	for _, verb := range []string{"delete", "deleted"} {
		var buf bytes.Buffer
		PrintPlans(&buf, verb, plans)
		want := verb + ` tag team-a/app:dev (sha256:d; rule at line 8): pattern "^v" does not match; not among the 1 most recently pushed (it is number 2)
` + verb + ` manifest team-a/app@sha256:u (rule at line 8): untagged, and no kept tag reaches it
` + verb + ` manifest team-b/x@sha256:v (rule at line 12): its tags are removed
`
		if diff := cmp.Diff(want, buf.String()); diff != "" {
			t.Errorf("PrintPlans(%q) mismatch (-want +got):\n%s", verb, diff)
		}
	}
	var buf bytes.Buffer
	PrintPlans(&buf, "delete", nil)
	if buf.Len() != 0 {
		t.Errorf("PrintPlans(nil) wrote %q", buf.String())
	}
}

// TestCounts proves that Counts adds up the tags and manifests of all plans.
func TestCounts(t *testing.T) {
	tests := []struct {
		name                 string
		plans                []RepositoryPlan
		wantTags, wantManifs int
	}{
		{"none", nil, 0, 0},
		{"two plans", applyPlans(), 4, 4},
		{"manifests only", []RepositoryPlan{{Manifests: make([]ManifestRemoval, 3)}}, 0, 3},
	}
	for _, tt := range tests {
		tags, manifests := Counts(tt.plans)
		if tags != tt.wantTags || manifests != tt.wantManifs {
			t.Errorf("%s: Counts = %d, %d; want %d, %d", tt.name, tags, manifests, tt.wantTags, tt.wantManifs)
		}
	}
}
