// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package schema holds the PostgreSQL schema as versioned migrations
// embedded in the binary, and applies them.
//
// Migrations follow expand/contract: a migration only adds what the
// previous binary can ignore, so binaries N and N+1 both serve on schema
// N+1 during a rolling upgrade; removals come one release later.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/pglock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must run 1, 2, ...: found %d at position %d", m.Version, i+1)
		}
	}
	return ms, nil
}

// Latest is the schema version this binary writes.
func Latest() int {
	ms, err := Migrations()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; tests catch this
	}
	return len(ms)
}

const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies the migrations the database lacks, each in its own
// transaction, under a cluster-wide advisory lock: replicas started
// together migrate once, the others wait and then find nothing to do. It
// returns the versions it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	lock, err := pglock.Acquire(ctx, pool, pglock.Key(pglock.NamespaceMigrate, "schema"), pglock.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("waiting for the migration lock: %w", err)
	}
	defer lock.Release(context.Background())

	if _, err := pool.Exec(ctx, createVersionTable); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	current, err := Version(ctx, pool)
	if err != nil {
		return nil, err
	}
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
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// Version returns the database's schema version, 0 for an empty database.
func Version(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}

// Check refuses, with a message an operator can act on, a database this
// binary cannot serve: one not yet migrated to this binary's version.
// A newer schema is served, because migrations only expand.
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	v, err := Version(ctx, pool)
	if err != nil {
		return err
	}
	if latest := Latest(); v < latest {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run `registry migrate` (or `registry serve --migrate`)", v, latest)
	}
	return nil
}
