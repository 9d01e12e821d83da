// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// RetentionIndex is what retention reads and removes through; the
// registry's index implements it. The removals are conditional, so that a
// push between a plan and its application wins over the plan.
type RetentionIndex interface {
	// RepositoryNames lists every repository.
	RepositoryNames(ctx context.Context) ([]string, error)
	// RepositoryState reads a repository's tags and manifests.
	RepositoryState(ctx context.Context, repo string) (RepositoryState, error)
	// RemoveTag removes the tag, from the bucket and the index, only if it
	// still points at digest and was last pushed at pushedAt; removed is
	// false when it has changed since.
	RemoveTag(ctx context.Context, repo, tag, digest string, pushedAt time.Time) (removed bool, err error)
	// RemoveUntaggedManifest removes the manifest only if no tag points at
	// it, no index lists it, and no tag points at its subject; removed is
	// false otherwise.
	RemoveUntaggedManifest(ctx context.Context, repo, digest string) (removed bool, err error)
}

// PlanRetention evaluates every repository a retention rule matches.
// Repositories with nothing to remove are left out.
func PlanRetention(ctx context.Context, idx RetentionIndex, p *Policy, now time.Time) ([]RepositoryPlan, error) {
	if p == nil || len(p.Retention) == 0 {
		return nil, nil
	}
	names, err := idx.RepositoryNames(ctx)
	if err != nil {
		return nil, err
	}
	var plans []RepositoryPlan
	for _, name := range names {
		r, ok := p.RetentionFor(name)
		if !ok {
			continue
		}
		st, err := idx.RepositoryState(ctx, name)
		if err != nil {
			return plans, fmt.Errorf("reading %s: %w", name, err)
		}
		if plan := r.Evaluate(st, now); !plan.Empty() {
			plans = append(plans, plan)
		}
	}
	return plans, nil
}

// Applied is what ApplyRetention did: the removals it made, and those it
// skipped because a push changed the tag or manifest since the plan.
type Applied struct {
	Removed []RepositoryPlan `json:"removed"`
	Skipped []RepositoryPlan `json:"skipped"`
}

// ApplyRetention makes the plans' removals, tags before manifests. It
// stops at the first error, returning what it did until then.
func ApplyRetention(ctx context.Context, idx RetentionIndex, plans []RepositoryPlan) (Applied, error) {
	var a Applied
	for _, p := range plans {
		done := RepositoryPlan{Repository: p.Repository, RuleLine: p.RuleLine}
		skipped := done
		for _, t := range p.Tags {
			ok, err := idx.RemoveTag(ctx, p.Repository, t.Tag, t.Digest, t.PushedAt)
			if err != nil {
				a.add(done, skipped)
				return a, fmt.Errorf("removing tag %s:%s: %w", p.Repository, t.Tag, err)
			}
			if ok {
				done.Tags = append(done.Tags, t)
			} else {
				skipped.Tags = append(skipped.Tags, t)
			}
		}
		for _, m := range p.Manifests {
			ok, err := idx.RemoveUntaggedManifest(ctx, p.Repository, m.Digest)
			if err != nil {
				a.add(done, skipped)
				return a, fmt.Errorf("removing manifest %s@%s: %w", p.Repository, m.Digest, err)
			}
			if ok {
				done.Manifests = append(done.Manifests, m)
			} else {
				skipped.Manifests = append(skipped.Manifests, m)
			}
		}
		a.add(done, skipped)
	}
	return a, nil
}

func (a *Applied) add(done, skipped RepositoryPlan) {
	if !done.Empty() {
		a.Removed = append(a.Removed, done)
	}
	if !skipped.Empty() {
		a.Skipped = append(a.Skipped, skipped)
	}
}

// Counts returns how many tags and manifests the plans remove.
func Counts(plans []RepositoryPlan) (tags, manifests int) {
	for _, p := range plans {
		tags += len(p.Tags)
		manifests += len(p.Manifests)
	}
	return tags, manifests
}

// PrintPlans writes one line per removal, verb first ("delete" for a
// plan, "deleted" for what apply did), so that a plan and its application
// compare line by line.
func PrintPlans(w io.Writer, verb string, plans []RepositoryPlan) {
	for _, p := range plans {
		for _, t := range p.Tags {
			fmt.Fprintf(w, "%s tag %s:%s (%s; rule at line %d): %s\n", verb, p.Repository, t.Tag, t.Digest, p.RuleLine, strings.Join(t.Why, "; "))
		}
		for _, m := range p.Manifests {
			fmt.Fprintf(w, "%s manifest %s@%s (rule at line %d): %s\n", verb, p.Repository, m.Digest, p.RuleLine, m.Why)
		}
	}
}
