// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestFrozenReplicaDoesNotBlockItsSession freezes (SIGSTOP) a replica in
// the middle of a chunk, while it holds the upload session's row lock in
// an open transaction. The client's retry through another replica must
// not hang behind it: it is answered 429 with Retry-After within about
// --upload-lock-timeout, and once the frozen replica is gone the session
// carries on where it stood.
func TestFrozenReplicaDoesNotBlockItsSession(t *testing.T) {
	c := newCluster(t)
	c.env = append(c.env, "REGISTRY_UPLOAD_LOCK_TIMEOUT=1s")
	bin := buildRegistry(t, false)
	frozen := c.startReplica(t, "frozen", bin, testenv.FreeAddr(t))
	other := c.startReplica(t, "other", bin, testenv.FreeAddr(t))
	loc := startUpload(t, other, "hung/app")

	chunk := bytes.Repeat([]byte("h"), 1000)
	done, pw := streamChunk(t, frozen, loc, 0, len(chunk))
	write(t, pw, chunk[:10])
	// The handler locks the session before it reads the body: by now it
	// holds the lock and waits for the rest.
	time.Sleep(500 * time.Millisecond)
	frozen.signal(t, syscall.SIGSTOP)
	thawed := false
	thaw := func() {
		if !thawed {
			frozen.signal(t, syscall.SIGCONT)
			thawed = true
		}
	}
	t.Cleanup(thaw)

	client := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequest("PATCH", "http://"+other.addr+loc, bytes.NewReader(chunk))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(chunk)-1))
	start := time.Now()
	resp, err := client.Do(req)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the retry through another replica: %v after %v", err, took)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the retry while a frozen replica holds the session: %d (Retry-After %q), want 429 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if took > 5*time.Second {
		t.Errorf("the retry took %v, want about the 1s lock timeout", took)
	}

	// The frozen replica's chunk fails once it thaws and its client gives
	// up; it commits nothing, and the session goes on from offset 0.
	thaw()
	pw.CloseWithError(errors.New("the client gave up"))
	<-done
	if status, rng := uploadOffset(t, other, loc); status != http.StatusNoContent || rng != "" && rng != "0-0" {
		t.Fatalf("the session after the frozen chunk: %d %q, want 204 at offset 0", status, rng)
	}
	req, _ = http.NewRequest("PUT", "http://"+other.addr+withDigest(loc, digest.FromBytes(chunk)), bytes.NewReader(chunk))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finishing the upload through the other replica: %d, want 201", resp.StatusCode)
	}
}
