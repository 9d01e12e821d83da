// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/rebuild"
)

// TestLineageGuard: once the database's history differs from the one a
// pass recorded (another timeline, as after a failover; a WAL position
// behind the one seen, as after a restore), passes delete nothing by the
// index, however unreferenced things look, and say so, until rebuild-db
// completes; then they delete again.
func TestLineageGuard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.image("app", "img", []string{"v1"}, e.blob("app", "layer", "a layer"))
	e.image("app", "old", nil)
	opts := e.opts()
	opts.Grace = 0
	opts.DeleteUntagged = true
	e.clock.advance(time.Hour)
	e.pass(opts) // records the history, removes the untagged image
	e.wantRemoved("a pass on the recorded history", e.pass(opts))
	before := e.state()

	for _, tc := range []struct{ name, tamper, want string }{
		{"timeline", `UPDATE index_lineage SET timeline = timeline + 1`, "timeline changed"},
		{"wal", `UPDATE index_lineage SET wal_lsn = 'FFFFFFF/0'`, "went back in time"},
		{"system", `UPDATE index_lineage SET system_identifier = '1'`, "system identifier changed"},
	} {
		t.Logf("the database's %s changes", tc.name)
		if _, err := e.db.Exec(ctx, tc.tamper); err != nil {
			t.Fatal(err)
		}
		// Rows lost with the history: the image's tag, so that the
		// whole image looks unreferenced.
		if _, err := e.db.Exec(ctx, `DELETE FROM tags`); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			e.clock.advance(time.Hour)
			s := e.pass(opts)
			e.wantRemoved("guarded pass", s)
			if !strings.Contains(s.RebuildRequired, tc.want) {
				t.Fatalf("pass %d: rebuild required %q, want it to say %q", i, s.RebuildRequired, tc.want)
			}
			if g := gaugeValue(t); g != 1 {
				t.Errorf("registry_gc_rebuild_required = %v, want 1", g)
			}
		}
		if _, err := rebuild.Run(ctx, rebuild.Options{DB: e.db, S3: e.s3, Logger: zerolog.Nop()}); err != nil {
			t.Fatal(err)
		}
		s := e.pass(opts)
		e.wantRemoved("after rebuild-db", s)
		if s.RebuildRequired != "" || gaugeValue(t) != 0 {
			t.Errorf("after rebuild-db: rebuild still required: %q", s.RebuildRequired)
		}
		e.want("after rebuild-db", strings.Split(before, "\n")...)
	}
}

// TestLineageUnprivileged: a role that may not execute
// pg_control_system() still gets the timeline and WAL position checked.
func TestLineageUnprivileged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.pass(e.opts())
	// Only a superuser may revoke the rights on PostgreSQL's own functions
	// and become another role.
	conn, err := pgx.Connect(ctx, testenv.AsAdmin(t, e.db.Config().ConnString()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Granted to everyone by default in PostgreSQL 15; some managed
	// databases revoke it (per database: pg_proc is).
	for _, q := range []string{`REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC`, `CREATE ROLE gc_unprivileged`, `GRANT SELECT, INSERT, UPDATE ON index_lineage TO gc_unprivileged`,
		`SET ROLE gc_unprivileged`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42710" { // the role exists: another run made it
				continue
			}
			t.Fatalf("%s: %v", q, err)
		}
	}
	var allowed bool
	if err := conn.QueryRow(ctx, `SELECT has_function_privilege('pg_control_system()', 'EXECUTE')`).Scan(&allowed); err != nil {
		t.Fatal(err)
	}
	if allowed {
		t.Fatal("pg_control_system() still executable by the unprivileged role")
	}
	if reason, err := rebuild.CheckLineage(ctx, conn, true); err != nil || reason != "" {
		t.Fatalf("unprivileged check: %q, %v", reason, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE index_lineage SET timeline = timeline + 1`); err != nil {
		t.Fatal(err)
	}
	if reason, err := rebuild.CheckLineage(ctx, conn, false); err != nil || !strings.Contains(reason, "timeline changed") {
		t.Fatalf("unprivileged check after a timeline change: %q, %v", reason, err)
	}
}

// gaugeValue is registry_gc_rebuild_required's value.
func gaugeValue(t *testing.T) float64 {
	t.Helper()
	var m dto.Metric
	if err := rebuildRequired.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
