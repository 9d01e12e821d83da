// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
)

// TestVerifiedBody proves a matching body is given whole, even to one-byte
// reads, and a body with another digest (same length, one byte changed)
// never is: its last byte stays back and the read fails with ErrUpstream.
func TestVerifiedBody(t *testing.T) {
	blob := make([]byte, 200<<10)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	lie := bytes.Clone(blob)
	lie[len(lie)-1] ^= 1

	for _, c := range []struct {
		name string
		read func(io.Reader) ([]byte, error)
	}{
		{"ReadAll", io.ReadAll},
		{"one byte at a time", func(r io.Reader) ([]byte, error) { return io.ReadAll(iotest.OneByteReader(r)) }},
	} {
		got, err := c.read(verified(io.NopCloser(bytes.NewReader(blob)), d))
		if err != nil || !bytes.Equal(got, blob) {
			t.Errorf("%s of a matching body: %d bytes, %v", c.name, len(got), err)
		}
		got, err = c.read(verified(io.NopCloser(bytes.NewReader(lie)), d))
		if !errors.Is(err, ErrUpstream) || len(got) >= len(lie) {
			t.Errorf("%s of a lying body: %d of %d bytes, %v; want fewer and ErrUpstream", c.name, len(got), len(lie), err)
		}
	}
	// An upstream that stops early is an upstream error, not an end.
	got, err := io.ReadAll(verified(io.NopCloser(iotest.TimeoutReader(bytes.NewReader(blob))), d))
	if !errors.Is(err, ErrUpstream) || len(got) >= len(blob) {
		t.Errorf("a body that fails midway: %d bytes, %v", len(got), err)
	}
	empty := digest.FromBytes(nil)
	if got, err := io.ReadAll(verified(io.NopCloser(bytes.NewReader(nil)), empty)); err != nil || len(got) != 0 {
		t.Errorf("the empty blob: %d bytes, %v", len(got), err)
	}
}

// TestWindow proves a range of a matching body is given exactly, and a
// range of a lying body, even one ending before the changed byte, fails
// before its last byte.
func TestWindow(t *testing.T) {
	blob := make([]byte, 100<<10)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	lie := bytes.Clone(blob)
	lie[len(lie)-1] ^= 1
	for _, r := range []struct{ offset, length int64 }{{0, 10}, {1000, 1}, {5, -1}, {int64(len(blob)) - 3, 3}} {
		want := blob[r.offset:]
		if r.length >= 0 {
			want = want[:r.length]
		}
		w, err := window(verified(io.NopCloser(bytes.NewReader(blob)), d), r.offset, r.length)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(w); err != nil || !bytes.Equal(got, want) {
			t.Errorf("window %d+%d: %d bytes, %v", r.offset, r.length, len(got), err)
		}
		w, err = window(verified(io.NopCloser(bytes.NewReader(lie)), d), r.offset, r.length)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(w); !errors.Is(err, ErrUpstream) || len(got) >= len(want) {
			t.Errorf("window %d+%d of a lying body: %d of %d bytes, %v", r.offset, r.length, len(got), len(want), err)
		}
	}
	if _, err := window(verified(io.NopCloser(bytes.NewReader(blob[:10])), d), 20, 5); !errors.Is(err, ErrUpstream) {
		t.Errorf("a range past a short body: %v", err)
	}
}
