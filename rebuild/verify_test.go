// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
)

func exec(t *testing.T, db *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	tag, err := db.Exec(context.Background(), sql, args...)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("%s: %v (%d rows)", sql, err, tag.RowsAffected())
	}
}

// TestVerifyAndRepair: --verify finds each kind of drift and writes
// nothing; --repair fixes what is safe and leaves the rest, after which
// the index is the one a rebuild into an empty database gives, and a
// second repair changes nothing.
func TestVerifyAndRepair(t *testing.T) {
	b := newBucket(t)
	c := writeCorpus(b)
	orphanLink := b.blob("library/app", []byte("linked by no manifest"))
	orphan := digest.FromString("a blob nothing links")
	b.put(b.l.BlobData(orphan), []byte("a blob nothing links"))
	db := newIndex(t)
	run(t, db, b, ModeRebuild)

	// Drift of every kind. The index lacks: a tag, and a whole new
	// repository pushed while the index was not looking.
	exec(t, db, `DELETE FROM tags WHERE name = 'latest'`)
	b.tag("new/repo", "v1", b.image("new/repo", b.config("new/repo", "new")).Digest)
	// A tag the index points elsewhere than the bucket.
	exec(t, db, `UPDATE tags SET manifest_digest = $1 WHERE name = 'amd64'`, c.arm64.Digest.String())
	// Index rows whose objects are gone: a tag link, a revision link (its
	// tag stays in the bucket, now pointing nowhere), a blob link, a blob.
	b.del(b.l.TagCurrentLink("a", "x"))
	var abImage string
	if err := db.QueryRow(context.Background(), `SELECT manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
		WHERE r.name = 'a/b'`).Scan(&abImage); err != nil {
		t.Fatal(err)
	}
	b.del(b.l.RevisionLink("a/b", digest.Digest(abImage)))
	b.del(b.l.LayerLink("library/app", orphanLink.Digest))
	b.del(b.l.BlobData(orphan))
	// A size the index has wrong.
	exec(t, db, `UPDATE blobs SET size = 1 WHERE digest = $1`, c.shared.Digest.String())

	before := dump(t, db)
	s, logs := run(t, db, b, ModeVerify)
	want := map[Kind]int64{
		IndexLacksTag:        2, // library/app:latest, new/repo:v1
		IndexLacksRepository: 1,
		IndexLacksBlob:       2, // the new image's config and manifest
		IndexLacksBlobLink:   1,
		IndexLacksManifest:   1,
		TagDiffers:           1,
		StaleTag:             1,
		StaleManifest:        1,
		StaleBlobLink:        1,
		StaleBlob:            1,
		BlobSizeDiffers:      1,
		TagTargetMissing:     1, // a/b:x, whose revision link went
	}
	if diff := cmp.Diff(want, findings(s)); diff != "" {
		t.Fatalf("verify findings (-want +got):\n%s\nlog:\n%s", diff, logs)
	}
	if s.Changes.Total() != 0 || s.Unresolved != s.Drift() {
		t.Errorf("verify: changes %+v, unresolved %d of %d", s.Changes, s.Unresolved, s.Drift())
	}
	if after := dump(t, db); after != before {
		t.Fatalf("verify wrote to the index:\n%s", cmp.Diff(before, after))
	}

	s, logs = run(t, db, b, ModeRepair)
	if s.Unresolved != 1 {
		t.Errorf("repair left %d differences, want 1 (the blob size, which is not safe to change):\n%s", s.Unresolved, logs)
	}
	wantChanges := Changes{Repositories: 1, Blobs: 2, BlobLinks: 1, Manifests: 1, References: 1, Tags: 2, TagsMoved: 1,
		Deleted: 4} // tag a:x; manifest a/b (its tag goes by cascade, uncounted); blob link; blob
	if diff := cmp.Diff(wantChanges, s.Changes); diff != "" {
		t.Errorf("repair changes (-want +got):\n%s", diff)
	}

	verify, logs := run(t, db, b, ModeVerify)
	if diff := cmp.Diff(map[Kind]int64{BlobSizeDiffers: 1, TagTargetMissing: 1}, findings(verify)); diff != "" {
		t.Errorf("verify after repair (-want +got):\n%s\n%s", diff, logs)
	}
	again, _ := run(t, db, b, ModeRepair)
	if again.Changes.Total() != 0 {
		t.Errorf("a second repair changed %+v", again.Changes)
	}

	// Once the size is set right, the repaired index is the one a
	// rebuild into an empty database gives.
	exec(t, db, `UPDATE blobs SET size = $2 WHERE digest = $1`, c.shared.Digest.String(), c.shared.Size)
	fresh := newIndex(t)
	run(t, fresh, b, ModeRebuild)
	if diff := cmp.Diff(dump(t, fresh), dump(t, db)); diff != "" {
		t.Errorf("repaired index (-rebuilt +repaired):\n%s", diff)
	}
}

// TestRepairKeepsRowsWhoseObjectsExist: a row the listing missed (written
// after its prefix was listed) is not deleted: repair asks S3 again.
func TestRepairKeepsRowsWhoseObjectsExist(t *testing.T) {
	b := newBucket(t)
	c := writeCorpus(b)
	db := newIndex(t)
	run(t, db, b, ModeRebuild)
	before := dump(t, db)
	rp := &repairer{pool: db, s3: b.s3, log: zerolog.Nop()}
	for _, row := range []staleRow{
		{kind: StaleTag, repo: "library/app", tag: "v1"},
		{kind: StaleManifest, repo: "library/app", digest: c.amd64.Digest},
		{kind: StaleBlobLink, repo: "library/app", digest: c.shared.Digest},
		{kind: StaleBlob, digest: c.shared.Digest},
	} {
		if n, err := rp.repair(context.Background(), row); !errors.Is(err, errStillThere) || n != 0 {
			t.Errorf("repair of %+v whose object exists: %d rows, %v", row, n, err)
		}
	}
	if after := dump(t, db); after != before {
		t.Errorf("the index changed:\n%s", cmp.Diff(before, after))
	}

	// Once the shared layer's bytes are gone, both images using it and
	// the index listing them go with it, and the tags on them.
	b.del(b.l.BlobData(c.shared.Digest))
	n, err := rp.repair(context.Background(), staleRow{kind: StaleBlob, digest: c.shared.Digest})
	if err != nil {
		t.Fatal(err)
	}
	// amd64, arm64, the index listing them; library/copy's image; the
	// two blob links; the blob. The artifact whose subject is the index
	// stays: a subject need not exist.
	if n != 7 {
		t.Errorf("deleted %d rows, want 7", n)
	}
	var tags int
	db.QueryRow(context.Background(), `SELECT count(*) FROM tags t JOIN repositories r ON r.id = t.repository_id
		WHERE r.name IN ('library/app', 'library/copy')`).Scan(&tags)
	if tags != 0 {
		t.Errorf("%d tags left on deleted manifests", tags)
	}
}
