// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dumpQueries select every rebuildable index row with repository names for
// ids and without timestamps, which differ between two indexes of the same
// bucket.
var dumpQueries = []string{
	`SELECT 'repository ' || name FROM repositories`,
	`SELECT 'blob ' || digest || ' ' || size FROM blobs`,
	`SELECT 'blob-link ' || r.name || ' ' || rb.digest FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id`,
	`SELECT 'manifest ' || r.name || ' ' || m.digest || ' ' || m.media_type || ' ' || m.artifact_type || ' ' ||
		coalesce(m.subject, '-') || ' ' || coalesce(m.annotations::text, '-') || ' ' || md5(m.content)
		FROM manifests m JOIN repositories r ON r.id = m.repository_id`,
	`SELECT 'manifest-blob ' || r.name || ' ' || x.manifest_digest || ' ' || x.blob_digest
		FROM manifest_blobs x JOIN repositories r ON r.id = x.repository_id`,
	`SELECT 'manifest-child ' || r.name || ' ' || x.parent_digest || ' ' || x.child_digest
		FROM manifest_children x JOIN repositories r ON r.id = x.repository_id`,
	`SELECT 'tag ' || r.name || ' ' || t.name || ' ' || t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id`,
}

// Dump returns the index in a canonical text form, one sorted line per row
// of every table rebuild-db writes, with repository names for ids and no
// timestamps: an index pushes wrote and the index rebuilt from its bucket
// dump equal. Upload sessions are left out; they cannot be rebuilt.
func Dump(ctx context.Context, db *pgxpool.Pool) (string, error) {
	var b strings.Builder
	for _, q := range dumpQueries {
		rows, err := db.Query(ctx, `SELECT line FROM (`+q+`) x (line) ORDER BY line COLLATE "C"`)
		if err != nil {
			return "", fmt.Errorf("dumping the index: %w", err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return "", fmt.Errorf("dumping the index: %w", err)
		}
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}
