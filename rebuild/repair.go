// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/s3store"
)

// staleRow is an index row whose object the listing did not find.
type staleRow struct {
	kind   Kind
	repo   string
	tag    string
	digest digest.Digest
}

// listStale reports and returns the index rows whose objects the listing
// did not find, in the order --repair deletes them: tags, manifests, blob
// links, blobs, so that no foreign key stands in the way.
func listStale(ctx context.Context, conn *pgx.Conn, rep *reporter) ([]staleRow, error) {
	var out []staleRow
	for _, q := range staleQueries {
		err := queryEach(ctx, conn, q.sql, func(rows pgx.Rows) error {
			f := Finding{Kind: q.kind}
			if err := rows.Scan(&f.Repo, &f.Tag, &f.Digest, &f.Detail); err != nil {
				return err
			}
			rep.add(f)
			out = append(out, staleRow{kind: f.Kind, repo: f.Repo, tag: f.Tag, digest: digest.Digest(f.Digest)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// repairer deletes stale rows. Each row is handled in a transaction of
// its own that takes the lock a push of the same object takes, then asks
// S3 again whether the object is there: a row is deleted only when its
// object is proven gone at that moment, so a push racing the repair keeps
// its rows.
type repairer struct {
	pool *pgxpool.Pool
	s3   *s3store.Store
	log  zerolog.Logger
}

// errStillThere stops a repair whose object exists after all.
var errStillThere = errors.New("the object exists now")

// repairPlan is how one kind of stale row is proven stale and deleted.
type repairPlan struct {
	// keys are the objects the row stands for; one missing proves it.
	keys []string
	// seed selects (repository id, digest) of the manifests that cannot
	// outlive the row; they go first, with every index listing them.
	seed string
	// deletes then remove the row and its like.
	deletes []string
	args    []any
}

func (r *repairer) plan(row staleRow) (repairPlan, error) {
	l := r.s3.Layout()
	d := row.digest
	switch row.kind {
	case StaleTag:
		return repairPlan{keys: []string{l.TagCurrentLink(row.repo, row.tag)},
			deletes: []string{`DELETE FROM tags t USING repositories r WHERE r.id = t.repository_id AND r.name = $1 AND t.name = $2`},
			args:    []any{row.repo, row.tag}}, nil
	case StaleManifest:
		return repairPlan{keys: []string{l.RevisionLink(row.repo, d), l.BlobData(d)},
			seed: `SELECT m.repository_id, m.digest FROM manifests m
				JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2`,
			args: []any{row.repo, d.String()}}, nil
	case StaleBlobLink:
		return repairPlan{keys: []string{l.LayerLink(row.repo, d), l.BlobData(d)},
			seed: `SELECT mb.repository_id, mb.manifest_digest FROM manifest_blobs mb
				JOIN repositories r ON r.id = mb.repository_id WHERE r.name = $1 AND mb.blob_digest = $2`,
			deletes: []string{`DELETE FROM repository_blobs rb USING repositories r
				WHERE r.id = rb.repository_id AND r.name = $1 AND rb.digest = $2`},
			args: []any{row.repo, d.String()}}, nil
	case StaleBlob:
		return repairPlan{keys: []string{l.BlobData(d)},
			seed: `SELECT repository_id, digest FROM manifests WHERE digest = $1
				UNION SELECT repository_id, manifest_digest FROM manifest_blobs WHERE blob_digest = $1`,
			deletes: []string{`DELETE FROM repository_blobs WHERE digest = $1`, `DELETE FROM blobs WHERE digest = $1`},
			args:    []any{d.String()}}, nil
	}
	return repairPlan{}, fmt.Errorf("no repair for %s", row.kind)
}

// repair deletes row and what depends on it, returning how many rows went.
// A row whose object exists after all is left alone with errStillThere.
func (r *repairer) repair(ctx context.Context, row staleRow) (int64, error) {
	p, err := r.plan(row)
	if err != nil {
		return 0, err
	}
	var deleted int64
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		deleted = 0
		lock := func() error { return store.LockDigest(ctx, tx, row.digest) }
		if row.kind == StaleTag {
			lock = func() error { return store.LockTags(ctx, tx, row.repo, []string{row.tag}) }
		}
		if err := lock(); err != nil {
			return err
		}
		if err := r.gone(ctx, p.keys...); err != nil {
			return err
		}
		if p.seed != "" {
			n, err := r.deleteManifests(ctx, tx, p.seed, p.args...)
			deleted += n
			if err != nil {
				return err
			}
		}
		for _, q := range p.deletes {
			tag, err := tx.Exec(ctx, q, p.args...)
			if err != nil {
				return err
			}
			deleted += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, err // rolled back
	}
	return deleted, nil
}

// gone returns nil when at least one of keys is missing, errStillThere
// when all exist.
func (r *repairer) gone(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		_, err := r.s3.Stat(ctx, k)
		if errors.Is(err, s3store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return errStillThere
}

// deleteManifests deletes the manifests seed selects (repository id,
// digest) and every index listing one of them, since an index cannot
// outlive a manifest it lists. Indexes go before what they list: the
// foreign key from an index entry to the listed manifest restricts.
func (r *repairer) deleteManifests(ctx context.Context, tx pgx.Tx, seed string, args ...any) (int64, error) {
	rows, err := tx.Query(ctx, `WITH RECURSIVE doomed (repository_id, digest) AS (`+seed+`
		UNION SELECT mc.repository_id, mc.parent_digest FROM manifest_children mc
			JOIN doomed d ON mc.repository_id = d.repository_id AND mc.child_digest = d.digest)
		SELECT repository_id, digest FROM doomed`, args...)
	if err != nil {
		return 0, err
	}
	type key struct {
		repo   int64
		digest string
	}
	doomed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (key, error) {
		var k key
		return k, row.Scan(&k.repo, &k.digest)
	})
	if err != nil {
		return 0, err
	}
	var deleted int64
	for len(doomed) > 0 {
		ids := make([]int64, len(doomed))
		digests := make([]string, len(doomed))
		for i, k := range doomed {
			ids[i], digests[i] = k.repo, k.digest
		}
		rows, err := tx.Query(ctx, `DELETE FROM manifests m USING unnest($1::bigint[], $2::text[]) AS x (id, digest)
			WHERE m.repository_id = x.id AND m.digest = x.digest
				AND NOT EXISTS (SELECT 1 FROM manifest_children mc WHERE mc.repository_id = m.repository_id AND mc.child_digest = m.digest)
			RETURNING m.repository_id, m.digest, (SELECT name FROM repositories r WHERE r.id = m.repository_id)`, ids, digests)
		if err != nil {
			return deleted, err
		}
		gone := map[key]bool{}
		for rows.Next() {
			var k key
			var name string
			if err := rows.Scan(&k.repo, &k.digest, &name); err != nil {
				rows.Close()
				return deleted, err
			}
			gone[k] = true
			r.log.Info().Str("repository", name).Str("digest", k.digest).Msg("repair: deleted the manifest's row")
		}
		if err := rows.Err(); err != nil {
			return deleted, err
		}
		if len(gone) == 0 {
			return deleted, fmt.Errorf("manifest %s is listed by an index that is not being deleted", doomed[0].digest)
		}
		deleted += int64(len(gone))
		doomed = slices.DeleteFunc(doomed, func(k key) bool { return gone[k] })
	}
	return deleted, nil
}
