// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/pglock"
)

// GrantSQL is what [Grant] runs, with %[1]s the serving role, %[2]s the
// schema and %[3]s the database, each a quoted identifier. The serving
// role gets what `registry serve` (its background jobs included) and the
// maintenance subcommands need, and on the append-only tables no more
// than reading and appending: it owns nothing, so it can neither disable
// nor drop audit_events' trigger, nor replace its function.
//
// Everything is revoked first, so a run also takes back what an earlier
// release or a hand-written GRANT gave, and the result is the same
// however often it runs. docs/auth.md prints the same statements.
const GrantSQL = `GRANT USAGE ON SCHEMA %[2]s TO %[1]s;
REVOKE ALL ON ALL TABLES IN SCHEMA %[2]s FROM %[1]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %[2]s TO %[1]s;
REVOKE UPDATE, DELETE ON audit_events FROM %[1]s;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM %[1]s;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA %[2]s FROM %[1]s;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA %[2]s TO %[1]s;
GRANT CONNECT, TEMPORARY ON DATABASE %[3]s TO %[1]s;`

// Grant gives role, the role replicas serve as, exactly the privileges
// [GrantSQL] lists on every table and sequence of the schema as it is now.
// A migration that adds a table leaves the serving role without it, so
// every `registry migrate` of a split deployment runs Grant after
// migrating (`--grant-to`); default privileges alone would miss what an
// older release created and grant too much on a future append-only table.
//
// It runs as the owner under the migration lock, in one transaction, so
// replicas serving meanwhile see the old grants or the new ones. It
// refuses a role that would keep the owner's power: the connecting role
// itself, a member of the schema's owner, or a superuser.
func Grant(ctx context.Context, pool *pgxpool.Pool, role string) error {
	if role == "" {
		return errors.New("grant: no serving role named")
	}
	lock, err := pglock.Acquire(ctx, pool, pglock.Key(pglock.NamespaceMigrate, "schema"), pglock.Exclusive)
	if err != nil {
		return fmt.Errorf("waiting for the migration lock: %w", err)
	}
	defer lock.Release(context.Background())
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var schemaName, db string
		if err := tx.QueryRow(ctx, `SELECT current_schema(), current_database()`).Scan(&schemaName, &db); err != nil {
			return fmt.Errorf("grant: %w", err)
		}
		if err := checkServingRole(ctx, tx, role); err != nil {
			return err
		}
		q := fmt.Sprintf(GrantSQL, pgx.Identifier{role}.Sanitize(), pgx.Identifier{schemaName}.Sanitize(), pgx.Identifier{db}.Sanitize())
		for _, stmt := range strings.Split(q, ";\n") {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("grant to %s: %s: %w", role, strings.TrimSuffix(stmt, ";"), err)
			}
		}
		return nil
	})
}

// checkServingRole refuses a role for which the grants would mean
// nothing: one that owns the schema's tables (or is a member of their
// owner), or a superuser. The owner is read from audit_events, so the
// schema must be migrated first.
func checkServingRole(ctx context.Context, tx pgx.Tx, role string) error {
	var exists, super, owner bool
	err := tx.QueryRow(ctx, `SELECT true, r.rolsuper,
			pg_has_role(r.oid, (SELECT relowner FROM pg_class WHERE oid = 'audit_events'::regclass), 'MEMBER')
		FROM pg_roles r WHERE r.rolname = $1`, role).Scan(&exists, &super, &owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("grant: role %q does not exist: create it first (CREATE ROLE %s LOGIN PASSWORD '...')",
			role, pgx.Identifier{role}.Sanitize())
	case err != nil:
		return fmt.Errorf("grant: reading role %q: %w", role, err)
	case super:
		return fmt.Errorf("grant: role %q is a superuser, which no grant confines: serve as a role without SUPERUSER", role)
	case owner:
		return fmt.Errorf("grant: role %q owns the schema (or is a member of its owner): "+
			"serve as a separate role that owns nothing, and migrate as the owner", role)
	}
	return nil
}
