// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/policy"
)

// retentionLockKey is held by whoever applies retention, so that one
// runner at a time removes, across the cluster.
var retentionLockKey = pglock.Key(pglock.NamespaceJobs, "retention")

// errRetentionBusy says another runner holds the lock.
var errRetentionBusy = errors.New("another retention run is in progress")

func retentionCommand() *cli.Command {
	flags := storeJobFlags(policyFlag(true),
		&cli.BoolFlag{Name: "json", Usage: "print JSON for machines instead of lines"})
	return &cli.Command{
		Name:  "retention",
		Usage: "list or remove the tags and untagged manifests the policy file's retention rules do not keep",
		Subcommands: []*cli.Command{{
			Name:  "plan",
			Usage: "list what apply would remove, and which rules failed to keep it; removes nothing",
			Flags: flags,
			Action: func(c *cli.Context) error {
				return retentionRun(c, false)
			},
		}, {
			Name:  "apply",
			Usage: "remove what plan lists; space comes back through gc",
			Description: "Evaluates the rules afresh and removes what they do not keep: tags, then untagged manifests " +
				"(with deleteUntagged), each only if no push changed it since. One run at a time across the cluster: " +
				"another one (or a replica's periodic run) makes this one skip, say so and exit 0.",
			Flags: flags,
			Action: func(c *cli.Context) error {
				return retentionRun(c, true)
			},
		}},
	}
}

func retentionRun(c *cli.Context, apply bool) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	p, err := loadPolicy(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	st, pool, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	w := c.App.Writer
	if !apply {
		plans, err := policy.PlanRetention(ctx, st, p, time.Now())
		if err != nil {
			return err
		}
		return printRetention(w, c.Bool("json"), "delete", plans, nil)
	}
	a, err := applyRetention(ctx, pool, st, p)
	if errors.Is(err, errRetentionBusy) {
		fmt.Fprintln(w, "skipped:", err)
		return nil
	}
	if perr := printRetention(w, c.Bool("json"), "deleted", a.Removed, a.Skipped); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	logApplied(log, a)
	return nil
}

// applyRetention plans and applies under the cluster-wide lock.
func applyRetention(ctx context.Context, pool *pgxpool.Pool, st *store.Store, p *policy.Policy) (policy.Applied, error) {
	lock, err := pglock.TryAcquire(ctx, pool, retentionLockKey, pglock.Exclusive)
	if errors.Is(err, pglock.ErrNotAcquired) {
		return policy.Applied{}, errRetentionBusy
	}
	if err != nil {
		return policy.Applied{}, err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	// The audit log names retention as who removed; parentheses keep it
	// apart from any user or robot name.
	ctx = auth.WithCaller(ctx, auth.Caller{Name: "(retention)"})
	plans, err := policy.PlanRetention(ctx, st, p, time.Now())
	if err != nil {
		return policy.Applied{}, err
	}
	return policy.ApplyRetention(ctx, st, plans)
}

func printRetention(w io.Writer, asJSON bool, verb string, plans, skipped []policy.RepositoryPlan) error {
	if asJSON {
		if plans == nil {
			plans = []policy.RepositoryPlan{}
		}
		out := map[string]any{"removals": plans}
		if verb == "deleted" {
			if skipped == nil {
				skipped = []policy.RepositoryPlan{}
			}
			out["skipped"] = skipped
		}
		return printJSON(w, out)
	}
	policy.PrintPlans(w, verb, plans)
	policy.PrintPlans(w, "kept, changed since the plan:", skipped)
	tags, manifests := policy.Counts(plans)
	fmt.Fprintf(w, "%s %d tags and %d manifests; gc reclaims the space\n", verb, tags, manifests)
	return nil
}

func logApplied(log zerolog.Logger, a policy.Applied) {
	tags, manifests := policy.Counts(a.Removed)
	st, sm := policy.Counts(a.Skipped)
	log.Info().Int("tags_removed", tags).Int("manifests_removed", manifests).
		Int("skipped", st+sm).Msg("retention applied")
}

// startRetention applies retention every interval with the policy in
// force, until ctx ends or the returned function is called. Every replica
// ticks; the lock lets one run at a time.
func startRetention(ctx context.Context, interval time.Duration, pool *pgxpool.Pool, st *store.Store, cur *policy.Current, log zerolog.Logger) (func(), error) {
	if interval < 0 {
		return nil, fmt.Errorf("--retention-interval may not be negative, not %s", interval)
	}
	if interval == 0 {
		return func() {}, nil
	}
	log.Info().Dur("interval", interval).Msg("periodic retention on")
	return runEvery(ctx, interval, func(ctx context.Context) {
		a, err := applyRetention(ctx, pool, st, cur.Get())
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, errRetentionBusy):
			log.Debug().Msg("retention: another replica is running it")
		case err != nil:
			log.Error().Err(err).Msg("retention run failed")
		default:
			logApplied(log, a)
		}
	}), nil
}

// startPullFlush writes the pull statistics (and the pull-through cache's
// hits and misses) every interval, and once more when stopped, so a
// replica's shutdown loses none.
func startPullFlush(ctx context.Context, interval time.Duration, log zerolog.Logger, flushes ...func(context.Context) error) func() {
	flush := func(ctx context.Context) error {
		var errs []error
		for _, f := range flushes {
			errs = append(errs, f(ctx))
		}
		return errors.Join(errs...)
	}
	stop := runEvery(ctx, interval, func(ctx context.Context) {
		if err := flush(ctx); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("writing pull statistics; kept for the next try")
		}
	})
	return func() {
		stop()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := flush(fctx); err != nil {
			log.Warn().Err(err).Msg("writing pull statistics at shutdown")
		}
	}
}

// runEvery calls fn every interval until ctx ends or the returned
// function is called, which also waits for a call in progress to return.
func runEvery(ctx context.Context, interval time.Duration, fn func(context.Context)) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			fn(ctx)
		}
	})
	return func() { cancel(); wg.Wait() }
}
