// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"time"
)

// DefaultDutyCycle is the share of its time a pass works by default. A
// pass is never in a hurry, while a push on the same machines is: on the
// benchmark's two cores, a pass working flat out raised the p99 of
// concurrent pushes by a third, and one working half the time stays
// within the 1.2x of docs/gc.md.
const DefaultDutyCycle = 0.5

// pacer keeps a pass to its duty cycle: after each unit of work (a
// thousand keys of the listing, a batch of removals) it sleeps so that
// the work since the previous pause, in PostgreSQL and S3 alike, took at
// most the duty cycle's share of the time. It never sleeps while the pass
// holds the locks of a batch: a push of that digest would wait too.
type pacer struct {
	duty  float64
	since time.Time
	slept time.Duration
}

func newPacer(duty float64) *pacer {
	return &pacer{duty: duty, since: time.Now()}
}

// pause sleeps for the rest of the duty cycle of the work done since the
// previous pause. It returns early, with ctx's error, when ctx ends.
func (pc *pacer) pause(ctx context.Context) error {
	if pc.duty >= 1 {
		return nil
	}
	worked := time.Since(pc.since)
	d := time.Duration(float64(worked) * (1 - pc.duty) / pc.duty)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	pc.slept += d
	pc.since = time.Now()
	return nil
}
