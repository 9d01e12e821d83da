// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package schema

import (
	"context"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestMigrateOnceAcrossReplicas(t *testing.T) {
	pool := newPool(t)
	if err := Check(t.Context(), pool); err == nil || !strings.Contains(err.Error(), "registry migrate") {
		t.Fatalf("Check on an empty database = %v, want a pointer to `registry migrate`", err)
	}

	// Replicas started together: each has its own pool, all call Migrate.
	const replicas = 4
	applied := make([][]int, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rp, err := pgxpool.New(t.Context(), pool.Config().ConnString())
			if err != nil {
				errs[i] = err
				return
			}
			defer rp.Close()
			applied[i], errs[i] = Migrate(t.Context(), rp)
		}()
	}
	wg.Wait()
	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	if total != Latest() {
		t.Errorf("%d migrations applied across replicas, want each of %d once: %v", total, Latest(), applied)
	}
	if v, err := Version(t.Context(), pool); err != nil || v != Latest() {
		t.Errorf("Version = %d, %v; want %d", v, err, Latest())
	}
	if err := Check(t.Context(), pool); err != nil {
		t.Errorf("Check after Migrate: %v", err)
	}
	if again, err := Migrate(t.Context(), pool); err != nil || len(again) != 0 {
		t.Errorf("second Migrate = %v, %v; want nothing to do", again, err)
	}
}

// TestCheckRollingUpgrade plays the database a newer release leaves behind.
func TestCheckRollingUpgrade(t *testing.T) {
	pool := newPool(t)
	if _, err := Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	next := Latest() + 1
	record := func(version, floor int) {
		t.Helper()
		if _, err := pool.Exec(context.Background(), `INSERT INTO schema_migrations (version, name, min_binary_schema) VALUES ($1, 'future', $2)`, version, floor); err != nil {
			t.Fatal(err)
		}
	}

	// An expand migration of the next release: this binary keeps serving.
	record(next, 0)
	if err := Check(t.Context(), pool); err != nil {
		t.Fatalf("Check on an expanded newer schema: %v", err)
	}
	if applied, err := Migrate(t.Context(), pool); err != nil || len(applied) != 0 {
		t.Fatalf("Migrate on a newer schema = %v, %v; want nothing applied", applied, err)
	}

	// A contract migration that drops what this binary relies on.
	record(next+1, next)
	err := Check(t.Context(), pool)
	if err == nil {
		t.Fatal("Check served a database contracted past this binary")
	}
	for _, want := range []string{"newer release", "migration " + strconv.Itoa(next+1)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error %q does not say %q", err, want)
		}
	}
	if _, err := Migrate(t.Context(), pool); err == nil {
		t.Error("Migrate of a database contracted past this binary succeeded")
	}
}

func TestReadMigrationHeader(t *testing.T) {
	src := fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE a ();\n")},
		"0002_b.sql": {Data: []byte("-- SPDX\n-- min-binary-schema: 2\nALTER TABLE a ADD COLUMN b int;\n")},
		"0003_c.sql": {Data: []byte("-- min-binary-schema: 4\n")},
		"junk.sql":   {Data: nil},
	}
	a, err := readMigration(src, "0001_a.sql")
	if err != nil || a.Version != 1 || a.Name != "a" || a.MinBinarySchema != 0 {
		t.Errorf("0001 = %+v, %v", a, err)
	}
	b, err := readMigration(src, "0002_b.sql")
	if err != nil || b.MinBinarySchema != 2 {
		t.Errorf("0002 = %+v, %v", b, err)
	}
	if _, err := readMigration(src, "junk.sql"); err == nil {
		t.Error("a file without a version number was accepted")
	}

	saved := sources
	t.Cleanup(func() { sources = saved })
	sources = []fs.FS{src}
	delete(src, "junk.sql")
	if _, err := Migrations(); err == nil || !strings.Contains(err.Error(), "newer than itself") {
		t.Errorf("a migration demanding a future binary: %v", err)
	}
}

// TestUpgradeProbeIsNext: the upgradetest build's migration stands in for
// the next release's, so it must be numbered one above this release's
// newest. Whoever adds a migration renumbers it; this says so at once
// instead of a rolling-upgrade test failing on a version gap.
func TestUpgradeProbeIsNext(t *testing.T) {
	dir := os.DirFS("upgradetest")
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("upgradetest/ holds %d files, want the one probe migration", len(entries))
	}
	m, err := readMigration(dir, entries[0].Name())
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != Latest()+1 {
		t.Errorf("upgradetest/%s has version %d, want %d (newest real migration + 1): renumber it", entries[0].Name(), m.Version, Latest()+1)
	}
}
