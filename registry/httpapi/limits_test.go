// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/registry"
)

// TestRetryAfter checks that every 429 and 503 tells the client when to
// retry, with the error's own wait or the default, and that other errors
// carry Retry-After only when they name a wait.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"429 with the default", registry.ErrTooManyRequests.WithMessage("upload sessions capped"), 429, "5"},
		{"429 with its own wait", registry.ErrTooManyRequests.WithRetryAfter(90 * time.Second), 429, "90"},
		{"a fraction rounds up", registry.ErrTooManyRequests.WithRetryAfter(1500 * time.Millisecond), 429, "2"},
		{"503 with the default", registry.ErrUnavailable, 503, "5"},
		{"503 with a wait", registry.ErrUnavailable.WithRetryAfter(30 * time.Second), 503, "30"},
		{"404", registry.ErrManifestUnknown, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newFixture(t).store
			store.fail = tc.err
			s, _ := newServer(t, store, Options{})
			call{method: "GET", path: "/v2/foo/bar/manifests/latest", status: tc.status,
				headers: map[string]string{"Retry-After": tc.want}}.run(t, s)
		})
	}
}

// trickle is a request body that yields one byte every interval until
// stop is closed, then ends.
type trickle struct {
	every time.Duration
	stop  chan struct{}
}

func (b *trickle) Read(p []byte) (int, error) {
	select {
	case <-b.stop:
		return 0, io.EOF
	case <-time.After(b.every):
		p[0] = 'x'
		return 1, nil
	}
}

// TestBodyMinRate checks that a body trickling below the minimum rate is
// cut after about one window, as an upload chunk (which then changes
// nothing) and as a manifest, while a body at the rate goes through.
func TestBodyMinRate(t *testing.T) {
	const window = 400 * time.Millisecond
	fx := newFixture(t)
	s, _ := newServer(t, fx.store, Options{BodyMinRate: 1000, BodyRateWindow: window})
	srv := httptest.NewServer(s)
	defer srv.Close()

	send := func(method, path string, body io.Reader) (*http.Response, []byte, time.Duration) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, body)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp, got, time.Since(start)
	}
	errCode := func(body []byte) string {
		var e errorBody
		_ = json.Unmarshal(body, &e)
		if len(e.Errors) == 0 {
			return ""
		}
		return string(e.Errors[0].Code)
	}

	resp, _, _ := send("POST", "/v2/foo/bar/blobs/uploads/", nil)
	loc := resp.Header.Get("Location")
	stop := make(chan struct{})
	defer close(stop)

	// 20 bytes/s against a minimum of 1000: cut after one window.
	resp, body, took := send("PATCH", loc, &trickle{every: 50 * time.Millisecond, stop: stop})
	if resp.StatusCode != http.StatusRequestTimeout || errCode(body) != "BLOB_UPLOAD_INVALID" {
		t.Errorf("trickled chunk: %d %s, want 408 BLOB_UPLOAD_INVALID", resp.StatusCode, body)
	}
	if took < window || took > window+time.Second {
		t.Errorf("trickled chunk cut after %v, want about %v", took, window)
	}
	if resp, _, _ := send("GET", loc, nil); resp.Header.Get("Range") != "0-0" {
		t.Errorf("after the cut chunk the upload holds Range %q, want nothing (0-0)", resp.Header.Get("Range"))
	}

	resp, body, _ = send("PUT", "/v2/foo/bar/manifests/slow", &trickle{every: 50 * time.Millisecond, stop: stop})
	if resp.StatusCode != http.StatusRequestTimeout || errCode(body) != "MANIFEST_INVALID" {
		t.Errorf("trickled manifest: %d %s, want 408 MANIFEST_INVALID", resp.StatusCode, body)
	}

	// About 5000 bytes/s for three windows: above the minimum throughout.
	resp, body, _ = send("PATCH", loc, &chunks{n: 60, size: 100, every: 20 * time.Millisecond})
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-5999" {
		t.Errorf("chunk at the rate: %d %q %s, want 202 with Range 0-5999", resp.StatusCode, resp.Header.Get("Range"), body)
	}
}

// chunks yields n reads of size bytes, one every interval.
type chunks struct {
	n, size int
	every   time.Duration
}

func (c *chunks) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(c.every)
	c.n--
	return copy(p, bytes.Repeat([]byte("y"), min(c.size, len(p)))), nil
}

// TestRateMeterWindows checks the rule's arithmetic: bytes count in the
// window where their read ended, a window met lets the next read wait to
// the end of the following one, and a window that ends short fails.
func TestRateMeterWindows(t *testing.T) {
	m := &rateMeter{rate: bodyRate{min: 100, window: time.Second}} // 100 bytes a window
	if got := m.left(); got != time.Second {
		t.Errorf("left at the start = %v, want 1s", got)
	}
	if m.read(600*time.Millisecond, 100) {
		t.Fatal("a met window failed")
	}
	if got := m.left(); got != 1400*time.Millisecond {
		t.Errorf("left once the window is met = %v, want 1.4s (to the end of the next)", got)
	}
	// Crossing into the second window: its 10 bytes are not enough by its end.
	if m.read(500*time.Millisecond, 10) {
		t.Fatal("failed before the second window ended")
	}
	if got := m.left(); got != 900*time.Millisecond {
		t.Errorf("left in a short window = %v, want 0.9s", got)
	}
	if !m.read(900*time.Millisecond, 0) {
		t.Error("a window with 10 of 100 bytes did not fail")
	}
	if !strings.Contains(m.tooSlow().Error(), "100 bytes/s over 1s") {
		t.Errorf("message %q does not name the rule", m.tooSlow())
	}
}
