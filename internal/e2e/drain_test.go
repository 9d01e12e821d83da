// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestSIGTERMDrains is what a replica does on SIGTERM, seen from outside:
// /readyz fails at once, requests are still served for the drain delay,
// then new connections are refused while the request in flight runs to
// its end and is committed, and the process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	bin := buildRegistry(t, false)
	c := newCluster(t)
	const drain = 2 * time.Second
	r := c.startReplica(t, "r", bin, testenv.FreeAddr(t), "--drain-delay", drain.String(), "--shutdown-timeout", "30s")

	loc := startUpload(t, r, "drain/app")
	data := blobBytes(1, 3<<20)
	inFlight, pw := streamChunk(t, r, loc, 0, len(data))
	write(t, pw, data[:1<<20])

	term := time.Now()
	r.signal(t, syscall.SIGTERM)
	checkDraining(t, r)

	var refused time.Time
	for deadline := term.Add(drain + 10*time.Second); refused.IsZero(); time.Sleep(20 * time.Millisecond) {
		if refusesConnections(r.addr) {
			refused = time.Now()
		} else if time.Now().After(deadline) {
			t.Fatalf("still accepting connections %v after SIGTERM with a drain delay of %v", time.Since(term), drain)
		}
	}
	// The dial that found the port open may have been a little before
	// the delay ended; the one that found it closed is after.
	if got := refused.Sub(term); got < drain {
		t.Errorf("stopped accepting connections %v after SIGTERM, before the drain delay of %v ended", got, drain)
	}
	select {
	case <-r.exited:
		t.Fatalf("exited with a request in flight: %v", r.waitErr)
	case <-time.After(500 * time.Millisecond):
	}

	write(t, pw, data[1<<20:])
	pw.Close()
	res := <-inFlight
	if res.err != nil || res.status != http.StatusAccepted || res.rng != fmt.Sprintf("0-%d", len(data)-1) {
		t.Fatalf("the request in flight during shutdown: %v, status %d, Range %q", res.err, res.status, res.rng)
	}
	if code := r.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after a clean drain, want 0", code)
	}

	// What the request in flight wrote is there for the next replica.
	next := c.startReplica(t, "next", bin, testenv.FreeAddr(t))
	if st, rng := uploadOffset(t, next, loc); st != http.StatusNoContent || rng != fmt.Sprintf("0-%d", len(data)-1) {
		t.Errorf("upload status on another replica: %d, Range %q", st, rng)
	}
}

// TestShutdownTimeoutBoundsExit: a request that outlasts the shutdown
// timeout (a client stalled in the middle of a chunk) does not keep the
// replica alive. It is cut, and the upload stays where it was for the
// client to resume elsewhere.
func TestShutdownTimeoutBoundsExit(t *testing.T) {
	bin := buildRegistry(t, false)
	c := newCluster(t)
	const timeout = 2 * time.Second
	r := c.startReplica(t, "r", bin, testenv.FreeAddr(t), "--drain-delay", "0s", "--shutdown-timeout", timeout.String())

	loc := startUpload(t, r, "stall/app")
	// A raw connection: Go's client would not notice the cut while its
	// request body blocks.
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 3 << 20
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nContent-Range: 0-%d\r\n\r\n",
		loc, r.addr, n, n-1)
	if _, err := conn.Write(blobBytes(2, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// The stalled client sends nothing more. Let the replica read what
	// came, so the request is surely in its handler.
	time.Sleep(500 * time.Millisecond)

	term := time.Now()
	r.signal(t, syscall.SIGTERM)
	code := r.waitExit(t, timeout+10*time.Second)
	t.Logf("exited %v after SIGTERM with code %d", time.Since(term).Round(time.Millisecond), code)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if answer, err := io.ReadAll(conn); len(answer) > 0 || os.IsTimeout(err) {
		t.Errorf("the stalled request: answer %q, %v; want its connection closed without one", answer, err)
	}

	next := c.startReplica(t, "next", bin, testenv.FreeAddr(t))
	if st, rng := uploadOffset(t, next, loc); st != http.StatusNoContent || rng != "0-0" {
		t.Errorf("upload status after the cut chunk: %d, Range %q, want 204 0-0", st, rng)
	}
}

// startUpload opens an upload session on r and returns its Location.
func startUpload(t *testing.T, r *replica, repo string) string {
	t.Helper()
	resp, err := http.Post("http://"+r.addr+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload on %s: %d", r.name, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// chunkResult is how a streamed chunk ended.
type chunkResult struct {
	status int
	rng    string
	err    error
}

// streamChunk starts a PATCH of n bytes at offset off whose body the
// caller writes, as slowly as it likes, into the returned pipe.
func streamChunk(t *testing.T, r *replica, loc string, off, n int) (<-chan chunkResult, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PATCH", "http://"+r.addr+loc, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(n)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
	done := make(chan chunkResult, 1)
	go func() {
		// Its own connection: nothing else may ride on it.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Do(req)
		if err != nil {
			pr.CloseWithError(err)
			done <- chunkResult{err: err}
			return
		}
		resp.Body.Close()
		done <- chunkResult{status: resp.StatusCode, rng: resp.Header.Get("Range")}
	}()
	return done, pw
}

// write feeds a streamed chunk.
func write(t *testing.T, pw *io.PipeWriter, b []byte) {
	t.Helper()
	if _, err := pw.Write(b); err != nil {
		t.Fatalf("streaming the chunk: %v", err)
	}
}

// uploadOffset asks r where the upload at loc stands: the status and the
// Range header of GET on the upload URL.
func uploadOffset(t *testing.T, r *replica, loc string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + r.addr + loc)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", loc, r.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Range")
}
