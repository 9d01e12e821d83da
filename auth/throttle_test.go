// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ha-registry/ha-registry/registry"
)

// blocked reports whether th refuses name from addr at now.
func blocked(th *Throttle, now time.Time, name, addr string) bool {
	return th.Allow(now, name, addr) != nil
}

// TestThrottleCeilings: failures count per name and address, then per
// address and per name with higher ceilings, so that a guesser at
// alice's name does not lock alice out from elsewhere until the name's
// own ceiling, and an office's address is refused only after many.
func TestThrottleCeilings(t *testing.T) {
	const f = 3
	th := NewThrottle(f, time.Minute)
	now := testNow
	for range f {
		th.Fail(now, "alice", "192.0.2.1")
	}
	for _, tc := range []struct {
		name, addr string
		want       bool
	}{
		{"alice", "192.0.2.1", true},
		{"alice", "198.51.100.7", false}, // the same name from elsewhere
		{"bob", "192.0.2.1", false},      // another name from the same place
	} {
		if got := blocked(th, now, tc.name, tc.addr); got != tc.want {
			t.Errorf("after %d failures of alice from 192.0.2.1: %s from %s blocked = %v, want %v", f, tc.name, tc.addr, got, tc.want)
		}
	}

	// Many names from one address: refused at the address's ceiling,
	// for every name, but not before.
	th = NewThrottle(f, time.Minute)
	for i := range AddressFactor*f - 1 {
		th.Fail(now, "user"+strconv.Itoa(i), "192.0.2.1")
	}
	if blocked(th, now, "carol", "192.0.2.1") {
		t.Errorf("%d failures of different names from one address block a new name; the ceiling is %d", AddressFactor*f-1, AddressFactor*f)
	}
	th.Fail(now, "last", "192.0.2.1")
	if !blocked(th, now, "carol", "192.0.2.1") || blocked(th, now, "carol", "192.0.2.2") {
		t.Errorf("at the address's ceiling: carol from it blocked = %v, from elsewhere = %v; want true, false",
			blocked(th, now, "carol", "192.0.2.1"), blocked(th, now, "carol", "192.0.2.2"))
	}

	// One name from many addresses: refused at the name's ceiling, from
	// everywhere, but not before.
	th = NewThrottle(f, time.Minute)
	for i := range NameFactor*f - 1 {
		th.Fail(now, "alice", "10.0.0."+strconv.Itoa(i))
	}
	if blocked(th, now, "alice", "192.0.2.9") {
		t.Errorf("%d failures of alice from many addresses block her; the ceiling is %d", NameFactor*f-1, NameFactor*f)
	}
	th.Fail(now, "alice", "10.0.1.1")
	if !blocked(th, now, "alice", "192.0.2.9") || blocked(th, now, "bob", "10.0.0.1") {
		t.Errorf("at the name's ceiling: alice blocked = %v, bob = %v; want true, false",
			blocked(th, now, "alice", "192.0.2.9"), blocked(th, now, "bob", "10.0.0.1"))
	}
	if !blocked(th, now.Add(time.Minute), "alice", "192.0.2.9") || blocked(th, now.Add(time.Minute+time.Second), "alice", "192.0.2.9") {
		t.Error("the name's ceiling does not last exactly the window")
	}

	// Zero turns the throttle off.
	off := NewThrottle(0, time.Minute)
	off.Fail(now, "alice", "192.0.2.1")
	if blocked(off, now, "alice", "192.0.2.1") {
		t.Error("a throttle of 0 failures blocks")
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
		if got := blocked(th, sec(step.at), "alice", "192.0.2.1"); got != step.blocked {
			t.Fatalf("at %ds: Blocked = %v, want %v", step.at, got, step.blocked)
		}
		if !step.blocked {
			th.Fail(sec(step.at), "alice", "192.0.2.1")
		}
	}
	want := []time.Time{sec(75), sec(91)}
	if got := th.seen["pair:192.0.2.1 alice"]; !slices.Equal(got, want) {
		t.Errorf("alice's failures = %v, want %v", got, want)
	}
	// Checking keys whose failures all aged out forgets them.
	blocked(th, sec(300), "alice", "192.0.2.1")
	if len(th.seen) != 0 {
		t.Errorf("after every failure aged out, seen = %v, want empty", th.seen)
	}
}

