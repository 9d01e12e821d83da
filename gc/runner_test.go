// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/rebuild"
)

// TestOneRunnerAtATime: while a pass runs, another (as from a second
// replica, on a pool of its own) skips at once and says why, as it does
// while registry rebuild-db runs; rebuild-db refuses to start during a
// pass. The metrics count each.
func TestOneRunnerAtATime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.blob("app", "stray", "something for the pass to do")
	e.clock.advance(time.Minute)
	opts := e.opts()
	opts.Grace = 0

	skipped := counterValue(t, passesTotal.WithLabelValues("skipped"))
	completed := counterValue(t, passesTotal.WithLabelValues("completed"))
	inPass, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	opts.hooks.beforeBatch = func(Kind) {
		once.Do(func() {
			close(inPass)
			<-release
		})
	}
	first := make(chan Summary, 1)
	go func() {
		s, err := Run(ctx, opts)
		if err != nil {
			t.Errorf("the first pass: %v", err)
		}
		first <- s
	}()
	<-inPass

	other := e.opts()
	other.DB = e.otherPool()
	s, err := Run(ctx, other)
	if err != nil || s.Skipped != SkippedBusy || len(s.Removed) != 0 {
		t.Errorf("a second pass during the first: %+v, %v; want skipped as busy", s, err)
	}
	if _, err := rebuild.Run(ctx, rebuild.Options{DB: e.db, S3: e.s3, Mode: rebuild.ModeVerify, Logger: zerolog.Nop()}); !errors.Is(err, rebuild.ErrBusy) {
		t.Errorf("rebuild-db during a pass: %v, want ErrBusy", err)
	}
	close(release)
	if s := <-first; s.Skipped != "" || len(s.Removed) != 2 {
		t.Errorf("the first pass: %+v", s)
	}

	// rebuild-db holds its lock: a pass skips.
	conn, err := e.db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, rebuild.LockKey); err != nil {
		t.Fatal(err)
	}
	s, err = Run(ctx, e.opts())
	if err != nil || s.Skipped != SkippedRebuild {
		t.Errorf("a pass during rebuild-db: %+v, %v; want skipped for rebuild-db", s, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, rebuild.LockKey); err != nil {
		t.Fatal(err)
	}

	if got := counterValue(t, passesTotal.WithLabelValues("skipped")) - skipped; got != 2 {
		t.Errorf("registry_gc_passes_total{result=\"skipped\"} grew by %v, want 2", got)
	}
	if got := counterValue(t, passesTotal.WithLabelValues("completed")) - completed; got != 1 {
		t.Errorf("registry_gc_passes_total{result=\"completed\"} grew by %v, want 1", got)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
