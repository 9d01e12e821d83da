// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package schema

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// migrateSplit migrates a new database as the owner and grants to the
// serving role, twice (a second run must change nothing), and returns
// a pool connected as the serving role.
func migrateSplit(t *testing.T) (owner, serving *pgxpool.Pool) {
	t.Helper()
	db := testenv.PostgresDatabase(t)
	owner = mustPool(t, db.Owner)
	for range 2 {
		if _, err := Migrate(t.Context(), owner); err != nil {
			t.Fatal(err)
		}
		if err := Grant(t.Context(), owner, testenv.ServingRole); err != nil {
			t.Fatalf("Grant: %v", err)
		}
	}
	return owner, mustPool(t, db.Serving)
}

func mustPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestServingRoleCannotRewriteTheAuditLog connects as the role replicas
// serve as and tries every way of changing history that the owner of
// audit_events has: each must be refused for lack of privilege, while
// appending and reading work.
func TestServingRoleCannotRewriteTheAuditLog(t *testing.T) {
	_, serving := migrateSplit(t)
	ctx := t.Context()
	if err := Check(ctx, serving); err != nil {
		t.Fatalf("Check as the serving role: %v", err)
	}
	if applied, err := Migrate(ctx, serving); err != nil || len(applied) != 0 {
		t.Errorf("Migrate as the serving role on a migrated database = %v, %v; want nothing to do", applied, err)
	}
	if _, err := serving.Exec(ctx, `INSERT INTO audit_events (action, identity) VALUES ('push', 'alice')`); err != nil {
		t.Fatalf("INSERT as the serving role: %v", err)
	}
	var n int
	if err := serving.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT as the serving role = %d, %v; want 1 row", n, err)
	}
	for _, stmt := range []string{
		`UPDATE audit_events SET identity = 'mallory'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
		`ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only`,
		`ALTER TABLE audit_events DISABLE TRIGGER ALL`,
		`DROP TRIGGER audit_events_append_only ON audit_events`,
		`DROP TRIGGER audit_events_no_truncate ON audit_events`,
		`CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END; $$`,
		`DROP TABLE audit_events`,
		`ALTER TABLE audit_events OWNER TO CURRENT_USER`,
		`SELECT id FROM audit_events FOR UPDATE`,
		`UPDATE schema_migrations SET version = 0`,
		`CREATE TABLE intruder (x int)`,
	} {
		_, err := serving.Exec(ctx, stmt)
		if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("as the serving role, %s: %v; want a permission error (42501)", stmt, err)
		}
	}
	var identity string
	if err := serving.QueryRow(ctx, `SELECT identity FROM audit_events`).Scan(&identity); err != nil || identity != "alice" {
		t.Errorf("the audit row after the attempts: %q, %v; want it unchanged", identity, err)
	}
}

// TestServingRoleCanDoItsWork: the serving role may write the index
// tables and their sequences, and a table a later migration adds is
// granted by the next Grant.
func TestServingRoleCanDoItsWork(t *testing.T) {
	owner, serving := migrateSplit(t)
	ctx := t.Context()
	err := pgx.BeginFunc(ctx, serving, func(tx pgx.Tx) error {
		for _, stmt := range []string{
			`INSERT INTO repositories (name) VALUES ('a')`,
			`UPDATE repositories SET name = 'b' WHERE name = 'a'`,
			`CREATE TEMP TABLE staging (x int)`, // rebuild-db stages in temporary tables
			`DELETE FROM repositories WHERE name = 'b'`,
			`INSERT INTO webhook_outbox (url, event) VALUES ('http://x', '{}')`,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return errors.New(stmt + ": " + err.Error())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("as the serving role: %v", err)
	}

	// A later migration's table: not readable until the next Grant.
	if _, err := owner.Exec(ctx, `CREATE TABLE later (id bigint GENERATED ALWAYS AS IDENTITY, x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := serving.Exec(ctx, `INSERT INTO later (x) VALUES (1)`); err == nil {
		t.Fatal("the serving role wrote a table created after the grants; the test proves nothing")
	}
	if err := Grant(ctx, owner, testenv.ServingRole); err != nil {
		t.Fatal(err)
	}
	if _, err := serving.Exec(ctx, `INSERT INTO later (x) VALUES (1)`); err != nil {
		t.Errorf("after Grant, INSERT into the new table: %v", err)
	}
}

// TestGrantRefusesTheOwner: granting to the role that owns the schema
// would confine nothing, so Grant says so instead.
func TestGrantRefusesTheOwner(t *testing.T) {
	owner, _ := migrateSplit(t)
	for role, want := range map[string]string{
		testenv.OwnerRole:   "owns the schema",
		"postgres":          "superuser",
		"no_such_role_here": "does not exist",
	} {
		if err := Grant(t.Context(), owner, role); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Grant(%s) = %v, want an error saying %q", role, err, want)
		}
	}
}

// TestServingRoleCannotMigrate: a serving role asked to migrate a database
// behind its binary is told which role must.
func TestServingRoleCannotMigrate(t *testing.T) {
	db := testenv.PostgresDatabase(t)
	_, err := Migrate(t.Context(), mustPool(t, db.Serving))
	if err == nil || !strings.Contains(err.Error(), "migrate --grant-to") {
		t.Fatalf("Migrate as the serving role on an empty database = %v, want a pointer to migrate --grant-to as the owner", err)
	}
}
