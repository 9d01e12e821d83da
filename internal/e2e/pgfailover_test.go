// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// What a PostgreSQL failover looks like from a replica: its backends are
// terminated (57P01) and, until it is pointed at the new primary, it may
// reach a server that refuses writes (25006). Required: neither is ever
// a 500; a pull's read is tried again on a fresh connection and
// succeeds; a write is 503 with Retry-After; /readyz fails while the
// database is read-only, so a balancer takes the replica out.
func TestPostgresFailoverAnswers(t *testing.T) {
	s := Start(t)
	img := newTestImage(t, 2048, nil)
	mustPush(t, s, "failover/app", "v1", img)

	admin := adminConn(t, s)
	// A server that refuses writes, as a standby does; only new sessions
	// see the setting, so the replica's are terminated as in a failover.
	dbExec(t, admin, `ALTER DATABASE `+pgx.Identifier{s.database(t)}.Sanitize()+` SET default_transaction_read_only = on`)
	t.Cleanup(func() {
		dbExec(t, admin, `ALTER DATABASE `+pgx.Identifier{s.database(t)}.Sanitize()+` RESET default_transaction_read_only`)
	})
	terminateOthers(t, admin)

	// The replica's connections are dead: the pull's read is tried again
	// on a fresh one, and answers.
	resp, body := call(t, s, "GET", "/v2/failover/app/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pull after the backends were terminated: %d %s, want 200 (the read tried again on a fresh connection)", resp.StatusCode, body)
	}

	resp, body = call(t, s, "POST", "/v2/failover/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "UNAVAILABLE") {
		t.Errorf("upload POST on a read-only database: %d %s, want 503 UNAVAILABLE", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("the 503 carries no Retry-After")
	}
	resp, body = call(t, s, "GET", "/readyz", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a read-only database: %d %s, want 503", resp.StatusCode, body)
	}

	// The new primary: writable again, the replica serves everything.
	dbExec(t, admin, `ALTER DATABASE `+pgx.Identifier{s.database(t)}.Sanitize()+` RESET default_transaction_read_only`)
	terminateOthers(t, admin)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := call(t, s, "GET", "/readyz", nil, nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz still failing 10s after the database became writable")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustPush(t, s, "failover/app", "v2", newTestImage(t, 2048, nil))
}

// adminConn is a connection of the test's own to the stack's database.
func adminConn(t *testing.T, s *Stack) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.db.Owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func dbExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// terminateOthers ends every other session on conn's database, as a
// server shutting down for a failover does (57P01).
func terminateOthers(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	dbExec(t, conn, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`)
}

// database is the name of the stack's database.
func (s *Stack) database(t *testing.T) string {
	t.Helper()
	var name string
	if err := s.DB.QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
