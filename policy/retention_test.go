// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// now is the fixed time every retention test evaluates at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// tag is a tag pushed pushedAgo before now and never pulled.
func tag(name, digest string, pushedAgo time.Duration) TagState {
	return TagState{Name: name, Digest: digest, PushedAt: now.Add(-pushedAgo)}
}

// pulled is t last pulled pulledAgo before now.
func pulled(t TagState, pulledAgo time.Duration) TagState {
	t.LastPulled = now.Add(-pulledAgo)
	return t
}

// manifest is a manifest created createdAgo before now listing children.
func manifest(digest string, createdAgo time.Duration, children ...string) ManifestState {
	return ManifestState{Digest: digest, CreatedAt: now.Add(-createdAgo), Children: children}
}

// referrer is a manifest created createdAgo before now referring to subject.
func referrer(digest, subject string, createdAgo time.Duration) ManifestState {
	return ManifestState{Digest: digest, CreatedAt: now.Add(-createdAgo), Subject: subject}
}

// TestEvaluateKeepTags proves that each keep rule keeps the tags it
// should, that a tag any rule keeps is kept, and that the others are
// removed with one reason per rule.
func TestEvaluateKeepTags(t *testing.T) {
	semver := KeepRule{Pattern: regexp.MustCompile(`^v[0-9]`)}
	tests := []struct {
		name string
		keep []KeepRule
		tags []TagState
		want map[string][]string // removed tag: its reasons
	}{
		{
			name: "pattern",
			keep: []KeepRule{semver},
			tags: []TagState{tag("v1.0", "sha256:1", 100*day), tag("latest", "sha256:2", time.Hour), tag("dev", "sha256:3", day)},
			want: map[string][]string{
				"dev":    {`pattern "^v[0-9]" does not match`},
				"latest": {`pattern "^v[0-9]" does not match`},
			},
		},
		{
			name: "mostRecentlyPushed",
			keep: []KeepRule{{MostRecentlyPushed: 2}},
			tags: []TagState{tag("c", "sha256:3", 3*time.Hour), tag("a", "sha256:1", time.Hour), tag("b", "sha256:2", 2*time.Hour)},
			want: map[string][]string{"c": {"not among the 2 most recently pushed (it is number 3)"}},
		},
		{
			name: "mostRecentlyPushed ties go by name",
			keep: []KeepRule{{MostRecentlyPushed: 1}},
			tags: []TagState{tag("c", "sha256:3", time.Hour), tag("b", "sha256:2", time.Hour), tag("a", "sha256:1", time.Hour)},
			want: map[string][]string{
				"b": {"not among the 1 most recently pushed (it is number 2)"},
				"c": {"not among the 1 most recently pushed (it is number 3)"},
			},
		},
		{
			name: "mostRecentlyPushed above the tag count",
			keep: []KeepRule{{MostRecentlyPushed: 10}},
			tags: []TagState{tag("a", "sha256:1", 100*day), tag("b", "sha256:2", 200*day)},
		},
		{
			name: "pulledWithin",
			keep: []KeepRule{{PulledWithin: 30 * day}},
			tags: []TagState{
				pulled(tag("recent", "sha256:1", 400*day), time.Hour),
				tag("never", "sha256:2", 400*day),
				pulled(tag("stale", "sha256:3", 400*day), 31*day),
				pulled(tag("edge", "sha256:4", 400*day), 30*day),
			},
			want: map[string][]string{"stale": {"last pulled 2026-01-29T12:00:00Z, over 720h0m0s ago"}},
		},
		{
			name: "pushedWithin",
			keep: []KeepRule{{PushedWithin: 7 * day}},
			tags: []TagState{tag("new", "sha256:1", time.Hour), tag("edge", "sha256:2", 7*day), tag("old", "sha256:3", 8*day)},
			want: map[string][]string{"old": {"pushed 2026-02-21T12:00:00Z, over 168h0m0s ago"}},
		},
		{
			name: "a tag any rule keeps is kept",
			keep: []KeepRule{semver, {MostRecentlyPushed: 1}, {PushedWithin: 2 * day}},
			tags: []TagState{
				tag("v1", "sha256:1", 100*day),
				tag("latest", "sha256:2", time.Hour),
				tag("fresh", "sha256:3", day),
				tag("dev", "sha256:4", 3*day),
			},
			want: map[string][]string{"dev": {
				`pattern "^v[0-9]" does not match`,
				"not among the 1 most recently pushed (it is number 3)",
				"pushed 2026-02-26T12:00:00Z, over 48h0m0s ago",
			}},
		},
		{
			name: "no keep rules keeps every tag",
			tags: []TagState{tag("a", "sha256:1", 1000*day), pulled(tag("b", "sha256:2", 1000*day), 1000*day)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Retention{KeepTags: tt.keep, UntaggedGrace: DefaultUntaggedGrace}
			plan := r.Evaluate(RepositoryState{Name: "team-a/app", Tags: tt.tags}, now)
			got := map[string][]string{}
			for _, tr := range plan.Tags {
				got[tr.Tag] = tr.Why
			}
			if tt.want == nil {
				tt.want = map[string][]string{}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("removed tags mismatch (-want +got):\n%s", diff)
			}
			if len(plan.Manifests) != 0 {
				t.Errorf("without deleteUntagged the plan removes manifests: %+v", plan.Manifests)
			}
		})
	}
}

