// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Op is one operation of a workload, run by client number worker for its
// iter-th time. It reports the payload bytes it moved and the bytes of
// blob content that crossed the registry (they differ for a redirected
// pull), and calls c.Begin once its untimed preparation is done.
type Op func(ctx context.Context, c *Call) error

// Call is the state of one operation: who runs it and what it moved.
type Call struct {
	Worker, Iter int
	// Bytes is the payload moved, counted into [Result.Bytes].
	Bytes int64
	// RegistryBytes is the response body bytes read from the registry
	// itself, counted into [Result.RegistryBytes].
	RegistryBytes int64
	start         time.Time
}

// Begin starts the operation's clock, leaving out what came before it.
func (c *Call) Begin() { c.start = time.Now() }

// Result is what one run of a workload measured.
type Result struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	Clients  int    `json:"clients"`
	Ops      int    `json:"ops"`
	Errors   int    `json:"errors"`
	// FirstError is the first error met, if any.
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	// Bytes is the payload moved; RegistryBytes the part of it read from
	// the registry (zero when blob pulls are redirected to S3).
	Bytes         int64         `json:"bytes"`
	RegistryBytes int64         `json:"registry_bytes"`
	P50           time.Duration `json:"p50_ns"`
	P99           time.Duration `json:"p99_ns"`
	// PeakRSS is the highest resident set size of the watched process
	// during the run, in bytes; 0 when no process is watched.
	PeakRSS int64 `json:"peak_rss"`
}

// OpsPerSec is the throughput in successful operations per second.
func (r Result) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// MiBPerSec is the payload throughput in MiB per second.
func (r Result) MiBPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / (1 << 20) / r.Elapsed.Seconds()
}

// RunOptions bound a run: it lasts Duration, but runs at least MinOps
// operations per client and at most MaxOps in all (0: no bound).
type RunOptions struct {
	Clients  int
	Duration time.Duration
	MinOps   int
	MaxOps   int
	// PID is a local process whose peak RSS to record; 0 for none.
	PID int
}

// Run runs op from opts.Clients clients at once and measures it.
func Run(ctx context.Context, op Op, opts RunOptions) Result {
	clients := max(opts.Clients, 1)
	var rss *RSSSampler
	if opts.PID > 0 {
		rss = SampleRSS(opts.PID, 20*time.Millisecond)
	}
	type outcome struct {
		lat             []time.Duration
		bytes, regBytes int64
		errors          int
		firstErr        error
	}
	outs := make([]outcome, clients)
	var (
		mu   sync.Mutex
		done int
	)
	take := func() bool {
		if opts.MaxOps <= 0 {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		if done >= opts.MaxOps {
			return false
		}
		done++
		return true
	}
	start := time.Now()
	deadline := start.Add(opts.Duration)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			o := &outs[w]
			for i := 0; ctx.Err() == nil; i++ {
				if i >= max(opts.MinOps, 1) && time.Now().After(deadline) {
					return
				}
				if !take() {
					return
				}
				c := &Call{Worker: w, Iter: i}
				c.Begin()
				err := op(ctx, c)
				if err != nil {
					o.errors++
					if o.firstErr == nil {
						o.firstErr = err
					}
					continue
				}
				o.lat = append(o.lat, time.Since(c.start))
				o.bytes += c.Bytes
				o.regBytes += c.RegistryBytes
			}
		})
	}
	wg.Wait()
	r := Result{Clients: clients, Elapsed: time.Since(start)}
	var lat []time.Duration
	for _, o := range outs {
		lat = append(lat, o.lat...)
		r.Bytes += o.bytes
		r.RegistryBytes += o.regBytes
		r.Errors += o.errors
		if o.firstErr != nil && r.FirstError == "" {
			r.FirstError = o.firstErr.Error()
		}
	}
	r.Ops = len(lat)
	slices.Sort(lat)
	r.P50, r.P99 = Percentile(lat, 50), Percentile(lat, 99)
	if rss != nil {
		r.PeakRSS = rss.Stop()
	}
	return r
}

// Percentile returns the p-th percentile (nearest rank) of sorted.
func Percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i, 1), len(sorted))-1]
}
