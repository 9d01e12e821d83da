// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"sync"
	"time"
)

// Throttle refuses logins for a while after repeated failures, per user
// name and per client address, so that guessing a password is slow. It
// is per replica: n replicas together allow n times the attempts.
type Throttle struct {
	// Failures within Window block further attempts until the oldest
	// ages out of it.
	Failures int
	Window   time.Duration

	mu   sync.Mutex
	seen map[string][]time.Time
}

// maxThrottleKeys bounds the memory of an attack from many addresses.
// Past it, keys whose failures have expired go first, then a tenth of the
// table at random (Go's map order), so new keys are always counted and
// each eviction pays for many failures.
const maxThrottleKeys = 100_000

// NewThrottle blocks after failures failed logins within window.
func NewThrottle(failures int, window time.Duration) *Throttle {
	return &Throttle{Failures: failures, Window: window, seen: map[string][]time.Time{}}
}

// Blocked reports whether any of keys has failed too often lately.
func (t *Throttle) Blocked(now time.Time, keys ...string) bool {
	if t.Failures <= 0 {
		return false // no limit set
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if len(t.recent(k, now)) >= t.Failures {
			return true
		}
	}
	return false
}

// Fail records a failed login for keys.
func (t *Throttle) Fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.seen)+len(keys) > maxThrottleKeys {
		for k, ts := range t.seen {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) > t.Window {
				delete(t.seen, k)
			}
		}
		for k := range t.seen {
			if len(t.seen)+len(keys) <= maxThrottleKeys*9/10 {
				break
			}
			delete(t.seen, k)
		}
	}
	for _, k := range keys {
		t.seen[k] = append(t.recent(k, now), now)
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
