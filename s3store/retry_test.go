// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// fault is what the fault front does to one request.
type fault int

const (
	pass     fault = iota
	slowDown       // 503 SlowDown, S3's throttling answer
	internal       // 500 InternalError
	drop           // the connection is reset without an answer
)

// faultFront is an HTTP proxy in front of the real S3 server that answers
// some requests with a fault instead of forwarding them, as an overloaded
// or flaky S3 does. decide sees each request and how many requests of the
// same method came before it.
type faultFront struct {
	mu     sync.Mutex
	seen   map[string]int
	decide func(r *http.Request, n int) fault
}

// newFaultStore returns a Store on a fresh bucket whose requests go through
// a fault front, and the front.
func newFaultStore(t *testing.T, decide func(r *http.Request, n int) fault, mod func(*Config)) (*Store, *faultFront) {
	t.Helper()
	env := testenv.S3(t)
	target, err := url.Parse(env.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultFront{seen: map[string]int{}, decide: decide}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		n := f.seen[r.Method]
		f.seen[r.Method]++
		f.mu.Unlock()
		switch f.decide(r, n) {
		case slowDown:
			s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		case internal:
			s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		case drop:
			_, _ = io.Copy(io.Discard, r.Body)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			conn.Close()
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	s := newStoreAt(t, env, srv.URL, mod)
	return s, f
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>`+msg+`</Message></Error>`)
}

// count is how many requests of method the front has seen.
func (f *faultFront) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[method]
}

// firstN injects fault into the first n requests of method.
func firstN(method string, n int, f fault) func(*http.Request, int) fault {
	return func(r *http.Request, i int) fault {
		if r.Method == method && i < n {
			return f
		}
		return pass
	}
}

// TestRetriesTransientFaults checks that throttling, 5xx answers and
// dropped connections are retried until the operation succeeds, for the
// operations whose request can be repeated.
func TestRetriesTransientFaults(t *testing.T) {
	ctx := context.Background()
	data := []byte("retried until it arrived")
	for _, tc := range []struct {
		name  string
		fault fault
	}{{"SlowDown", slowDown}, {"InternalError", internal}, {"dropped connection", drop}} {
		t.Run(tc.name, func(t *testing.T) {
			// Two faults on every method in turn: PUT, then GET, then HEAD.
			s, f := newFaultStore(t, func(r *http.Request, n int) fault {
				if n < 2 {
					return tc.fault
				}
				return pass
			}, nil)
			if err := s.PutBytes(ctx, "k", data); err != nil {
				t.Fatalf("PutBytes through two faults: %v", err)
			}
			got, err := s.GetBytes(ctx, "k")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("GetBytes through two faults: %q, %v", got, err)
			}
			if info, err := s.Stat(ctx, "k"); err != nil || info.Size != int64(len(data)) {
				t.Fatalf("Stat through two faults: %+v, %v", info, err)
			}
			for _, m := range []string{"PUT", "GET", "HEAD"} {
				if n := f.count(m); n != 3 {
					t.Errorf("%s sent %d times, want 3 (two faults, one success)", m, n)
				}
			}
		})
	}
}

// TestRetriesMultipartParts checks that a part, which the store holds in
// memory, is sent again after a dropped connection.
func TestRetriesMultipartParts(t *testing.T) {
	ctx := context.Background()
	dropParts := func(r *http.Request, n int) fault {
		if r.Method == "PUT" && r.URL.Query().Has("partNumber") && n < 2 {
			return drop
		}
		return pass
	}
	s, f := newFaultStore(t, dropParts, nil)
	id, err := s.CreateMultipart(ctx, "mp")
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("p"), 5*mib)
	etag, err := s.UploadPart(ctx, "mp", id, 1, part)
	if err != nil {
		t.Fatalf("UploadPart through two dropped connections: %v", err)
	}
	if err := s.CompleteMultipart(ctx, "mp", id, []Part{{Number: 1, ETag: etag}}); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Stat(ctx, "mp"); err != nil || info.Size != int64(len(part)) {
		t.Fatalf("Stat: %+v, %v", info, err)
	}
	if n := f.count("PUT"); n != 3 {
		t.Errorf("part sent %d times, want 3", n)
	}
}

// TestPersistentFaultIsBoundedUnavailable checks that a fault that does
// not go away ends after the configured attempts, quickly, as
// ErrUnavailable (which the registry answers with 503), and that a missing
// key is an answer, not a fault: it is not retried.
func TestPersistentFaultIsBoundedUnavailable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		fault fault
	}{{"SlowDown", slowDown}, {"InternalError", internal}, {"dropped connection", drop}} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newFaultStore(t, firstN("HEAD", 1<<30, tc.fault), func(c *Config) { c.RetryMaxAttempts = 4 })
			start := time.Now()
			_, err := s.Stat(ctx, "k")
			took := time.Since(start)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Stat against a failing S3: %v, want ErrUnavailable", err)
			}
			if n := f.count("HEAD"); n != 4 {
				t.Errorf("HEAD sent %d times, want 4 (RetryMaxAttempts)", n)
			}
			// Three waits of at most 0.1+0.2+0.4 s, or 0.5+1+2 s throttled.
			if bound := 4 * time.Second; took > bound {
				t.Errorf("failing took %v, want under %v", took, bound)
			}
			var o interface{ Outage() string }
			if !errors.As(err, &o) || strings.Contains(o.Outage(), "127.0.0.1") {
				t.Errorf("the error does not carry a public outage message: %v", err)
			}
		})
	}

	t.Run("not found", func(t *testing.T) {
		s, f := newFaultStore(t, func(*http.Request, int) fault { return pass }, nil)
		if _, err := s.Stat(ctx, "missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Stat of a missing key: %v, want ErrNotFound only", err)
		}
		if n := f.count("HEAD"); n != 1 {
			t.Errorf("HEAD of a missing key sent %d times, want 1", n)
		}
	})
}

// TestUnreachableIsUnavailable checks a refused connection, S3 being down.
func TestUnreachableIsUnavailable(t *testing.T) {
	env := testenv.S3(t)
	s := newStoreAt(t, env, "http://"+testenv.FreeAddr(t), nil)
	start := time.Now()
	if err := s.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping of a closed port: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("failing took %v", took)
	}
}

// TestFullJitterBounds checks the backoff schedule: each delay lies below
// base * 2^(attempt-1), capped by the maximum.
func TestFullJitterBounds(t *testing.T) {
	base, max := 100*time.Millisecond, 2*time.Second
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: 1600 * time.Millisecond, 6: max, 40: max, 1000: max} {
		if got := fullJitter(base, max, attempt, 0.999999999); got > want || got < want*99/100 {
			t.Errorf("attempt %d: top delay %v, want just under %v", attempt, got, want)
		}
		if got := fullJitter(base, max, attempt, 0); got != 0 {
			t.Errorf("attempt %d: bottom delay %v, want 0", attempt, got)
		}
	}
}
