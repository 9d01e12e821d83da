// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"runtime/debug"
	"testing"

	"github.com/rs/zerolog"
)

// TestMemoryLimit: by default serve's soft limit follows the uploads in
// flight, --memory-limit fixes it, a negative one is refused, and
// GOMEMLIMIT wins over both.
func TestMemoryLimit(t *testing.T) {
	original := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(original) })
	t.Setenv("GOMEMLIMIT", "")
	limit := func() int64 { return debug.SetMemoryLimit(-1) >> 20 }

	streaming, err := memoryLimit(0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if streaming == nil {
		t.Fatal("no hook for uploads in flight with the default limit")
	}
	if got := limit(); got != budgetBaseMiB {
		t.Errorf("idle: limit %d MiB, want %d", got, budgetBaseMiB)
	}
	for _, step := range []struct{ delta, uploads int }{{1, 1}, {1, 2}, {1, 3}, {-1, 2}, {-1, 1}, {-1, 0}} {
		streaming(step.delta)
		if got, want := limit(), int64(budgetBaseMiB+budgetPerUploadMiB*step.uploads); got != want {
			t.Errorf("%d uploads in flight: limit %d MiB, want %d", step.uploads, got, want)
		}
	}

	streaming, err = memoryLimit(300, zerolog.Nop())
	if err != nil || streaming != nil {
		t.Fatalf("--memory-limit 300: hook %v, error %v; want a fixed limit", streaming != nil, err)
	}
	if got := limit(); got != 300 {
		t.Errorf("--memory-limit 300: limit %d MiB", got)
	}

	if _, err := memoryLimit(-1, zerolog.Nop()); err == nil {
		t.Error("a negative --memory-limit was accepted")
	}
	if got := limit(); got != 300 {
		t.Errorf("a refused --memory-limit changed the limit to %d MiB", got)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	streaming, err = memoryLimit(100, zerolog.Nop())
	if err != nil || streaming != nil {
		t.Fatalf("with GOMEMLIMIT: hook %v, error %v; want it left to the runtime", streaming != nil, err)
	}
	if got := limit(); got != 300 {
		t.Errorf("with GOMEMLIMIT set the limit changed to %d MiB", got)
	}
}