// TestEvaluatePlan proves that a plan names the repository and the rule's
// line, lists removed tags sorted by name with their digest and push
// time, and gives each manifest removal its reason.
func TestEvaluatePlan(t *testing.T) {
	r := &Retention{KeepTags: []KeepRule{{MostRecentlyPushed: 1}}, DeleteUntagged: true, UntaggedGrace: DefaultUntaggedGrace, Line: 12}
	st := RepositoryState{
		Name: "team-a/app",
		Tags: []TagState{tag("zeta", "sha256:z", 3*day), tag("alpha", "sha256:a", 2*day), tag("main", "sha256:m", time.Hour)},
		Manifests: []ManifestState{
			manifest("sha256:z", 3*day), manifest("sha256:a", 2*day), manifest("sha256:m", time.Hour), manifest("sha256:u", 5*day),
		},
	}
	want := RepositoryPlan{
		Repository: "team-a/app",
		RuleLine:   12,
		Tags: []TagRemoval{
			{Repository: "team-a/app", Tag: "alpha", Digest: "sha256:a", PushedAt: now.Add(-2 * day), Why: []string{"not among the 1 most recently pushed (it is number 2)"}},
			{Repository: "team-a/app", Tag: "zeta", Digest: "sha256:z", PushedAt: now.Add(-3 * day), Why: []string{"not among the 1 most recently pushed (it is number 3)"}},
		},
		Manifests: []ManifestRemoval{
			{Repository: "team-a/app", Digest: "sha256:a", Why: "its tags are removed, and no kept tag reaches it"},
			{Repository: "team-a/app", Digest: "sha256:u", Why: "untagged, and no kept tag reaches it through an index or as a referrer"},
			{Repository: "team-a/app", Digest: "sha256:z", Why: "its tags are removed, and no kept tag reaches it"},
		},
	}
	got := r.Evaluate(st, now)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan mismatch (-want +got):\n%s", diff)
	}
	if got.Empty() {
		t.Error("Empty() = true for a plan with removals")
	}
	if !(RepositoryPlan{Repository: "x"}).Empty() {
		t.Error("Empty() = false for a plan without removals")
	}
}

