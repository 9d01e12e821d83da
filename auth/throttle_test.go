// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	th := NewThrottle(3, time.Minute)
	t0 := testNow
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	th.Fail(at(0), "user:alice", "addr:192.0.2.1")
	th.Fail(at(10*time.Second), "user:alice")
	if th.Blocked(at(20*time.Second), "user:alice") {
		t.Fatal("blocked after 2 of 3 failures")
	}
	th.Fail(at(20*time.Second), "user:alice")

	for _, tc := range []struct {
		name string
		now  time.Duration
		keys []string
		want bool
	}{
		{"third failure blocks", 21 * time.Second, []string{"user:alice"}, true},
		{"other key", 21 * time.Second, []string{"user:bob"}, false},
		{"address failed once", 21 * time.Second, []string{"addr:192.0.2.1"}, false},
		{"no keys", 21 * time.Second, nil, false},
		{"any blocked key blocks", 21 * time.Second, []string{"user:bob", "addr:192.0.2.1", "user:alice"}, true},
		{"still blocked at the window's end", 60 * time.Second, []string{"user:alice"}, true},
		{"unblocked once the first ages out", 61 * time.Second, []string{"user:alice"}, false},
		{"unblocked for good", 5 * time.Minute, []string{"user:bob", "user:alice"}, false},
	} {
		if got := th.Blocked(at(tc.now), tc.keys...); got != tc.want {
			t.Errorf("%s: Blocked(t0+%v, %q) = %v, want %v", tc.name, tc.now, tc.keys, got, tc.want)
		}
	}

	// Checking keys whose failures all aged out forgets them.
	th.Blocked(at(5*time.Minute), "addr:192.0.2.1")
	if len(th.seen) != 0 {
		t.Errorf("after every failure aged out, seen = %v, want empty", th.seen)
	}
}

func TestThrottleSlidingWindow(t *testing.T) {
	th := NewThrottle(3, time.Minute)
	sec := func(n int) time.Time { return testNow.Add(time.Duration(n) * time.Second) }
	// Each step is a login attempt at a second: a blocked one is refused
	// unrecorded, as IssueToken does; an unblocked one fails.
	for _, step := range []struct {
		at      int
		blocked bool
	}{
		{0, false}, {15, false}, {30, false},
		{45, true}, {60, true}, // 0, 15 and 30 are within the minute
		{75, false}, // 0 aged out; 15 and 30 remain
		{75, true},  // 15, 30 and 75 (just failed)
		{91, false}, // 15 and 30 aged out; 75 remains
	} {
		if got := th.Blocked(sec(step.at), "user:alice"); got != step.blocked {
			t.Fatalf("at %ds: Blocked = %v, want %v", step.at, got, step.blocked)
		}
		if !step.blocked {
			th.Fail(sec(step.at), "user:alice")
		}
	}
	want := []time.Time{sec(75), sec(91)}
	if got := th.seen["user:alice"]; !slices.Equal(got, want) {
		t.Errorf("alice's failures = %v, want %v", got, want)
	}
}

func TestThrottleMemoryBounded(t *testing.T) {
	th := NewThrottle(3, time.Minute)
	for i := range maxThrottleKeys + 100 {
		th.Fail(testNow, "addr:"+strconv.Itoa(i))
	}
	if n := len(th.seen); n > maxThrottleKeys {
		t.Fatalf("%d keys failed once: seen holds %d, want at most %d", maxThrottleKeys+100, n, maxThrottleKeys)
	}

	later := testNow.Add(2 * th.Window)
	th.Fail(later, "user:alice")
	if n := len(th.seen); n > maxThrottleKeys {
		t.Errorf("seen holds %d keys, want at most %d", n, maxThrottleKeys)
	}
	if got := len(th.seen["user:alice"]); got != 1 {
		t.Errorf("a new key once old ones aged out: %d failures recorded, want 1", got)
	}
	th.Fail(later, "user:alice")
	th.Fail(later, "user:alice")
	if !th.Blocked(later, "user:alice") {
		t.Error("alice not blocked after 3 failures")
	}
}

// TestThrottleFullOfRecentKeys fills the throttle with recent failures of
// many addresses, as an attacker with many addresses can, then fails a
// new key: it must still be counted (the oldest keys are forgotten first),
// or else password guessing for a fresh user name is not slowed at all.
func TestThrottleFullOfRecentKeys(t *testing.T) {
	th := NewThrottle(3, time.Minute)
	for i := range maxThrottleKeys {
		th.Fail(testNow, "addr:"+strconv.Itoa(i))
	}
	now := testNow.Add(10 * time.Second)
	for range 3 {
		th.Fail(now, "user:alice")
	}
	if n := len(th.seen); n > maxThrottleKeys {
		t.Errorf("seen holds %d keys, want at most %d", n, maxThrottleKeys)
	}
	if !th.Blocked(now, "user:alice") {
		t.Error("alice not blocked after 3 failures: a full throttle drops new keys instead of forgetting the oldest")
	}
}
