// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"sync"
	"time"

	"github.com/ha-registry/ha-registry/registry"
)

// Throttle refuses logins for a while after repeated failures, so that
// guessing a password is slow, without letting anyone lock a user out by
// naming them. Failed logins within Window are counted three ways, each
// with its own ceiling:
//
//   - per name and address: Failures. A person mistyping, or a guesser
//     at one name from one place, waits; the same name from elsewhere
//     does not.
//   - per address: [AddressFactor] × Failures. Many names tried from
//     one place; high, as an office behind NAT shares one address.
//   - per name: [NameFactor] × Failures. One name tried from many
//     places; the ceiling on a distributed guess, which then does lock
//     the name out everywhere.
//
// A count at its ceiling refuses the attempts it covers until its oldest
// failure ages out of the window. Refused attempts are not failures: they
// prove nothing and are not counted again. Counting is per replica: n
// replicas allow n times the attempts.
type Throttle struct {
	// Failures is the ceiling per name and address; the others are
	// multiples of it. Zero or less turns the throttle off.
	Failures int
	// Window is how long a failure counts.
	Window time.Duration

	mu   sync.Mutex
	seen map[string][]time.Time
	// open holds, per throttle key, the refusals of its current window.
	open map[string]*Refusals
	// closed holds windows that ended with refusals still to report.
	closed []Refusals
}

// The ceilings per address and per name, as multiples of
// [Throttle.Failures].
const (
	AddressFactor = 5
	NameFactor    = 10
)

// maxThrottleKeys bounds the memory of an attack from many addresses.
// Past it, keys whose failures have expired go first, then a tenth of the
// table at random (Go's map order), so new keys are always counted and
// each eviction pays for many failures.
const maxThrottleKeys = 100_000

// NewThrottle allows failures failed logins of a name from an address
// within window (and the multiples per address and per name).
func NewThrottle(failures int, window time.Duration) *Throttle {
	return &Throttle{Failures: failures, Window: window, seen: map[string][]time.Time{}, open: map[string]*Refusals{}}
}

// throttleKey is one of the three counts a login attempt falls under.
type throttleKey struct {
	key    string
	factor int
	// name and addr are what the count is about ("" for the other).
	name, addr string
	// what ends the client's message: "too many failed logins " + what.
	what string
}

// keys are the counts of name trying from addr. The pair's key puts the
// address first: it holds no space, so the key is unambiguous.
func keys(name, addr string) [3]throttleKey {
	return [3]throttleKey{
		{"pair:" + addr + " " + name, 1, name, addr, "of this name from this address"},
		{"addr:" + addr, AddressFactor, "", addr, "from this address"},
		{"name:" + name, NameFactor, name, "", "of this name"},
	}
}

// ThrottledError is a login attempt the throttle refused. It wraps
// [registry.ErrTooManyRequests], which is what the client is answered.
type ThrottledError struct {
	// Refusals is the window this refusal is counted in: the count that
	// reached its ceiling, the name and address it is about, and the
	// refusals so far.
	Refusals Refusals
	// First is true for the window's first refusal, which the audit log
	// records at once; the rest are reported together once the window
	// ends ([Throttle.ClosedRefusals]).
	First bool

	err *registry.Error
}

// Error implements error.
func (e *ThrottledError) Error() string { return e.err.Error() }

// Unwrap returns the TOOMANYREQUESTS error to answer with.
func (e *ThrottledError) Unwrap() error { return e.err }

// Refusals are the attempts refused under one count within one window.
type Refusals struct {
	// Name and Addr are what the count is about: both for the count per
	// name and address, one of them for the others.
	Name, Addr string
	// Why says which ceiling was reached, as in "too many failed logins
	// of this name".
	Why string
	// Start is the first refusal's time, End the window's end.
	Start, End time.Time
	// Count is how many attempts were refused.
	Count int
}

// Allow returns nil when name may try to log in from addr now, or a
// [*ThrottledError] when a ceiling is reached; the refusal is then
// counted in the window of that ceiling's count.
func (t *Throttle) Allow(now time.Time, name, addr string) error {
	if t.Failures <= 0 {
		return nil // no limit set
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys(name, addr) {
		if len(t.recent(k.key, now)) >= k.factor*t.Failures {
			return t.refuse(now, k)
		}
	}
	return nil
}

// refuse counts a refusal under k, opening a window if none is open.
func (t *Throttle) refuse(now time.Time, k throttleKey) *ThrottledError {
	r := t.open[k.key]
	first := r == nil || !now.Before(r.End)
	if first {
		if r != nil {
			t.close(k.key)
		}
		t.closeSome(now)
		r = &Refusals{Name: k.name, Addr: k.addr, Why: errThrottled.Error() + " " + k.what, Start: now, End: now.Add(t.Window)}
		t.open[k.key] = r
	}
	r.Count++
	return &ThrottledError{Refusals: *r, First: first,
		err: registry.ErrTooManyRequests.WithMessage("%s; wait a minute", r.Why)}
}

// close moves key's open window to the closed ones, if it refused more
// than the first attempt (which was reported when it came).
func (t *Throttle) close(key string) {
	// Bounded like the keys, should nobody ask for them.
	if r := t.open[key]; r.Count > 1 && len(t.closed) < maxThrottleKeys {
		t.closed = append(t.closed, *r)
	}
	delete(t.open, key)
}

// ClosedRefusals returns, once, the windows that have ended by now with
// refusals after their first: each is one audit row for all of them, so
// that refused attempts grow the audit log by at most two rows per count
// and window however many there are.
func (t *Throttle) ClosedRefusals(now time.Time) []Refusals {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.closed
	t.closed = nil
	for k, r := range t.open {
		if !now.Before(r.End) {
			if r.Count > 1 {
				out = append(out, *r)
			}
			delete(t.open, k)
		}
	}
	return out
}

// Fail records a failed login of name from addr.
func (t *Throttle) Fail(now time.Time, name, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetSeen(now)
	for _, k := range keys(name, addr) {
		t.seen[k.key] = append(t.recent(k.key, now), now)
	}
}

// forgetSeen keeps room for three more keys in seen: past
// maxThrottleKeys it forgets keys whose failures have expired, then a
// tenth of them at random.
func (t *Throttle) forgetSeen(now time.Time) {
	if len(t.seen)+3 <= maxThrottleKeys {
		return
	}
	for k, ts := range t.seen {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) > t.Window {
			delete(t.seen, k)
		}
	}
	for k := range t.seen {
		if len(t.seen)+3 <= maxThrottleKeys*9/10 {
			break
		}
		delete(t.seen, k)
	}
}

// closeSome keeps room for one more open window, the same way, closing
// windows early rather than forgetting their refusals: a count closed
// early reports its refusals sooner, in one more row.
func (t *Throttle) closeSome(now time.Time) {
	if len(t.open)+1 <= maxThrottleKeys {
		return
	}
	for k, r := range t.open {
		if !now.Before(r.End) {
			t.close(k)
		}
	}
	for k := range t.open {
		if len(t.open)+1 <= maxThrottleKeys*9/10 {
			break
		}
		t.close(k)
	}
}

// recent drops k's failures older than the window and returns the rest.
func (t *Throttle) recent(k string, now time.Time) []time.Time {
	ts := t.seen[k]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > t.Window {
		i++
	}
	if i == len(ts) {
		delete(t.seen, k)
		return nil
	}
	ts = ts[i:]
	t.seen[k] = ts
	return ts
}
