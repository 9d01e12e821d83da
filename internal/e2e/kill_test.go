// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestKilledReplicaMidUpload: a replica dies (SIGKILL: no drain, no
// rollback of its own) while it streams a chunk to S3 under the session's
// row lock. The client asks another replica where the upload stands, gets
// the offset before the lost chunk, sends the rest there and finishes:
// the blob is whole and correct. Once with the first chunk still staged in
// PostgreSQL (the dying request starts the S3 multipart upload), once with
// a part already in S3 (the dying request adds one to it).
func TestKilledReplicaMidUpload(t *testing.T) {
	bin := buildRegistry(t, false)
	c := newCluster(t)
	survivor := c.startReplica(t, "survivor", bin, testenv.FreeAddr(t))
	for _, tc := range []struct {
		name  string
		first int // bytes committed before the kill
	}{
		{"staged", 3 << 20},
		{"multipart", 6 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := c.startReplica(t, "victim-"+tc.name, bin, testenv.FreeAddr(t))
			blob := blobBytes(uint64(tc.first), 14<<20+123)
			d := digest.FromBytes(blob)
			loc := startUpload(t, victim, "kill/"+tc.name)
			if st, rng := patch(t, victim, loc, 0, blob[:tc.first]); st != http.StatusAccepted || rng != fmt.Sprintf("0-%d", tc.first-1) {
				t.Fatalf("first chunk: %d, Range %q", st, rng)
			}

			// The doomed chunk: everything else, streamed. Wait until the
			// victim has sent at least one S3 part of it, so that the kill
			// leaves bytes behind in S3 that no committed state knows of.
			parts := victim.metric(t, "registry_s3_operation_duration_seconds_count", `operation="UploadPart"`)
			doomed, pw := streamChunk(t, victim, loc, tc.first, len(blob)-tc.first)
			write(t, pw, blob[tc.first:tc.first+6<<20])
			eventually(t, 30*time.Second, "the victim's S3 part", func() bool {
				return victim.metric(t, "registry_s3_operation_duration_seconds_count", `operation="UploadPart"`) > parts
			})
			if n := sessionsInTransaction(t, c); n != 1 {
				t.Fatalf("%d transactions open while the victim streams, want its one", n)
			}

			victim.signal(t, syscall.SIGKILL)
			if code := victim.waitExit(t, 10*time.Second); code != -1 {
				t.Fatalf("victim exit code %d, want death by signal", code)
			}
			pw.CloseWithError(errors.New("the replica died"))
			if res := <-doomed; res.err == nil {
				t.Fatalf("the doomed chunk was answered %d", res.status)
			}

			// PostgreSQL ends the dead replica's transaction, and with it
			// the session's row lock, when it sees the connection close.
			killed := time.Now()
			eventually(t, 10*time.Second, "the victim's transaction to end", func() bool {
				return sessionsInTransaction(t, c) == 0
			})
			t.Logf("the victim's row lock was gone %v after its death", time.Since(killed).Round(time.Millisecond))

			// The client resumes on the survivor.
			st, rng := uploadOffset(t, survivor, loc)
			if st != http.StatusNoContent || rng != fmt.Sprintf("0-%d", tc.first-1) {
				t.Fatalf("upload status on the survivor: %d, Range %q, want 204 0-%d", st, rng, tc.first-1)
			}
			mid := tc.first + (len(blob)-tc.first)/2
			if st, rng := patch(t, survivor, loc, tc.first, blob[tc.first:mid]); st != http.StatusAccepted || rng != fmt.Sprintf("0-%d", mid-1) {
				t.Fatalf("resumed chunk: %d, Range %q", st, rng)
			}
			if st := put(t, survivor, loc+"?digest="+d.String(), mid, blob[mid:]); st != http.StatusCreated {
				t.Fatalf("closing the upload: %d", st)
			}
			resp, err := http.Get("http://" + survivor.addr + "/v2/kill/" + tc.name + "/blobs/" + d.String())
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) {
				t.Fatalf("pull: %d, %d bytes, equal %v, %v", resp.StatusCode, len(got), bytes.Equal(got, blob), err)
			}
			// The dead request's S3 writes are nobody's: when it began the
			// multipart upload, that upload is left for garbage collection
			// (or the bucket's AbortIncompleteMultipartUpload rule).
			t.Logf("multipart uploads left in the bucket: %q", c.multipartUploads(t))
		})
	}
}

// patch sends one chunk and returns the status and Range.
func patch(t *testing.T, r *replica, loc string, off int, b []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest("PATCH", "http://"+r.addr+loc, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+len(b)-1))
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("PATCH %s on %s: %v", loc, r.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Range")
}

// put closes an upload with a last chunk at off.
func put(t *testing.T, r *replica, url string, off int, b []byte) int {
	t.Helper()
	req, err := http.NewRequest("PUT", "http://"+r.addr+url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+len(b)-1))
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("PUT %s on %s: %v", url, r.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sessionsInTransaction counts the cluster database's connections that
// sit inside a transaction, as a replica's does while it streams a chunk.
func sessionsInTransaction(t *testing.T, c *cluster) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
