// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// What the walk finds is staged in temporary tables of the run's own
// connection, streamed in with COPY, so that memory stays bounded however
// large the bucket, and so that reconciling it with the index is a handful
// of set operations in PostgreSQL rather than a whole-bucket structure here.

// table is a staging table.
type table int

const (
	sBlobs     table = iota // blob data objects: digest, size
	sLayers                 // blob links: repository, digest
	sRevisions              // revision links: repository, digest
	sTags                   // tag current links: repository, tag, digest
	sManifests              // manifests that parsed, once per digest
	sRefs                   // their references: blobs (child false) and index entries (child true)
	sDamaged                // manifests that cannot be indexed: the finding kind and why
	numTables
)

var stagingTables = [numTables]struct {
	name    string
	columns []string
	ddl     string
}{
	sBlobs:     {"s_blobs", []string{"digest", "size", "modified"}, "digest text NOT NULL, size bigint NOT NULL, modified timestamptz NOT NULL"},
	sLayers:    {"s_layers", []string{"repo", "digest", "modified"}, "repo text NOT NULL, digest text NOT NULL, modified timestamptz NOT NULL"},
	sRevisions: {"s_revisions", []string{"repo", "digest", "modified"}, "repo text NOT NULL, digest text NOT NULL, modified timestamptz NOT NULL"},
	sTags:      {"s_tags", []string{"repo", "tag", "digest", "modified"}, "repo text NOT NULL, tag text NOT NULL, digest text NOT NULL, modified timestamptz NOT NULL"},
	sManifests: {"s_manifests", []string{"digest", "media_type", "artifact_type", "content", "subject", "annotations"},
		"digest text NOT NULL, media_type text NOT NULL, artifact_type text NOT NULL, content bytea NOT NULL, subject text, annotations jsonb"},
	sRefs:    {"s_refs", []string{"digest", "ref", "child", "size"}, "digest text NOT NULL, ref text NOT NULL, child boolean NOT NULL, size bigint NOT NULL"},
	sDamaged: {"s_damaged", []string{"digest", "kind", "reason"}, "digest text NOT NULL, kind text NOT NULL, reason text NOT NULL"},
}

// Batches are flushed at whichever limit comes first; the byte limit
// matters for manifests, which may be up to 4 MiB each.
const (
	flushRows  = 5000
	flushBytes = 8 << 20
)

// stagedRow is one row on its way to a staging table.
type stagedRow struct {
	t    table
	vals []any
	size int
}

// stager owns the run's connection while the walk goes on: one goroutine
// batches rows from every producer and copies them in.
type stager struct {
	conn *pgx.Conn
	rows chan stagedRow
	done chan error
}

// createStaging creates the staging tables on conn.
func createStaging(ctx context.Context, conn *pgx.Conn) error {
	for _, t := range stagingTables {
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s (%s)", t.name, t.ddl)); err != nil {
			return fmt.Errorf("creating staging table %s: %w", t.name, err)
		}
	}
	return nil
}

// startStager starts copying rows into conn's staging tables. On a failure
// it calls fail, which must cancel the producers' context, and keeps
// draining so no producer blocks.
func startStager(ctx context.Context, conn *pgx.Conn, fail func(error)) *stager {
	s := &stager{conn: conn, rows: make(chan stagedRow, 4*flushRows), done: make(chan error, 1)}
	go func() {
		var batches [numTables][][]any
		var sizes [numTables]int
		var err error
		flush := func(t table) {
			if err == nil && len(batches[t]) > 0 {
				_, err = conn.CopyFrom(ctx, pgx.Identifier{stagingTables[t].name}, stagingTables[t].columns, pgx.CopyFromRows(batches[t]))
				if err != nil {
					err = fmt.Errorf("staging into %s: %w", stagingTables[t].name, err)
					fail(err)
				}
			}
			batches[t], sizes[t] = nil, 0
		}
		for r := range s.rows {
			if err != nil {
				continue
			}
			batches[r.t] = append(batches[r.t], r.vals)
			sizes[r.t] += r.size
			if len(batches[r.t]) >= flushRows || sizes[r.t] >= flushBytes {
				flush(r.t)
			}
		}
		for t := range numTables {
			flush(t)
		}
		s.done <- err
	}()
	return s
}

// add queues a row; size is its bulk in bytes, roughly.
func (s *stager) add(ctx context.Context, t table, size int, vals ...any) error {
	select {
	case s.rows <- stagedRow{t: t, vals: vals, size: size}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish copies what is left and returns the first error.
func (s *stager) finish() error {
	close(s.rows)
	return <-s.done
}

// analyzeStaging gives the planner the staging tables' statistics, which
// autovacuum never gathers for temporary tables.
func analyzeStaging(ctx context.Context, conn *pgx.Conn) error {
	for _, t := range stagingTables {
		if _, err := conn.Exec(ctx, "ANALYZE "+t.name); err != nil {
			return err
		}
	}
	return nil
}
