// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgBinDirs are where Debian and others put the server binaries, which are
// usually not on PATH.
var pgBinDirs = []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}

var (
	pgOnce  sync.Once
	pgAdmin string // admin URL of the shared server
	pgErr   error
	dbSeq   atomic.Int64
)

// The roles of a split deployment (docs/auth.md): every test database is
// owned by OwnerRole, which migrates it, and ServingRole, which replicas
// connect as, owns nothing and gets only what schema.Grant gives it. The
// owner may also create databases and end other sessions, which tests
// that drop and recreate a database need; neither is a superuser.
const (
	OwnerRole   = "registry_test_owner"
	ServingRole = "registry_test_serving"
)

// Database is a new, empty database on the process's shared PostgreSQL
// server, reachable as either role.
type Database struct {
	// Owner is the URL as OwnerRole: for `registry migrate` and for tests
	// that set up state with direct SQL.
	Owner string
	// Serving is the URL as ServingRole, which has no privileges in the
	// database until it is migrated with grants to ServingRole.
	Serving string
}

// Postgres returns the URL, as the owner role, of a new, empty database
// on the process's shared PostgreSQL server.
func Postgres(t testing.TB) string {
	t.Helper()
	return PostgresDatabase(t).Owner
}

// PostgresDatabase creates a new, empty database owned by [OwnerRole] on
// the process's shared PostgreSQL server.
func PostgresDatabase(t testing.TB) Database {
	t.Helper()
	pgOnce.Do(func() {
		if u := os.Getenv("REGISTRY_TEST_DATABASE_URL"); u != "" {
			pgAdmin = u
		} else {
			pgAdmin, pgErr = startPostgres()
		}
		if pgErr == nil {
			pgErr = createRoles(pgAdmin)
		}
	})
	if pgErr != nil {
		if strings.Contains(pgErr.Error(), "not installed") {
			missing(t, "%v", pgErr)
		}
		t.Fatalf("starting PostgreSQL: %v", pgErr)
	}
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgAdmin)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" OWNER "+OwnerRole); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	u := withDatabase(pgAdmin, name)
	return Database{Owner: withUser(u, OwnerRole), Serving: withUser(u, ServingRole)}
}

// testRolePassword is the roles' password, for a REGISTRY_TEST_DATABASE_URL
// server that asks for one; the server this package starts trusts
// loopback.
const testRolePassword = "registry-test"

// createRoles creates the owner and serving roles unless they exist
// (another test process on the same server may have made them).
func createRoles(admin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"CREATE ROLE " + OwnerRole + " LOGIN CREATEDB PASSWORD '" + testRolePassword + "'",
		"CREATE ROLE " + ServingRole + " LOGIN PASSWORD '" + testRolePassword + "'",
		"GRANT pg_signal_backend TO " + OwnerRole,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			var pgErr *pgconn.PgError
			// duplicate_object, or unique_violation when another process
			// creates the role at the same moment.
			if errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505") {
				continue
			}
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// withUser replaces the user and password of a postgres:// URL.
func withUser(u, role string) string {
	rest := strings.TrimPrefix(u, "postgres://")
	if at := strings.Index(rest, "@"); at >= 0 && at < strings.Index(rest+"/", "/") {
		rest = rest[at+1:]
	}
	return "postgres://" + role + ":" + testRolePassword + "@" + rest
}

// withDatabase replaces the database of a postgres:// URL.
func withDatabase(u, db string) string {
	base, query, _ := strings.Cut(u, "?")
	if i := strings.LastIndex(base, "/"); i > len("postgres://") {
		base = base[:i]
	}
	out := base + "/" + db
	if query != "" {
		out += "?" + query
	}
	return out
}

func findPostgres() (string, error) {
	for _, dir := range pgBinDirs {
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, postgres) are not installed")
}

// startPostgres initializes a scratch cluster and starts it on a free
// port. PostgreSQL refuses to run as root, so as root it runs as the
// postgres user (set on the process itself) over a directory that user owns.
func startPostgres() (string, error) {
	bin, err := findPostgres()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "registry-pg-")
	if err != nil {
		return "", err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	_, port, _ := strings.Cut(addr, ":")
	args := append([]string{}, filepath.Join(bin, "postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", port, "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	srv, err := startServer(filepath.Join(dir, "postgres.log"), cred, args[0], args[1:]...)
	if err != nil {
		return "", err
	}
	atExit(func() { srv.stop(); os.RemoveAll(dir) })
	admin := "postgres://postgres@" + addr + "/postgres?sslmode=disable"
	err = waitFor(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "SELECT 1")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("PostgreSQL did not become ready: %v\n%s", err, srv.tail())
	}
	return admin, nil
}

// AsServing is the URL of the same database as u, as [ServingRole]: for a
// test that has only a database's owner URL at hand.
func AsServing(u string) string { return withUser(u, ServingRole) }

// AsAdmin is the URL of the same database as u, as the shared server's
// superuser: for a test that must change what only a superuser may (the
// rights on PostgreSQL's own functions, roles of its own).
func AsAdmin(t testing.TB, u string) string {
	t.Helper()
	if pgAdmin == "" {
		t.Fatal("testenv.AsAdmin before any testenv.Postgres")
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("testenv.AsAdmin: %v", err)
	}
	return withDatabase(pgAdmin, strings.TrimPrefix(parsed.Path, "/"))
}
