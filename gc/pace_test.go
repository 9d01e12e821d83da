// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPacerKeepsTheDutyCycle: after work, a pause sleeps (1-duty)/duty of
// it, so that the work is at most duty of the time; a duty of 1 never
// sleeps, and a pause ends when its context does.
func TestPacerKeepsTheDutyCycle(t *testing.T) {
	const work = 20 * time.Millisecond
	pc := newPacer(0.25)
	time.Sleep(work)
	began := time.Now()
	if err := pc.pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The pacer measured at least work, so it owes at least three times it.
	if slept := time.Since(began); pc.slept < 3*work || slept < 3*work {
		t.Errorf("after %v of work at a duty cycle of 0.25: recorded %v, slept %v; want at least %v", work, pc.slept, slept, 3*work)
	}
	// The next pause counts only the work since this one.
	began = time.Now()
	if err := pc.pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slept := time.Since(began); slept > 3*work {
		t.Errorf("a pause right after another slept %v; it owes only for the work since", slept)
	}

	full := newPacer(1)
	time.Sleep(work)
	if err := full.pause(context.Background()); err != nil || full.slept != 0 {
		t.Errorf("a duty cycle of 1 slept %v (%v); want no pause", full.slept, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := newPacer(0.01)
	time.Sleep(work)
	if err := long.pause(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a pause under a cancelled context: %v, want context.Canceled", err)
	}
}

// TestRunRefusesABadDutyCycle: a duty cycle outside (0, 1] is refused
// before the pass touches anything.
func TestRunRefusesABadDutyCycle(t *testing.T) {
	e := newEnv(t)
	for _, d := range []float64{-0.5, 1.5} {
		opts := e.opts()
		opts.DutyCycle = d
		if _, err := Run(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "duty cycle") {
			t.Errorf("duty cycle %v: %v, want it refused", d, err)
		}
	}
}
