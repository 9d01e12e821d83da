// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
)

// TestSweepUploads steps the clock past the upload TTL: idle sessions end
// (their multipart upload aborted, the data a failed commit left deleted,
// the row gone), a session a request holds is left to it, a session used
// lately stays, and multipart uploads no session owns are aborted: one
// whose session is gone, one a session leaked before recording it, and a
// blob copy's.
func TestSweepUploads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.s3.Layout()
	upload := func(name string, size int) string {
		t.Helper()
		u, err := e.st.StartUpload(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		e.name(u.ID, name)
		if size > 0 {
			if _, err := e.st.AppendUpload(ctx, "app", u.ID, 0, bytes.NewReader(make([]byte, size))); err != nil {
				t.Fatal(err)
			}
		}
		return u.ID
	}
	multipart := func(name, key string) {
		t.Helper()
		id, err := e.s3.CreateMultipart(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		e.name(id, name)
	}
	// big has a part in S3 and the rest staged; its last commit died
	// after assembling the bytes.
	big := upload("big", store.MinPartSize+10)
	if err := e.s3.PutBytes(ctx, l.UploadData("app", big), []byte("assembled")); err != nil {
		t.Fatal(err)
	}
	small := upload("small", 10)
	busy := upload("busy", 0)
	recent := upload("recent", 0)
	orphan := "6f6f6f6f-0000-4000-8000-000000000000"
	e.name(orphan, "orphan")
	multipart("mp-orphan", l.UploadData("app", orphan))
	multipart("mp-leaked", l.UploadData("app", small))
	copied := digest.FromString("a blob above 5 GiB")
	e.name(copied.String(), "huge")
	multipart("mp-copy", l.BlobData(copied))

	sessions := []string{"upload app big size=5242890", "upload app small size=10", "upload app busy size=0",
		"upload app recent size=0", "multipart upload-data app big", "object upload-data app big"}
	orphans := []string{"multipart upload-data app orphan", "multipart upload-data app small", "multipart data huge"}

	e.clock.advance(time.Hour)
	s := e.pass(e.opts())
	e.wantRemoved("within the TTL", s)
	e.want("within the TTL", join(sessions, orphans)...)

	// Past the TTL. A request holds busy's row; recent was used an hour
	// ago (by the clock of the test).
	e.clock.advance(DefaultUploadTTL)
	if _, err := e.db.Exec(ctx, `UPDATE uploads SET updated_at = $2 WHERE id = $1`, recent, e.clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	tx, err := e.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM uploads WHERE id = $1 FOR UPDATE`, busy); err != nil {
		t.Fatal(err)
	}
	s = e.pass(e.opts())
	e.wantRemoved("past the TTL", s, "upload app big [upload-data app big]", "upload app small",
		"multipart-upload app mp-orphan key=upload-data app orphan", "multipart-upload app mp-leaked key=upload-data app small",
		"multipart-upload mp-copy key=data huge")
	e.want("past the TTL", "upload app busy size=0", "upload app recent size=0")
	if s.Kept != 1 {
		t.Errorf("kept %d candidates, want the busy session", s.Kept)
	}
	if want := int64(store.MinPartSize + 10 + 10); s.Bytes() != want {
		t.Errorf("freed %d bytes, want the sessions' %d", s.Bytes(), want)
	}
	// The request that held busy finds its session still there.
	if _, err := tx.Exec(ctx, `UPDATE uploads SET size = 0 WHERE id = $1`, busy); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	s = e.pass(e.opts())
	e.wantRemoved("released", s, "upload app busy")
	e.want("released", "upload app recent size=0")
	if _, err := e.st.AppendUpload(ctx, "app", busy, 0, strings.NewReader("late")); err == nil {
		t.Error("a chunk on an ended session was accepted")
	} else if !strings.Contains(fmt.Sprint(err), "BLOB_UPLOAD_UNKNOWN") {
		t.Errorf("a chunk on an ended session: %v, want BLOB_UPLOAD_UNKNOWN", err)
	}
}

// TestExpireUploadsBesideAPass: upload expiry, as serve runs it without
// garbage collection passes, ends an idle session (row, staged bytes,
// multipart upload) and aborts a multipart upload no session owns, and
// touches nothing else; it runs while a pass holds the gc lock and never
// makes a pass skip; two expiries at once let one run.
func TestExpireUploadsBesideAPass(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.s3.Layout()
	e.blob("app", "unused blob", "no manifest uses me")
	base := e.state()
	u, err := e.st.StartUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	e.name(u.ID, "idle")
	if _, err := e.st.AppendUpload(ctx, "app", u.ID, 0, bytes.NewReader(make([]byte, store.MinPartSize+10))); err != nil {
		t.Fatal(err)
	}
	copied := digest.FromString("a copy that died")
	e.name(copied.String(), "dead")
	id, err := e.s3.CreateMultipart(ctx, l.BlobData(copied))
	if err != nil {
		t.Fatal(err)
	}
	e.name(id, "mp-dead")
	before := e.state()

	// A pass holds the gc lock throughout.
	pass, err := e.db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Release()
	if _, err := pass.Exec(ctx, `SELECT pg_advisory_lock($1)`, LockKey); err != nil {
		t.Fatal(err)
	}
	s, err := ExpireUploads(ctx, e.opts())
	if err != nil || s.Skipped != "" {
		t.Fatalf("expiry within the TTL: %v, skipped %q", err, s.Skipped)
	}
	e.wantRemoved("within the TTL", s)
	if after := e.state(); after != before {
		t.Errorf("expiry within the TTL changed state:\n%s\nwant:\n%s", after, before)
	}

	e.clock.advance(DefaultUploadTTL + time.Minute)
	// Another expiry runs: this one skips.
	other, err := e.db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, ExpiryLockKey); err != nil {
		t.Fatal(err)
	}
	if s, err := ExpireUploads(ctx, e.opts()); err != nil || s.Skipped == "" || len(s.Removed) != 0 {
		t.Errorf("expiry while another runs: %v, skipped %q, removed %v", err, s.Skipped, s.Removed)
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, ExpiryLockKey); err != nil {
		t.Fatal(err)
	}
	other.Release()

	s, err = ExpireUploads(ctx, e.opts())
	if err != nil || s.Skipped != "" {
		t.Fatalf("expiry past the TTL: %v, skipped %q", err, s.Skipped)
	}
	e.wantRemoved("past the TTL", s, "upload app idle", "multipart-upload mp-dead key=data dead")
	// What only a pass removes stays: the blob no manifest uses.
	if after := e.state(); after != base {
		t.Errorf("after expiry:\n%s\nwant:\n%s", after, base)
	}

	// A pass is not kept from running by an expiry holding its lock.
	if _, err := pass.Exec(ctx, `SELECT pg_advisory_unlock($1)`, LockKey); err != nil {
		t.Fatal(err)
	}
	if _, err := pass.Exec(ctx, `SELECT pg_advisory_lock($1)`, ExpiryLockKey); err != nil {
		t.Fatal(err)
	}
	e.pass(e.opts())
}