// TestThrottleRefusals: refused attempts are counted per window of the
// count that refused them, the first marked as such, and reported once,
// together, after the window ends.
func TestThrottleRefusals(t *testing.T) {
	th := NewThrottle(2, time.Minute)
	at := func(d time.Duration) time.Time { return testNow.Add(d) }
	th.Fail(at(0), "alice", "192.0.2.1")
	th.Fail(at(0), "alice", "192.0.2.1")

	refuse := func(now time.Time, name, addr string) *ThrottledError {
		t.Helper()
		err := th.Allow(now, name, addr)
		var te *ThrottledError
		if !errors.As(err, &te) || !errors.Is(err, registry.ErrTooManyRequests) {
			t.Fatalf("Allow(%s, %s) = %v, want a ThrottledError wrapping TOOMANYREQUESTS", name, addr, err)
		}
		return te
	}
	first := refuse(at(time.Second), "alice", "192.0.2.1")
	want := Refusals{Name: "alice", Addr: "192.0.2.1", Why: "too many failed logins of this name from this address",
		Start: at(time.Second), End: at(time.Second + time.Minute), Count: 1}
	if diff := cmp.Diff(want, first.Refusals); diff != "" || !first.First {
		t.Errorf("first refusal: first = %v, (-want +got):\n%s", first.First, diff)
	}
	for i := range 99 {
		if te := refuse(at(2*time.Second), "alice", "192.0.2.1"); te.First || te.Refusals.Count != i+2 {
			t.Fatalf("refusal %d: first = %v, count %d", i+2, te.First, te.Refusals.Count)
		}
	}
	if got := th.ClosedRefusals(at(time.Minute)); len(got) != 0 {
		t.Errorf("before the window ends: %+v, want nothing", got)
	}
	want.Count = 100
	if diff := cmp.Diff([]Refusals{want}, th.ClosedRefusals(at(time.Second+time.Minute))); diff != "" {
		t.Errorf("after the window (-want +got):\n%s", diff)
	}
	if got := th.ClosedRefusals(at(time.Hour)); len(got) != 0 {
		t.Errorf("reported twice: %+v", got)
	}

	// A window with only its first refusal has nothing more to report;
	// a refusal after the window opens a new one.
	th = NewThrottle(1, time.Minute)
	th.Fail(at(0), "alice", "192.0.2.1")
	refuse(at(0), "alice", "192.0.2.1")
	if got := th.ClosedRefusals(at(time.Hour)); len(got) != 0 {
		t.Errorf("a window of one refusal: %+v, want nothing", got)
	}
	th.Fail(at(2*time.Minute), "alice", "192.0.2.1")
	refuse(at(2*time.Minute), "alice", "192.0.2.1")
	if te := refuse(at(2*time.Minute), "alice", "192.0.2.1"); te.First {
		t.Error("a second refusal in a window is marked first")
	}
	th.Fail(at(4*time.Minute), "alice", "192.0.2.1")
	if te := refuse(at(4*time.Minute), "alice", "192.0.2.1"); !te.First || te.Refusals.Count != 1 {
		t.Errorf("a refusal after the window: first = %v, count %d; want a new window", te.First, te.Refusals.Count)
	}
	if got := th.ClosedRefusals(at(4 * time.Minute)); len(got) != 1 || got[0].Count != 2 {
		t.Errorf("the earlier window, closed by the new one: %+v, want one of 2 refusals", got)
	}

	// Random names from a refused address are one window, of the address.
	th = NewThrottle(1, time.Minute)
	for i := range AddressFactor {
		th.Fail(at(0), "user"+strconv.Itoa(i), "192.0.2.1")
	}
	for i := range 1000 {
		te := refuse(at(time.Second), "random"+strconv.Itoa(i), "192.0.2.1")
		if te.First != (i == 0) || te.Refusals.Name != "" || te.Refusals.Addr != "192.0.2.1" || te.Refusals.Why != "too many failed logins from this address" {
			t.Fatalf("refusal %d of random names: %+v", i, te)
		}
	}
}

func TestThrottleMemoryBounded(t *testing.T) {
	th := NewThrottle(3, time.Minute)
	for i := range maxThrottleKeys/3 + 100 {
		th.Fail(testNow, "u"+strconv.Itoa(i), "a"+strconv.Itoa(i))
	}
	if n := len(th.seen); n > maxThrottleKeys {
		t.Fatalf("%d names and addresses failed once: seen holds %d, want at most %d", maxThrottleKeys/3+100, n, maxThrottleKeys)
	}

	later := testNow.Add(2 * th.Window)
	th.Fail(later, "alice", "192.0.2.1")
	if n := len(th.seen); n > maxThrottleKeys {
		t.Errorf("seen holds %d keys, want at most %d", n, maxThrottleKeys)
	}
	if got := len(th.seen["pair:192.0.2.1 alice"]); got != 1 {
		t.Errorf("a new key once old ones aged out: %d failures recorded, want 1", got)
	}
	th.Fail(later, "alice", "192.0.2.1")
	th.Fail(later, "alice", "192.0.2.1")
	if !blocked(th, later, "alice", "192.0.2.1") {
		t.Error("alice not blocked after 3 failures")
	}

	// Open windows of refusals are bounded the same way, and those
	// closed early are still reported.
	th = NewThrottle(1, time.Minute)
	for i := range maxThrottleKeys + 10 {
		name := "u" + strconv.Itoa(i)
		th.Fail(testNow, name, name)
		th.Allow(testNow, name, name)
		th.Allow(testNow, name, name)
	}
	if n := len(th.open); n > maxThrottleKeys {
		t.Errorf("open holds %d windows, want at most %d", n, maxThrottleKeys)
	}
	total := 0
	for _, r := range th.ClosedRefusals(testNow.Add(time.Hour)) {
		total += r.Count
	}
	if want := 2 * (maxThrottleKeys + 10); total != want {
		t.Errorf("refusals reported: %d, want %d", total, want)
	}
}

// TestThrottleFullOfRecentKeys fills the throttle with recent failures of
// many addresses, as an attacker with many addresses can, then fails a
// new key: it must still be counted (the oldest keys are forgotten first),
// or else password guessing for a fresh user name is not slowed at all.
func TestThrottleFullOfRecentKeys(t *testing.T) {
	th := NewThrottle(3, time.Minute)
	for i := range maxThrottleKeys / 3 {
		th.Fail(testNow, "u"+strconv.Itoa(i), "a"+strconv.Itoa(i))
	}
	now := testNow.Add(10 * time.Second)
	for range 3 {
		th.Fail(now, "alice", "192.0.2.1")
	}
	if n := len(th.seen); n > maxThrottleKeys {
		t.Errorf("seen holds %d keys, want at most %d", n, maxThrottleKeys)
	}
	if !blocked(th, now, "alice", "192.0.2.1") {
		t.Error("alice not blocked after 3 failures: a full throttle drops new keys instead of forgetting the oldest")
	}
}
