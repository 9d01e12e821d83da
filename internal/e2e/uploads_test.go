// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestStuckChunkCannotHurtItsRetry plays the production corruption seen in
// a peer: a PATCH stalls after it has sent a whole S3 part, the client
// retries the same chunk through another replica and gives up on the
// first. The stalled request may only undo what it did itself; the retry
// completes, and a request arriving after the upload finished finds
// nothing and changes nothing.
func TestStuckChunkCannotHurtItsRetry(t *testing.T) {
	a := Start(t)
	b := a.Replica(t)
	blob := make([]byte, 7<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)

	resp, _ := call(t, a, "POST", "/v2/stuck/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")

	// The stalled request: more than one part's worth, then nothing.
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PATCH", "http://"+a.Addr+loc, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(blob)-1))
	req.ContentLength = int64(len(blob))
	stuck := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			stuck <- 0
			return
		}
		resp.Body.Close()
		stuck <- resp.StatusCode
	}()
	if _, err := pw.Write(blob[:6<<20]); err != nil {
		t.Fatal(err)
	}
	// Wait until the stalled request has put its first part into S3, so
	// that giving up has a multipart upload to undo.
	waitUntil(t, 30*time.Second, "the stalled request's S3 part", func() bool {
		return strings.Contains(snapshot(t, a), "multipart ")
	})

	// The retry queues behind the stalled request's session lock.
	retried := make(chan *http.Response, 1)
	go func() {
		r, _ := call(t, b, "PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("0-%d", len(blob)-1)}, blob)
		retried <- r
	}()
	select {
	case r := <-retried:
		t.Fatalf("the retry ran while the stalled request held the session: %d", r.StatusCode)
	case <-time.After(time.Second):
	}

	// The client gives up on the stalled request.
	pw.CloseWithError(errors.New("client timeout"))
	<-stuck
	var r *http.Response
	select {
	case r = <-retried:
	case <-time.After(60 * time.Second):
		t.Fatal("the retry never ran")
	}
	if r.StatusCode != 202 || r.Header.Get("Range") != fmt.Sprintf("0-%d", len(blob)-1) {
		t.Fatalf("retry: status %d, Range %q", r.StatusCode, r.Header.Get("Range"))
	}
	if resp, body := call(t, a, "PUT", loc+"?digest="+d.String(), nil, nil); resp.StatusCode != 201 {
		t.Fatalf("finish: %d %s", resp.StatusCode, body)
	}

	// Late requests on the finished session, on either replica.
	before := snapshot(t, a)
	for _, late := range []struct {
		s      *Stack
		method string
		path   string
		body   []byte
	}{
		{a, "PATCH", loc, blob[:10]},
		{b, "PUT", loc + "?digest=" + d.String(), nil},
		{a, "DELETE", loc, nil},
		{b, "GET", loc, nil},
	} {
		if resp, body := call(t, late.s, late.method, late.path, nil, late.body); resp.StatusCode != 404 || !strings.Contains(string(body), "BLOB_UPLOAD_UNKNOWN") {
			t.Errorf("late %s: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", late.method, resp.StatusCode, body)
		}
	}
	if after := snapshot(t, a); after != before {
		t.Errorf("late requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if strings.Contains(before, "multipart ") || strings.Contains(before, "_uploads") {
		t.Errorf("upload leftovers after finishing:\n%s", before)
	}
	if resp, got := call(t, b, "GET", "/v2/stuck/blobs/"+d.String(), nil, nil); resp.StatusCode != 200 || !bytes.Equal(got, blob) {
		t.Fatalf("pull: %d, equal %v", resp.StatusCode, bytes.Equal(got, blob))
	}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
