// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The index's lineage: which PostgreSQL history it belongs to. A failover
// to an asynchronous standby loses the last commits, and a restore from a
// backup loses more, while the bucket keeps what they indexed. Until
// rebuild-db has indexed the bucket again, the index lacks acknowledged
// content, and anything that deletes by what the index does not know
// would delete it. Garbage collection therefore records the history it
// works on in index_lineage and stops deleting when it changes; a
// completed rebuild or repair records the new one.
//
// The timeline comes from the name of the current WAL file, which is the
// timeline the server writes on: pg_control_checkpoint() would still give
// the old one after a promotion until the first checkpoint on the new
// timeline ends. The system identifier needs pg_control_system(), which a
// role may be refused; it is then left out and the timeline and WAL
// position alone tell.

// lineage is where a database's history stands.
type lineage struct {
	systemID *string // nil when the role may not read it
	timeline int64
	lsn      string
}

// readLineage reads conn's database's history. It must not run inside a
// transaction: a refused pg_control_system() would abort it.
func readLineage(ctx context.Context, conn *pgx.Conn) (lineage, error) {
	var l lineage
	err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text,
		('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint`).Scan(&l.lsn, &l.timeline)
	if err != nil {
		return l, fmt.Errorf("reading the database's WAL position and timeline: %w", err)
	}
	var id string
	err = conn.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&id)
	var pe *pgconn.PgError
	switch {
	case err == nil:
		l.systemID = &id
	case errors.As(err, &pe) && pe.Code == "42501": // insufficient privilege
	default:
		return l, fmt.Errorf("reading the database's system identifier: %w", err)
	}
	return l, nil
}

// CheckLineage compares the history of conn's database with the one
// recorded in index_lineage and returns, when they differ or one differed
// before and no rebuild-db has completed since, why registry rebuild-db
// must run before anything deletes by the index again. With record, it
// records the first history it sees, the newest WAL position, and a
// change it found (so that it holds until a rebuild); without, it only
// reads.
func CheckLineage(ctx context.Context, conn *pgx.Conn, record bool) (string, error) {
	cur, err := readLineage(ctx, conn)
	if err != nil {
		return "", err
	}
	var reason string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var id *string
		var tli int64
		var lsn string
		var required *string
		var behind bool
		err := tx.QueryRow(ctx, `SELECT system_identifier, timeline, wal_lsn::text, rebuild_required, $1::pg_lsn < wal_lsn
			FROM index_lineage FOR UPDATE`, cur.lsn).Scan(&id, &tli, &lsn, &required, &behind)
		if errors.Is(err, pgx.ErrNoRows) {
			if record {
				_, err = tx.Exec(ctx, `INSERT INTO index_lineage (system_identifier, timeline, wal_lsn) VALUES ($1, $2, $3)
					ON CONFLICT DO NOTHING`, cur.systemID, cur.timeline, cur.lsn)
			}
			return err
		}
		if err != nil {
			return err
		}
		switch {
		case required != nil:
			reason = *required
			return nil
		case id != nil && cur.systemID != nil && *id != *cur.systemID:
			reason = fmt.Sprintf("the database's system identifier changed from %s to %s: it is another cluster (restored or replaced)", *id, *cur.systemID)
		case tli != cur.timeline:
			reason = fmt.Sprintf("the database's timeline changed from %d to %d: after a failover or a point-in-time recovery, commits acknowledged before it may be missing from the index", tli, cur.timeline)
		case behind:
			reason = fmt.Sprintf("the database's WAL position %s is behind %s, which garbage collection saw before: the database went back in time", cur.lsn, lsn)
		}
		if !record {
			return nil
		}
		if reason != "" {
			_, err = tx.Exec(ctx, `UPDATE index_lineage SET rebuild_required = $1, updated_at = now()`, reason)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE index_lineage SET wal_lsn = greatest(wal_lsn, $1::pg_lsn),
			system_identifier = coalesce(system_identifier, $2), updated_at = now()`, cur.lsn, cur.systemID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("checking the index's lineage: %w", err)
	}
	return reason, nil
}

// recordRebuilt records l, read when a rebuild began, as the history the
// index now matches, ending any requirement to rebuild. Should a failover
// have happened during the run, l is the old history, and the next check
// on the new primary finds the change again.
func recordRebuilt(ctx context.Context, conn *pgx.Conn, l lineage) error {
	_, err := conn.Exec(ctx, `INSERT INTO index_lineage (system_identifier, timeline, wal_lsn) VALUES ($1, $2, $3)
		ON CONFLICT (singleton) DO UPDATE SET system_identifier = excluded.system_identifier, timeline = excluded.timeline,
			wal_lsn = excluded.wal_lsn, rebuild_required = NULL, updated_at = now()`, l.systemID, l.timeline, l.lsn)
	if err != nil {
		return fmt.Errorf("recording the index's lineage: %w", err)
	}
	return nil
}
