// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/rebuild"
	"github.com/ha-registry/ha-registry/s3store"
)

// The bucket stage lists every key of the layout into a temporary table
// of the pass's connection (COPY, streamed while the listing goes on), so
// that finding the keys the index does not know is one set operation.

// listedColumns are gc_listed's columns, in COPY order.
var listedColumns = []string{"key", "kind", "repo", "tag", "digest", "upload_id", "size", "modified"}

const createListed = `CREATE TEMP TABLE gc_listed (
	key text PRIMARY KEY, kind text NOT NULL, repo text NOT NULL, tag text NOT NULL, digest text NOT NULL,
	upload_id uuid, size bigint NOT NULL, modified timestamptz NOT NULL)`

// unknownSQL is true of listed key l when the index knows nothing that
// stands for it. A tag's history link stands for its manifest while the
// tag exists; an upload's data for its session, and for a request
// finishing an upload without a session (a monolithic push) until the
// object is older than the parameter uploadCutoff. Keys of other kinds
// are never unknown: they are left alone.
func unknownSQL(uploadCutoff string) string {
	return `CASE l.kind
	WHEN 'blob-data' THEN NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = l.digest)
	WHEN 'layer-link' THEN NOT EXISTS (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
		WHERE r.name = l.repo AND rb.digest = l.digest)
	WHEN 'revision-link' THEN NOT EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE r.name = l.repo AND m.digest = l.digest)
	WHEN 'tag-current-link' THEN NOT EXISTS (SELECT 1 FROM tags t JOIN repositories r ON r.id = t.repository_id
		WHERE r.name = l.repo AND t.name = l.tag)
	WHEN 'tag-index-link' THEN NOT EXISTS (SELECT 1 FROM tags t JOIN repositories r ON r.id = t.repository_id
		JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = l.digest WHERE r.name = l.repo AND t.name = l.tag)
	WHEN 'upload-data' THEN l.modified <= ` + uploadCutoff + `::timestamptz
		AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.id = l.upload_id)
	ELSE false END`
}

// objectRef is a listed key the index does not know.
type objectRef struct {
	key, kind, repo, tag, digest string
	size                         int64
}

// sweepObjects deletes the bucket objects the index does not know, once
// two passes, the grace period apart, found them so: a push writes its
// objects before its rows, so a single listing would catch pushes in
// flight. Each is deleted under the lock its writers hold, after the
// re-check, so that a push of it cannot be in flight.
func (p *pass) sweepObjects(ctx context.Context) error {
	if err := p.list(ctx); err != nil {
		return err
	}
	if _, err := p.conn.Exec(ctx, `CREATE TEMP TABLE gc_unknown (LIKE gc_listed)`); err != nil {
		return err
	}
	if _, err := p.conn.Exec(ctx, `INSERT INTO gc_unknown SELECT * FROM gc_listed l WHERE `+unknownSQL("$1"), p.uploadCutoff); err != nil {
		return fmt.Errorf("comparing the listing with the index: %w", err)
	}
	rows, err := p.conn.Query(ctx, `SELECT x.key, x.kind, x.repo, x.tag, x.digest, x.size
		FROM gc_unknown x JOIN gc_unknown_objects g ON g.key = x.key WHERE g.first_seen <= $1 ORDER BY x.key`, p.cutoff)
	if err != nil {
		return fmt.Errorf("choosing candidates: %w", err)
	}
	cands, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (objectRef, error) {
		var o objectRef
		err := row.Scan(&o.key, &o.kind, &o.repo, &o.tag, &o.digest, &o.size)
		return o, err
	})
	if err != nil {
		return fmt.Errorf("choosing candidates: %w", err)
	}
	if !p.opts.DryRun {
		if _, err := p.conn.Exec(ctx, `DELETE FROM gc_unknown_objects g WHERE NOT EXISTS (SELECT 1 FROM gc_unknown x WHERE x.key = g.key)`); err != nil {
			return fmt.Errorf("marking: %w", err)
		}
		tag, err := p.conn.Exec(ctx, `INSERT INTO gc_unknown_objects (key, first_seen) SELECT key, $1 FROM gc_unknown ON CONFLICT DO NOTHING`, p.now)
		if err != nil {
			return fmt.Errorf("marking: %w", err)
		}
		p.sum.Marked += tag.RowsAffected()
	}
	cands, err = p.keepLive(ctx, cands)
	if err != nil {
		return err
	}
	items, err := sweepBatches(ctx, p, KindObject, cands, objectLock, p.recheckObjects)
	p.sum.Removed = append(p.sum.Removed, items...)
	p.sum.Kept += int64(len(cands) - len(items))
	return err
}

// adoptConcurrency bounds the bucket requests an adoption has in flight.
const adoptConcurrency = 8

