// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/registry"
)

// The limits that keep one slow or greedy client from taking what every
// client shares: the minimum body rate, the uploads one caller may have
// in flight, and the memory manifest bodies may hold. All are counted per
// replica, in memory.

// DefaultBodyRateWindow is [Options.BodyRateWindow]'s default.
const DefaultBodyRateWindow = 30 * time.Second

// drainGrace is how long a body the handler left unread (a refused
// request's) may take to arrive after the handler returns. net/http reads
// up to 256 KiB of it to keep the connection; a client still sending after
// this loses the connection instead of holding it.
const drainGrace = time.Second

var manifestBodyBytes = promauto.NewGauge(prometheus.GaugeOpts{
	Name: "registry_manifest_body_bytes",
	Help: "Bytes reserved for manifest bodies being read and stored, out of the bound set by --manifest-memory.",
})

// bodyRate is the minimum rate rule: in every window of time spent
// waiting for the client, at least min bytes a second on average must
// arrive. Time the server spends elsewhere (waiting for a connection,
// writing a part to S3) is not the client's and is not counted.
type bodyRate struct {
	min    int64 // bytes a second; 0 turns the rule off
	window time.Duration
}

// need is how many bytes a window must bring, at least one.
func (r bodyRate) need() int64 {
	return max(r.min*int64(r.window)/int64(time.Second), 1)
}

// rateMeter applies a [bodyRate] to one body, a window at a time.
type rateMeter struct {
	rate   bodyRate
	waited time.Duration // spent in the current window
	got    int64         // bytes the current window brought
}

// tooSlow is the error of a body cut by the rule. Its code is the
// uploads'; a manifest PUT answers it under its own (see
// [manifestBodyError]). The status is 408: the request did not arrive in
// the time the server was prepared to wait.
func (m *rateMeter) tooSlow() error {
	return &registry.Error{
		Code:    registry.CodeBlobUploadInvalid,
		Message: fmt.Sprintf("the request body arrived slower than %d bytes/s over %s; send it faster or in smaller requests", m.rate.min, m.rate.window),
		Status:  http.StatusRequestTimeout,
	}
}

// left is how much longer the next read may wait before the rule fails
// it: to the end of the current window while that window lacks bytes,
// else to the end of the next one.
func (m *rateMeter) left() time.Duration {
	left := m.rate.window - m.waited
	if m.got >= m.rate.need() {
		left += m.rate.window
	}
	return left
}

// read accounts a read that waited d and brought n bytes, and reports
// whether a window ended short. The bytes arrived at the end of the
// wait, so they count in the window where it ended.
func (m *rateMeter) read(d time.Duration, n int) (short bool) {
	m.waited += d
	for m.waited >= m.rate.window {
		if m.got < m.rate.need() {
			return true
		}
		m.waited -= m.rate.window
		m.got = 0
	}
	m.got += int64(n)
	return false
}

// isDeadline reports a read that failed because its deadline passed.
func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// clientSlots counts the uploads each caller has in flight, so that one
// caller cannot take every connection of the stream pool.
type clientSlots struct {
	max  int // 0: no limit
	mu   sync.Mutex
	held map[string]int
}

func (c *clientSlots) take(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[key] >= c.max {
		return false
	}
	if c.held == nil {
		c.held = map[string]int{}
	}
	c.held[key]++
	return true
}

func (c *clientSlots) give(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[key]--; c.held[key] <= 0 {
		delete(c.held, key)
	}
}

// clientKey names the caller for the per-client limits: the
// authenticated name, or the address of an anonymous caller (or of every
// caller when authentication is off).
func clientKey(ctx context.Context) string {
	c, _ := auth.CallerFrom(ctx)
	if c.Name != "" {
		return "name:" + c.Name
	}
	return "addr:" + c.Address
}

// uploadSlot takes one of the caller's upload slots for a request that
// streams into the store (and holds a stream connection while it does),
// or refuses it with 429. release gives the slot back.
func (s *Server) uploadSlot(ctx context.Context) (release func(), err error) {
	if s.uploads.max <= 0 {
		return func() {}, nil
	}
	key := clientKey(ctx)
	if !s.uploads.take(key) {
		return nil, registry.ErrTooManyRequests.WithMessage(
			"this client already has %d uploads in flight on this replica, the most one client may have; retry when one has finished", s.uploads.max)
	}
	return func() { s.uploads.give(key) }, nil
}

// byteBudget bounds the bytes of manifest bodies held at once.
type byteBudget struct {
	max  int64 // 0: no bound
	mu   sync.Mutex
	used int64
}

func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.max > 0 && b.used+n > b.max {
		return false
	}
	b.used += n
	manifestBodyBytes.Add(float64(n))
	return true
}

func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	manifestBodyBytes.Sub(float64(n))
}

// manifestMemory reserves room for the body of a manifest PUT: its
// declared length, or the largest manifest when it streams without one.
// Beyond the bound the request is refused with 429 at once rather than
// queued, so that stalled bodies cannot pile up in memory.
func (s *Server) manifestMemory(r *http.Request) (release func(), err error) {
	n := r.ContentLength
	if n < 0 {
		n = registry.MaxManifestSize
	}
	if !s.manifestBytes.take(n) {
		return nil, registry.ErrTooManyRequests.WithMessage(
			"this replica is reading as many manifests as its memory allows; retry shortly")
	}
	return func() { s.manifestBytes.give(n) }, nil
}
