// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
)

// linkUnreferenced is true of blob link rb when no manifest of its
// repository references it, counting what the pass removed as gone.
const linkUnreferenced = `NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.repository_id = rb.repository_id AND mb.blob_digest = rb.digest
		AND NOT EXISTS (SELECT 1 FROM gc_gone_manifests g WHERE g.repository_id = mb.repository_id AND g.digest = mb.manifest_digest))
	AND NOT EXISTS (SELECT 1 FROM gc_gone_links g WHERE g.repository_id = rb.repository_id AND g.digest = rb.digest)`

// linkMark records, for every unreferenced blob link, when a pass first
// found it so ($1), and forgets the marks of the others.
const linkMark = `WITH unref AS (
	SELECT rb.repository_id, rb.digest FROM repository_blobs rb WHERE ` + linkUnreferenced + `
), cleared AS (
	DELETE FROM gc_unreferenced u WHERE u.kind = 'blob-link'
	AND NOT EXISTS (SELECT 1 FROM unref x WHERE x.repository_id = u.repository_id AND x.digest = u.digest)
)
INSERT INTO gc_unreferenced (kind, repository_id, digest, since)
SELECT 'blob-link', repository_id, digest, $1 FROM unref ON CONFLICT DO NOTHING`

var (
	// linkCandidates selects the unreferenced links old enough to go ($1
	// now, $2 cutoff), by digest so that a batch takes few locks.
	linkCandidates = `SELECT rb.repository_id, r.name, rb.digest FROM repository_blobs rb
	JOIN repositories r ON r.id = rb.repository_id
	WHERE ` + linkUnreferenced + ` AND ` + agedSQL("blob-link", "rb", "$1", "$2") + `
	ORDER BY rb.digest, r.name`
	// linkRecheck is true of the batch's links ($1, $2) that may go now.
	linkRecheck = `(rb.repository_id, rb.digest) IN (SELECT * FROM unnest($1::bigint[], $2::text[]))
	AND ` + linkUnreferenced + ` AND ` + agedSQL("blob-link", "rb", "$3", "$4")
)

// sweepBlobLinks removes the repositories' links to blobs that none of
// their manifests references, once the grace has passed since a pass
// first found them so and since they were made. The digest lock is the
// one a commit or mount of the blob into a repository holds while it
// writes the link; a manifest push instead holds its links FOR SHARE,
// which the deleting statement waits for, and the foreign key from its
// references then refuses the deletion.
func (p *pass) sweepBlobLinks(ctx context.Context) error {
	if !p.opts.DryRun {
		tag, err := p.conn.Exec(ctx, linkMark, p.now)
		if err != nil {
			return fmt.Errorf("marking: %w", err)
		}
		p.sum.Marked += tag.RowsAffected()
	}
	cands, err := p.refs(ctx, linkCandidates, p.now, p.cutoff)
	if err != nil {
		return err
	}
	removal := rowRemoval[rowRef, rowRef]{
		table: "repository_blobs rb", where: linkRecheck, returning: "rb.repository_id, rb.digest",
		args: func(b []rowRef) []any { return append(refArgs(b), p.now, p.cutoff) },
		scan: scanRef,
	}
	items, err := sweepBatches(ctx, p, KindBlobLink, cands, digestLock, func(ctx context.Context, b []rowRef) ([]Item, error) {
		gone, err := removeRows(ctx, p, removal, b)
		if err != nil {
			return nil, err
		}
		return p.gone(ctx, KindBlobLink, "gc_gone_links", b, gone, func(r rowRef) Item {
			return Item{Kind: KindBlobLink, Repo: r.repo, Digest: r.digest, Bytes: int64(len(r.digest)),
				Objects: []string{p.layout.LayerLink(r.repo, digest.Digest(r.digest))}}
		})
	})
	p.sum.Removed = append(p.sum.Removed, items...)
	p.sum.Kept += int64(len(cands) - len(items))
	return err
}

// blobUnreferenced is true of blob b when no repository links it and no
// manifest is it, counting what the pass removed as gone.
const blobUnreferenced = `NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest
		AND NOT EXISTS (SELECT 1 FROM gc_gone_links g WHERE g.repository_id = rb.repository_id AND g.digest = rb.digest))
	AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest
		AND NOT EXISTS (SELECT 1 FROM gc_gone_manifests g WHERE g.repository_id = m.repository_id AND g.digest = m.digest))
	AND NOT EXISTS (SELECT 1 FROM gc_gone_blobs g WHERE g.digest = b.digest)`

// blobRef is a blob row.
type blobRef struct {
	digest string
	size   int64
}

// sweepBlobs removes the blobs nothing references, with no grace: a blob
// without links or manifests is invisible to clients (HEAD, GET and
// mounts all go through a link, manifest pushes through links and
// manifests), and whatever would make it visible again writes under the
// blob's digest lock, which the deletion holds from its re-check until
// its object is gone.
func (p *pass) sweepBlobs(ctx context.Context) error {
	rows, err := p.conn.Query(ctx, `SELECT b.digest, b.size FROM blobs b WHERE `+blobUnreferenced+` ORDER BY b.digest`)
	if err != nil {
		return fmt.Errorf("choosing candidates: %w", err)
	}
	cands, err := pgx.CollectRows(rows, scanBlob)
	if err != nil {
		return fmt.Errorf("choosing candidates: %w", err)
	}
	removal := rowRemoval[blobRef, blobRef]{
		table: "blobs b", where: `b.digest = ANY($1::text[]) AND ` + blobUnreferenced, returning: "b.digest, b.size",
		args: func(bs []blobRef) []any {
			ds := make([]string, len(bs))
			for i, b := range bs {
				ds[i] = b.digest
			}
			return []any{ds}
		},
		scan: scanBlob,
	}
	lock := func(b blobRef) (int64, bool) { return store.DigestLockKey(digest.Digest(b.digest)), true }
	items, err := sweepBatches(ctx, p, KindBlob, cands, lock, func(ctx context.Context, b []blobRef) ([]Item, error) {
		gone, err := removeRows(ctx, p, removal, b)
		if err != nil || len(gone) == 0 {
			return nil, err
		}
		if _, err := p.conn.Exec(ctx, `INSERT INTO gc_gone_blobs SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`,
			removal.args(gone)...); err != nil {
			return nil, err
		}
		items := make([]Item, len(gone))
		for i, g := range gone {
			items[i] = Item{Kind: KindBlob, Digest: g.digest, Bytes: g.size,
				Objects: []string{p.layout.BlobData(digest.Digest(g.digest))}}
		}
		return items, nil
	})
	p.sum.Removed = append(p.sum.Removed, items...)
	p.sum.Kept += int64(len(cands) - len(items))
	return err
}

func scanBlob(row pgx.CollectableRow) (blobRef, error) {
	var b blobRef
	err := row.Scan(&b.digest, &b.size)
	return b, err
}