// TestEvaluateUntagged proves which manifests deleteUntagged removes: the
// old ones no kept tag reaches through an index or as a (nested)
// referrer, never young ones or what young ones reach, indexes before
// the manifests they list.
func TestEvaluateUntagged(t *testing.T) {
	keepV := []KeepRule{{Pattern: regexp.MustCompile(`^v`)}}
	tests := []struct {
		name   string
		keep   []KeepRule
		off    bool          // deleteUntagged false
		grace  time.Duration // 0: DefaultUntaggedGrace
		tags   []TagState
		ms     []ManifestState
		want   []string // removed manifests, in plan order
		tagged []string // of want, those whose tags the plan removes
	}{
		{
			name: "deleteUntagged false removes no manifest",
			off:  true,
			keep: keepV,
			tags: []TagState{tag("old", "sha256:1", 10*day)},
			ms:   []ManifestState{manifest("sha256:1", 10*day), manifest("sha256:2", 10*day)},
		},
		{
			name: "old untagged manifest removed",
			tags: []TagState{tag("latest", "sha256:1", 10*day)},
			ms:   []ManifestState{manifest("sha256:1", 10*day), manifest("sha256:2", 10*day)},
			want: []string{"sha256:2"},
		},
		{
			name: "untagged manifest within the grace kept",
			ms:   []ManifestState{manifest("sha256:1", 23*time.Hour), manifest("sha256:2", 25*time.Hour)},
			want: []string{"sha256:2"},
		},
		{
			name:  "a shorter grace",
			grace: time.Hour,
			ms:    []ManifestState{manifest("sha256:1", 30*time.Minute), manifest("sha256:2", 2*time.Hour)},
			want:  []string{"sha256:2"},
		},
		{
			name: "children of a kept tag's index kept",
			tags: []TagState{tag("v1", "sha256:i", 10*day)},
			keep: keepV,
			ms:   []ManifestState{manifest("sha256:i", 10*day, "sha256:a", "sha256:b"), manifest("sha256:a", 10*day), manifest("sha256:b", 10*day)},
		},
		{
			name: "referrers and their referrers of a kept manifest kept",
			tags: []TagState{tag("v1", "sha256:m", 10*day)},
			keep: keepV,
			ms: []ManifestState{
				manifest("sha256:m", 10*day),
				referrer("sha256:sig", "sha256:m", 10*day),
				referrer("sha256:sigsig", "sha256:sig", 10*day),
				manifest("sha256:o", 10*day),
				referrer("sha256:osig", "sha256:o", 10*day),
			},
			want: []string{"sha256:o", "sha256:osig"},
		},
		{
			name: "referrers of a kept index's child kept",
			tags: []TagState{tag("v1", "sha256:i", 10*day)},
			keep: keepV,
			ms: []ManifestState{
				manifest("sha256:i", 10*day, "sha256:c"),
				manifest("sha256:c", 10*day),
				referrer("sha256:sbom", "sha256:c", 10*day),
			},
		},
		{
			name:   "index whose only tag is removed goes before its children",
			tags:   []TagState{tag("old", "sha256:ff", 10*day)},
			keep:   keepV,
			ms:     []ManifestState{manifest("sha256:00", 10*day), manifest("sha256:11", 10*day), manifest("sha256:ff", 10*day, "sha256:00", "sha256:11")},
			want:   []string{"sha256:ff", "sha256:00", "sha256:11"},
			tagged: []string{"sha256:ff"},
		},
		{
			name: "nested indexes removed outermost first",
			ms: []ManifestState{
				manifest("sha256:00", 10*day), manifest("sha256:55", 10*day, "sha256:00"), manifest("sha256:99", 10*day, "sha256:55"),
			},
			want: []string{"sha256:99", "sha256:55", "sha256:00"},
		},
		{
			name: "child shared with a kept index kept, the other index removed",
			tags: []TagState{tag("v1", "sha256:ka", 10*day), tag("old", "sha256:rb", 10*day)},
			keep: keepV,
			ms: []ManifestState{
				manifest("sha256:0x", 10*day), manifest("sha256:0s", 10*day), manifest("sha256:0y", 10*day),
				manifest("sha256:ka", 10*day, "sha256:0x", "sha256:0s"),
				manifest("sha256:rb", 10*day, "sha256:0s", "sha256:0y"),
			},
			want:   []string{"sha256:rb", "sha256:0y"},
			tagged: []string{"sha256:rb"},
		},
		{
			name: "young untagged index keeps its old children",
			ms:   []ManifestState{manifest("sha256:i", time.Hour, "sha256:a", "sha256:b"), manifest("sha256:a", 10*day), manifest("sha256:b", 10*day)},
		},
		{
			name: "a manifest a kept and a removed tag share is kept",
			tags: []TagState{tag("v1", "sha256:1", 10*day), tag("old", "sha256:1", 10*day)},
			keep: keepV,
			ms:   []ManifestState{manifest("sha256:1", 10*day)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Retention{KeepTags: tt.keep, DeleteUntagged: !tt.off, UntaggedGrace: tt.grace}
			if r.UntaggedGrace == 0 {
				r.UntaggedGrace = DefaultUntaggedGrace
			}
			plan := r.Evaluate(RepositoryState{Name: "team-a/app", Tags: tt.tags, Manifests: tt.ms}, now)
			var got []string
			var gotTagged []string
			for _, m := range plan.Manifests {
				got = append(got, m.Digest)
				if m.Why == "its tags are removed, and no kept tag reaches it" {
					gotTagged = append(gotTagged, m.Digest)
				} else if m.Why != "untagged, and no kept tag reaches it through an index or as a referrer" {
					t.Errorf("manifest %s: unexpected reason %q", m.Digest, m.Why)
				}
				if m.Repository != "team-a/app" {
					t.Errorf("manifest %s: repository %q", m.Digest, m.Repository)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("removed manifests mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.tagged, gotTagged); diff != "" {
				t.Errorf("manifests removed with their tags mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
