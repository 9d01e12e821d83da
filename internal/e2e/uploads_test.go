// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestChunkedUploadAcrossReplicas pushes one blob in chunks of uneven
// sizes, each to another replica, crossing S3 part boundaries in the middle
// of chunks, then pulls it back whole and by ranges from each replica. It
// runs for both digest algorithms.
func TestChunkedUploadAcrossReplicas(t *testing.T) {
	a := Start(t)
	replicas := []*Stack{a, a.Replica(t), a.Replica(t)}
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			blob := make([]byte, 14<<20+17)
			rand.Read(blob)
			d := alg.FromBytes(blob)
			chunks := []int{1 << 20, 3 << 20, 4<<20 + 5, 100, 5 << 20}
			repo := "chunks/" + string(alg)

			resp, _ := call(t, a, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
			loc := resp.Header.Get("Location")
			off := 0
			for i, n := range chunks {
				r := replicas[(i+1)%len(replicas)]
				h := map[string]string{"Content-Range": fmt.Sprintf("%d-%d", off, off+n-1), "Content-Type": "application/octet-stream"}
				resp, body := call(t, r, "PATCH", loc, h, blob[off:off+n])
				if resp.StatusCode != 202 {
					t.Fatalf("chunk %d: status %d: %s", i, resp.StatusCode, body)
				}
				off += n
				if got := resp.Header.Get("Range"); got != fmt.Sprintf("0-%d", off-1) {
					t.Fatalf("chunk %d: Range %q, want 0-%d", i, got, off-1)
				}
				loc = resp.Header.Get("Location")
			}
			// The rest goes with the final PUT, on yet another replica.
			resp, body := call(t, replicas[2], "PUT", loc+"?digest="+d.String(), nil, blob[off:])
			if resp.StatusCode != 201 {
				t.Fatalf("finish: status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
				t.Errorf("Docker-Content-Digest %q, want %q", got, d)
			}
			// A late request on the finished session finds nothing and
			// changes nothing.
			before := snapshot(t, a)
			if resp, _ := call(t, replicas[1], "DELETE", loc, nil, nil); resp.StatusCode != 404 {
				t.Errorf("cancel after finish: status %d, want 404", resp.StatusCode)
			}
			if after := snapshot(t, a); after != before {
				t.Errorf("a late cancel changed state")
			}
			for i, r := range replicas {
				resp, got := call(t, r, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil, nil)
				if resp.StatusCode != 200 || !bytes.Equal(got, blob) {
					t.Fatalf("replica %d: pull status %d, %d bytes, equal %v", i, resp.StatusCode, len(got), bytes.Equal(got, blob))
				}
				resp, got = call(t, r, "GET", "/v2/"+repo+"/blobs/"+d.String(), map[string]string{"Range": "bytes=5242870-5242889"}, nil)
				if resp.StatusCode != 206 || !bytes.Equal(got, blob[5242870:5242890]) {
					t.Fatalf("replica %d: range status %d, equal %v", i, resp.StatusCode, bytes.Equal(got, blob[5242870:5242890]))
				}
			}
			// No upload data or multipart upload is left behind.
			if snap := snapshot(t, a); strings.Contains(snap, "_uploads") || strings.Contains(snap, "\nuploads ") {
				t.Errorf("upload leftovers:\n%s", snap)
			}
		})
	}
}

// TestConcurrentChunks sends the same chunk to one session from many
// replicas at once: exactly one is accepted, the others get 416, and the
// session stays consistent.
func TestConcurrentChunks(t *testing.T) {
	a := Start(t)
	replicas := []*Stack{a, a.Replica(t)}
	resp, _ := call(t, a, "POST", "/v2/race/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	chunk := make([]byte, 6<<20)
	rand.Read(chunk)
	var wg sync.WaitGroup
	statuses := make([]int, 6)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := call(t, replicas[i%2], "PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("0-%d", len(chunk)-1)}, chunk)
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	accepted := 0
	for _, st := range statuses {
		switch st {
		case 202:
			accepted++
		case 416:
		default:
			t.Errorf("unexpected status %d", st)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of %d identical chunks accepted, want 1 (%v)", accepted, len(statuses), statuses)
	}
	d := digest.FromBytes(chunk)
	if resp, body := call(t, a, "PUT", loc+"?digest="+d.String(), nil, nil); resp.StatusCode != 201 {
		t.Fatalf("finish: %d %s", resp.StatusCode, body)
	}
	if resp, got := call(t, a, "GET", "/v2/race/blobs/"+d.String(), nil, nil); resp.StatusCode != 200 || !bytes.Equal(got, chunk) {
		t.Fatalf("pull: %d, equal %v", resp.StatusCode, bytes.Equal(got, chunk))
	}
}
