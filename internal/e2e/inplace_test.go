// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestWholeBlobWritesInPlace: a blob sent whole with its digest (POST
// ?digest=, or POST then one PUT ?digest= with the body) is written by a
// multipart upload straight at its address. A wrong digest leaves nothing
// there and no multipart upload behind; pushing a blob the bucket already
// holds leaves the stored bytes alone; and a second push of the same
// bytes while the first is stored is pullable whole.
func TestWholeBlobWritesInPlace(t *testing.T) {
	s := Start(t)
	blob := make([]byte, 11<<20+3) // three parts
	rand.Read(blob)
	d := digest.FromBytes(blob)
	octets := map[string]string{"Content-Type": "application/octet-stream"}

	// A wrong digest: refused, and nothing changes.
	before := snapshot(t, s)
	wrong := digest.FromString("something else")
	resp, body := call(t, s, "POST", "/v2/inplace/a/blobs/uploads/?digest="+wrong.String(), octets, blob)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "DIGEST_INVALID") {
		t.Fatalf("a monolithic push under the wrong digest: %d %s, want 400 DIGEST_INVALID", resp.StatusCode, body)
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("a refused monolithic push changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	resp, _ = call(t, s, "POST", "/v2/inplace/a/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	sessionOnly := snapshot(t, s)
	resp, body = call(t, s, "PUT", loc+"?digest="+wrong.String(), octets, blob)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "DIGEST_INVALID") {
		t.Fatalf("a whole-body PUT under the wrong digest: %d %s, want 400 DIGEST_INVALID", resp.StatusCode, body)
	}
	if after := snapshot(t, s); after != sessionOnly {
		t.Errorf("a refused whole-body PUT changed state:\nbefore:\n%s\nafter:\n%s", sessionOnly, after)
	}
	if resp, _ := call(t, s, "DELETE", loc, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("cancelling the session: %d", resp.StatusCode)
	}

	// Both ways of pushing a whole blob, then the same bytes again into
	// another repository, each pulled back whole from every repository.
	resp, body = call(t, s, "POST", "/v2/inplace/a/blobs/uploads/?digest="+d.String(), octets, blob)
	if resp.StatusCode != 201 {
		t.Fatalf("monolithic push: %d %s", resp.StatusCode, body)
	}
	for _, repo := range []string{"inplace/b", "inplace/c"} {
		resp, _ = call(t, s, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		resp, body = call(t, s, "PUT", resp.Header.Get("Location")+"?digest="+d.String(), octets, blob)
		if resp.StatusCode != 201 {
			t.Fatalf("whole-body PUT into %s: %d %s", repo, resp.StatusCode, body)
		}
	}
	for _, repo := range []string{"inplace/a", "inplace/b", "inplace/c"} {
		resp, got := call(t, s, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(got, blob) {
			t.Errorf("pull from %s: %d, %d bytes, equal %v", repo, resp.StatusCode, len(got), bytes.Equal(got, blob))
		}
	}
	// One object at the blob's address, nothing staged, no multipart
	// upload left.
	snap := snapshot(t, s)
	if strings.Contains(snap, "_uploads") || strings.Contains(snap, "multipart ") || strings.Contains(snap, "\nuploads ") {
		t.Errorf("upload leftovers:\n%s", snap)
	}
	data := s.S3.Layout().BlobData(d)
	if !strings.Contains(snap, data+" 11534339") {
		t.Errorf("no object of 11534339 bytes at %s:\n%s", data, snap)
	}
}
