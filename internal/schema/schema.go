// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package schema holds the PostgreSQL schema as versioned migrations
// embedded in the binary, and applies them.
//
// Migrations follow expand/contract. An expand migration only adds what
// older binaries can ignore, so during a rolling upgrade binaries N and
// N+1 both serve on schema N+1. A contract migration (a removal, a new
// constraint old code would break) comes a release later and says so in
// its first lines:
//
//	-- min-binary-schema: 7
//
// meaning a binary whose own latest schema is below 7 must no longer
// serve this database. The database records that floor next to each
// applied version, so an old binary that has never seen the migration
// still reads it and refuses, clearly, to start.
package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/pglock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// sources are the directories migrations are read from. Builds for
// upgrade tests add one (see upgradetest.go); releases have only this.
var sources = []fs.FS{mustSub(migrationFiles, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// MinBinarySchema is the oldest binary (by its Latest) that can still
	// serve the database once this migration is applied; 0 for an expand
	// migration, which every binary that served the previous version can.
	MinBinarySchema int
}

var minBinaryRE = regexp.MustCompile(`(?m)^--\s*min-binary-schema:\s*(\d+)\s*$`)

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	var ms []Migration
	for _, src := range sources {
		entries, err := fs.ReadDir(src, ".")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			m, err := readMigration(src, e.Name())
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must run 1, 2, ...: found %d at position %d", m.Version, i+1)
		}
		if m.MinBinarySchema > m.Version {
			return nil, fmt.Errorf("migration %d requires binaries of schema %d, which is newer than itself", m.Version, m.MinBinarySchema)
		}
	}
	return ms, nil
}

func readMigration(src fs.FS, file string) (Migration, error) {
	num, name, ok := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
	v, err := strconv.Atoi(num)
	if !ok || err != nil || !strings.HasSuffix(file, ".sql") {
		return Migration{}, fmt.Errorf("migration file %q is not named NNNN_name.sql", file)
	}
	b, err := fs.ReadFile(src, file)
	if err != nil {
		return Migration{}, err
	}
	m := Migration{Version: v, Name: name, SQL: string(b)}
	if sm := minBinaryRE.FindStringSubmatch(m.SQL); sm != nil {
		if m.MinBinarySchema, err = strconv.Atoi(sm[1]); err != nil {
			return Migration{}, fmt.Errorf("migration %q: min-binary-schema: %w", file, err)
		}
	}
	return m, nil
}

// Latest is the schema version this binary writes.
func Latest() int {
	ms, err := Migrations()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; tests catch this
	}
	return len(ms)
}

// The version table is the one thing every binary, old or new, reads, so
// its shape never changes incompatibly.
const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version           integer PRIMARY KEY,
    name              text NOT NULL,
    applied_at        timestamptz NOT NULL DEFAULT now(),
    min_binary_schema integer NOT NULL DEFAULT 0
)`

// insufficientPrivilege is PostgreSQL's SQLSTATE for a permission error.
const insufficientPrivilege = "42501"

// Migrate applies the migrations the database lacks, each in its own
// transaction, under a cluster-wide advisory lock: replicas started
// together migrate once, the others wait and then find nothing to do. It
// returns the versions it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	// A database already at this binary's version needs nothing, not even
	// the version table's DDL: so `serve --migrate` also starts as a
	// serving role that owns nothing, once the owner has migrated.
	if st, err := readState(ctx, pool); err == nil && st.version >= len(ms) {
		return nil, st.servableBy(len(ms))
	}
	lock, err := pglock.Acquire(ctx, pool, pglock.Key(pglock.NamespaceMigrate, "schema"), pglock.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("waiting for the migration lock: %w", err)
	}
	defer lock.Release(context.Background())

	if _, err := pool.Exec(ctx, createVersionTable); err != nil {
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == insufficientPrivilege {
			return nil, fmt.Errorf("creating schema_migrations: %w: this role may not change the schema; "+
				"run `registry migrate --grant-to SERVING_ROLE` as the role that owns it", err)
		}
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	// Databases created before the floor column existed.
	if _, err := pool.Exec(ctx, `ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS min_binary_schema integer NOT NULL DEFAULT 0`); err != nil {
		return nil, fmt.Errorf("updating schema_migrations: %w", err)
	}
	st, err := readState(ctx, pool)
	if err != nil {
		return nil, err
	}
	if err := st.servableBy(len(ms)); err != nil {
		// A newer binary has migrated further than this one understands;
		// applying nothing is right, serving is for Check to refuse.
		return nil, err
	}
	current := st.version
	var applied []int
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		select {
		case <-lock.Lost():
			return applied, fmt.Errorf("lost the migration lock before migration %d", m.Version)
		default:
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, min_binary_schema) VALUES ($1, $2, $3)`,
				m.Version, m.Name, m.MinBinarySchema)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// state is what the version table says about a database.
type state struct {
	version int // the newest applied migration, 0 for an empty database
	floor   int // the oldest binary schema that may still serve it
	floorBy int // the migration that set floor
}

func readState(ctx context.Context, pool *pgxpool.Pool) (state, error) {
	var st state
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return st, fmt.Errorf("reading schema version: %w", err)
	}
	if !exists {
		return st, nil
	}
	err := pool.QueryRow(ctx, `SELECT
		coalesce((SELECT max(version) FROM schema_migrations), 0),
		coalesce((SELECT min_binary_schema FROM schema_migrations ORDER BY min_binary_schema DESC, version LIMIT 1), 0),
		coalesce((SELECT version FROM schema_migrations ORDER BY min_binary_schema DESC, version LIMIT 1), 0)`).
		Scan(&st.version, &st.floor, &st.floorBy)
	if err != nil {
		return st, fmt.Errorf("reading schema version: %w", err)
	}
	return st, nil
}

// servableBy refuses a database that a contract migration has closed to a
// binary whose latest schema is latest.
func (st state) servableBy(latest int) error {
	if st.floor > latest {
		return fmt.Errorf("database schema is at version %d and migration %d removed what binaries before schema %d rely on; "+
			"this binary knows schema %d: run a newer release", st.version, st.floorBy, st.floor, latest)
	}
	return nil
}

// Version returns the database's schema version, 0 for an empty database.
func Version(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	st, err := readState(ctx, pool)
	return st.version, err
}

// Check refuses, with a message an operator can act on, a database this
// binary cannot serve: one not yet migrated to this binary's version, or
// one a contract migration has moved past it. A newer schema made only of
// expand migrations is served: that is a rolling upgrade in progress.
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	st, err := readState(ctx, pool)
	if err != nil {
		return err
	}
	latest := Latest()
	if st.version < latest {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run `registry migrate` (or `registry serve --migrate`)", st.version, latest)
	}
	return st.servableBy(latest)
}
