// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// TagState is what retention knows of a tag.
type TagState struct {
	Name     string
	Digest   string
	PushedAt time.Time
	// LastPulled is the last recorded pull of the tag's manifest, by tag or
	// by digest; zero when none is recorded (pulls before this release, or
	// before a rebuild-db, were not).
	LastPulled time.Time
}

// ManifestState is what retention knows of a manifest.
type ManifestState struct {
	Digest    string
	CreatedAt time.Time
	// Subject is the digest of the manifest this one refers to, or "".
	Subject string
	// Children are the manifests an index lists.
	Children []string
}

// RepositoryState is one repository's tags and manifests.
type RepositoryState struct {
	Name      string
	Tags      []TagState
	Manifests []ManifestState
}

// TagRemoval is a tag retention removes.
type TagRemoval struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Digest     string    `json:"digest"`
	PushedAt   time.Time `json:"pushedAt"`
	// Why says, for each keep rule, why it did not keep the tag.
	Why []string `json:"why"`
}

// ManifestRemoval is an untagged manifest retention removes.
type ManifestRemoval struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Why        string `json:"why"`
}

// RepositoryPlan is what retention removes from one repository: tags
// first, then manifests, parents before the manifests they list.
type RepositoryPlan struct {
	Repository string `json:"repository"`
	// RuleLine is the line of the retention rule applied.
	RuleLine  int               `json:"ruleLine"`
	Tags      []TagRemoval      `json:"tags"`
	Manifests []ManifestRemoval `json:"manifests"`
}

// Empty reports whether the plan removes nothing.
func (p RepositoryPlan) Empty() bool { return len(p.Tags) == 0 && len(p.Manifests) == 0 }

// Evaluate decides what r removes from a repository at time now.
//
// A tag is kept when any keep rule keeps it. With deleteUntagged, a
// manifest is removed when it is older than the grace and no kept tag
// reaches it: a kept tag reaches its manifest, the manifests an index it
// reaches lists, and the referrers (signatures, SBOMs) of every manifest
// it reaches. A manifest within the grace reaches the same way, so the
// images of an index still being pushed stay.
func (r *Retention) Evaluate(st RepositoryState, now time.Time) RepositoryPlan {
	plan := RepositoryPlan{Repository: st.Name, RuleLine: r.Line}
	rank := pushRanks(st.Tags)
	kept := map[string]bool{} // manifest digests a kept tag points at
	removedTag := map[string]bool{}
	for _, t := range st.Tags {
		why, keep := r.keep(t, rank[t.Name], now)
		if keep {
			kept[t.Digest] = true
			continue
		}
		removedTag[t.Digest] = true
		plan.Tags = append(plan.Tags, TagRemoval{Repository: st.Name, Tag: t.Name, Digest: t.Digest, PushedAt: t.PushedAt, Why: why})
	}
	slices.SortFunc(plan.Tags, func(a, b TagRemoval) int { return cmp.Compare(a.Tag, b.Tag) })
	if !r.DeleteUntagged {
		return plan
	}

	byDigest := map[string]*ManifestState{}
	referrers := map[string][]string{}
	for i := range st.Manifests {
		m := &st.Manifests[i]
		byDigest[m.Digest] = m
		if m.Subject != "" {
			referrers[m.Subject] = append(referrers[m.Subject], m.Digest)
		}
	}
	reached := map[string]bool{}
	var queue []string
	reach := func(d string) {
		if !reached[d] {
			reached[d] = true
			queue = append(queue, d)
		}
	}
	for d := range kept {
		reach(d)
	}
	for _, m := range st.Manifests {
		if now.Sub(m.CreatedAt) < r.UntaggedGrace {
			reach(m.Digest)
		}
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if m, ok := byDigest[d]; ok {
			for _, c := range m.Children {
				reach(c)
			}
		}
		for _, ref := range referrers[d] {
			reach(ref)
		}
	}

	remove := map[string]bool{}
	for _, m := range st.Manifests {
		if !reached[m.Digest] {
			remove[m.Digest] = true
		}
	}
	for _, d := range parentsFirst(st.Manifests, remove) {
		why := "untagged, and no kept tag reaches it through an index or as a referrer"
		if removedTag[d] {
			why = "its tags are removed, and no kept tag reaches it"
		}
		plan.Manifests = append(plan.Manifests, ManifestRemoval{Repository: st.Name, Digest: d, Why: why})
	}
	return plan
}

// keep reports whether a rule keeps t, or why none did.
func (r *Retention) keep(t TagState, rank int, now time.Time) ([]string, bool) {
	if len(r.KeepTags) == 0 {
		return nil, true
	}
	var why []string
	for _, k := range r.KeepTags {
		switch {
		case k.Pattern != nil:
			if k.Pattern.MatchString(t.Name) {
				return nil, true
			}
			why = append(why, fmt.Sprintf("pattern %q does not match", k.Pattern.String()))
		case k.MostRecentlyPushed > 0:
			if rank <= k.MostRecentlyPushed {
				return nil, true
			}
			why = append(why, fmt.Sprintf("not among the %d most recently pushed (it is number %d)", k.MostRecentlyPushed, rank))
		case k.PulledWithin > 0:
			if t.LastPulled.IsZero() || now.Sub(t.LastPulled) <= k.PulledWithin {
				return nil, true
			}
			why = append(why, fmt.Sprintf("last pulled %s, over %s ago", t.LastPulled.UTC().Format(time.RFC3339), k.PulledWithin))
		case k.PushedWithin > 0:
			if now.Sub(t.PushedAt) <= k.PushedWithin {
				return nil, true
			}
			why = append(why, fmt.Sprintf("pushed %s, over %s ago", t.PushedAt.UTC().Format(time.RFC3339), k.PushedWithin))
		}
	}
	return why, false
}

// pushRanks numbers tags from 1, most recently pushed first; ties go by
// name so that plans are repeatable.
func pushRanks(tags []TagState) map[string]int {
	sorted := slices.Clone(tags)
	slices.SortFunc(sorted, func(a, b TagState) int {
		if c := b.PushedAt.Compare(a.PushedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	rank := make(map[string]int, len(sorted))
	for i, t := range sorted {
		rank[t.Name] = i + 1
	}
	return rank
}

// parentsFirst orders the manifests in remove so that an index comes
// before the manifests it lists (the index refuses their removal while it
// lists them), by digest otherwise.
func parentsFirst(ms []ManifestState, remove map[string]bool) []string {
	parents := map[string]int{}
	for _, m := range ms {
		if !remove[m.Digest] {
			continue
		}
		for _, c := range m.Children {
			if remove[c] {
				parents[c]++
			}
		}
	}
	children := map[string][]string{}
	var ready []string
	for _, m := range ms {
		if remove[m.Digest] {
			children[m.Digest] = m.Children
			if parents[m.Digest] == 0 {
				ready = append(ready, m.Digest)
			}
		}
	}
	var order []string
	for len(ready) > 0 {
		slices.Sort(ready)
		d := ready[0]
		ready = ready[1:]
		order = append(order, d)
		for _, c := range children[d] {
			if remove[c] {
				if parents[c]--; parents[c] == 0 {
					ready = append(ready, c)
				}
			}
		}
	}
	return order
}