// keepLive reconciles the index with the bucket for the repositories
// that own candidates (a blob's data: that link it, or whose revision it
// is), as rebuild-db would for them, and drops the candidates the
// bucket's own tags reach: their rows were lost (a failover to a standby
// that had not received the last commits), not deleted. Only objects
// nothing in the bucket reaches stay candidates.
func (p *pass) keepLive(ctx context.Context, cands []objectRef) ([]objectRef, error) {
	repos := map[string]bool{}
	var blobs []string
	for _, o := range cands {
		switch o.kind {
		case "layer-link", "revision-link", "tag-current-link", "tag-index-link":
			repos[o.repo] = true
		case "blob-data":
			blobs = append(blobs, o.digest)
		}
	}
	if len(blobs) > 0 {
		rows, err := p.conn.Query(ctx, `SELECT DISTINCT repo FROM gc_listed
			WHERE kind IN ('layer-link', 'revision-link') AND digest = ANY($1)`, blobs)
		if err != nil {
			return nil, fmt.Errorf("finding who links unknown blobs: %w", err)
		}
		linking, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("finding who links unknown blobs: %w", err)
		}
		for _, r := range linking {
			repos[r] = true
		}
	}
	if len(repos) == 0 {
		return cands, nil
	}
	names := make([]string, 0, len(repos))
	for r := range repos {
		names = append(names, r)
	}
	a, err := rebuild.Adopt(ctx, p.conn, rebuild.AdoptOptions{DB: p.opts.DB, S3: p.s3, Concurrency: adoptConcurrency,
		Logger: p.log, DryRun: p.opts.DryRun, LockTimeout: rowLockTimeout}, names)
	if err != nil {
		return nil, fmt.Errorf("adopting what the bucket's tags reach: %w", err)
	}
	live := make(map[string]bool, len(a.Live))
	for _, k := range a.Live {
		live[k] = true
	}
	var out []objectRef
	for _, o := range cands {
		if live[o.key] {
			p.sum.Live++
			continue
		}
		out = append(out, o)
	}
	p.sum.Adopted += a.Changes.Total()
	if a.Changes.Total() > 0 {
		p.log.Warn().Strs("repositories", names).Int64("rows", a.Changes.Total()).
			Msg("adopted into the index what the bucket's tags reach and the index had lost (a database failover or restore?)")
	}
	return out, nil
}

// objectLock is the lock every writer of the object holds: the digest's
// for blobs and their links, the tag's for tag links. Upload data has
// none; its session row and age stand in.
func objectLock(o objectRef) (int64, bool) {
	switch o.kind {
	case "blob-data", "layer-link", "revision-link":
		return store.DigestLockKey(digest.Digest(o.digest)), true
	case "tag-current-link", "tag-index-link":
		return store.TagLockKey(o.repo, o.tag), true
	}
	return 0, false
}

// recheckObjects returns the items for the objects of a locked batch the
// index still does not know, forgetting their marks.
func (p *pass) recheckObjects(ctx context.Context, batch []objectRef) ([]Item, error) {
	keys := make([]string, len(batch))
	for i, o := range batch {
		keys[i] = o.key
	}
	rows, err := p.conn.Query(ctx, `SELECT l.key FROM gc_listed l WHERE l.key = ANY($1) AND `+unknownSQL("$2"), keys, p.uploadCutoff)
	if err != nil {
		return nil, err
	}
	still, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if !p.opts.DryRun {
		if _, err := p.conn.Exec(ctx, `DELETE FROM gc_unknown_objects WHERE key = ANY($1)`, still); err != nil {
			return nil, err
		}
	}
	unknown := make(map[string]bool, len(still))
	for _, k := range still {
		unknown[k] = true
	}
	var items []Item
	for _, o := range batch {
		if unknown[o.key] {
			items = append(items, Item{Kind: KindObject, Repo: o.repo, Digest: o.digest, Bytes: o.size, Objects: []string{o.key}})
		}
	}
	return items, nil
}

// list copies the layout's keys into gc_listed, counting them.
func (p *pass) list(ctx context.Context) error {
	if _, err := p.conn.Exec(ctx, createListed); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows := make(chan []any, 1024)
	listed := make(chan error, 1)
	var n, unrecognised int64
	go func() {
		defer close(rows)
		for _, prefix := range []string{p.layout.BlobsPrefix(), p.layout.RepositoriesPrefix()} {
			err := p.s3.List(lctx, prefix, func(o s3store.ObjectInfo) error {
				n++
				if n%1000 == 0 {
					if err := p.pace.pause(lctx); err != nil {
						return err
					}
				}
				info, ok := p.layout.ParseKey(o.Key)
				if !ok {
					unrecognised++
					return nil
				}
				var upload any
				if uuidRE.MatchString(info.UploadID) {
					upload = info.UploadID
				}
				select {
				case rows <- []any{o.Key, info.Kind.String(), info.Repo, info.Tag, info.Digest.String(), upload, o.Size, o.LastModified}:
					return nil
				case <-lctx.Done():
					return lctx.Err()
				}
			})
			if err != nil {
				listed <- err
				return
			}
		}
		listed <- nil
	}()
	_, copyErr := p.conn.CopyFrom(lctx, pgx.Identifier{"gc_listed"}, listedColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if r, ok := <-rows; ok {
			return r, nil
		}
		return nil, nil
	}))
	cancel()
	for range rows {
		// Let the lister see the cancellation and end.
	}
	listErr := <-listed
	p.sum.Listed, p.sum.Unrecognised = n, unrecognised
	if copyErr != nil {
		return fmt.Errorf("staging the listing: %w", copyErr)
	}
	if listErr != nil {
		return fmt.Errorf("listing the bucket: %w", listErr)
	}
	if _, err := p.conn.Exec(ctx, `ANALYZE gc_listed`); err != nil {
		return err
	}
	return nil
}
