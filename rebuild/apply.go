// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/s3store"
)

// insertMissing adds everything the bucket holds and the index lacks, in
// one transaction, so an interrupted run leaves the index as it was.
func insertMissing(ctx context.Context, conn *pgx.Conn, c *Changes) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return insertMissingTx(ctx, tx, c) })
}

// insertMissingTx is insertMissing in the caller's transaction.
func insertMissingTx(ctx context.Context, tx pgx.Tx, c *Changes) error {
	var inserted int64
	for _, in := range insertions(c) {
		tag, err := tx.Exec(ctx, in.sql)
		if err != nil {
			return fmt.Errorf("filling the index: %w", err)
		}
		*in.count += tag.RowsAffected()
		inserted += tag.RowsAffected()
	}
	if inserted == 0 {
		return nil
	}
	// Quota figures are kept by pushes, which these rows bypass: drop
	// them, so that the next push or `registry quota recompute`
	// computes them from the index again.
	if _, err := tx.Exec(ctx, `DELETE FROM quota_usage`); err != nil {
		return fmt.Errorf("dropping quota figures: %w", err)
	}
	return nil
}

// tagMove is a tag the index points elsewhere than the bucket.
type tagMove struct {
	repo, tag     string
	bucket, index digest.Digest
}

// listMoves returns the tags the index points elsewhere than the bucket.
func listMoves(ctx context.Context, conn *pgx.Conn) ([]tagMove, error) {
	var out []tagMove
	err := queryEach(ctx, conn, movedTags, func(rows pgx.Rows) error {
		var m tagMove
		var b, i string
		if err := rows.Scan(&m.repo, &m.tag, &b, &i); err != nil {
			return err
		}
		m.bucket, m.index = digest.Digest(b), digest.Digest(i)
		out = append(out, m)
		return nil
	})
	return out, err
}

// moveTag points the tag's row where the bucket's current link points. It
// holds the lock a push of the tag holds and reads the link again under
// it, so a push that moved the tag since it was listed is not undone. It
// reports whether the row changed.
func moveTag(ctx context.Context, pool *pgxpool.Pool, s3 *s3store.Store, m tagMove) (bool, error) {
	moved := false
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := store.LockTags(ctx, tx, m.repo, []string{m.tag}); err != nil {
			return err
		}
		b, err := s3.GetBytes(ctx, s3.Layout().TagCurrentLink(m.repo, m.tag))
		if errors.Is(err, s3store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if digest.Digest(strings.TrimSpace(string(b))) != m.bucket {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE tags t SET manifest_digest = $3, updated_at = now()
			FROM repositories r WHERE r.id = t.repository_id AND r.name = $1 AND t.name = $2 AND t.manifest_digest = $4`,
			m.repo, m.tag, m.bucket.String(), m.index.String())
		moved = tag.RowsAffected() > 0
		return err
	})
	return moved, err
}
