// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresPair is a primary PostgreSQL cluster and an asynchronous
// standby streaming its WAL through a [FaultProxy], from the machine's
// binaries, on loopback, torn down when the test ends. Cutting the link
// leaves the standby behind as a lagging standby is; killing the primary
// and promoting the standby is then a failover that loses the commits
// made since.
type PostgresPair struct {
	// Primary and Standby are admin URLs of the two servers' postgres
	// database.
	Primary, Standby string
	// Link carries the standby's WAL stream: Cut stops it.
	Link *FaultProxy

	primary *server
}

// StartPostgresPair starts a primary and a standby made from it by
// pg_basebackup -R, and waits until the standby accepts connections.
func StartPostgresPair(t testing.TB) *PostgresPair {
	t.Helper()
	bin, err := findPostgres()
	if err != nil {
		missing(t, "%v", err)
	}
	dir, err := os.MkdirTemp("", "registry-pgpair-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cred, err := postgresCredential(dir)
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	run("initdb", "-D", filepath.Join(dir, "primary"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	p := &PostgresPair{}
	var primaryAddr string
	p.primary, primaryAddr = startCluster(t, bin, dir, "primary", cred)
	p.Primary = "postgres://postgres@" + primaryAddr + "/postgres?sslmode=disable"
	p.Link = NewFaultProxy(t, primaryAddr)
	host, port, _ := strings.Cut(p.Link.Addr(), ":")
	run("pg_basebackup", "-h", host, "-p", port, "-U", "postgres", "-D", filepath.Join(dir, "standby"),
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
	_, standbyAddr := startCluster(t, bin, dir, "standby", cred)
	p.Standby = "postgres://postgres@" + standbyAddr + "/postgres?sslmode=disable"
	return p
}

// postgresCredential is who the servers run as: PostgreSQL refuses root,
// so as root the postgres user, owning dir.
func postgresCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// startCluster starts the server of dir/name on a free port and waits
// until it accepts connections.
func startCluster(t testing.TB, bin, dir, name string, cred *syscall.Credential) (*server, string) {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	srv, err := startServer(filepath.Join(dir, name+".log"), cred, filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, name),
		"-h", "127.0.0.1", "-p", port, "-k", dir, "-c", "fsync=off", "-c", "max_connections=100",
		"-c", "shared_buffers=32MB", "-c", "wal_receiver_status_interval=1s", "-c", "wal_retrieve_retry_interval=500ms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	url := "postgres://postgres@" + addr + "/postgres?sslmode=disable"
	err = waitFor(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "SELECT 1")
		return err
	})
	if err != nil {
		t.Fatalf("PostgreSQL %s did not become ready: %v\n%s", name, err, srv.tail())
	}
	return srv, addr
}

// CreateDatabase creates a database owned by [OwnerRole] on the primary
// (with the owner and serving roles, as [PostgresDatabase] does), waits
// until the standby has it, and returns it as reached on both.
func (p *PostgresPair) CreateDatabase(t testing.TB, name string) (primary, standby Database) {
	t.Helper()
	if err := createRoles(p.Primary); err != nil {
		t.Fatalf("creating the test roles: %v", err)
	}
	p.exec(t, p.Primary, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER "+OwnerRole)
	p.WaitCaughtUp(t)
	on := func(server string) Database {
		u := withDatabase(server, name)
		return Database{Owner: withUser(u, OwnerRole), Serving: withUser(u, ServingRole)}
	}
	return on(p.Primary), on(p.Standby)
}

// WaitCaughtUp waits until the standby has replayed everything the
// primary has written so far.
func (p *PostgresPair) WaitCaughtUp(t testing.TB) {
	t.Helper()
	var lsn string
	p.query(t, p.Primary, "SELECT pg_current_wal_lsn()::text", &lsn)
	err := waitFor(30*time.Second, func() error {
		var done bool
		p.query(t, p.Standby, "SELECT coalesce(pg_last_wal_replay_lsn() >= '"+lsn+"'::pg_lsn, false)", &done)
		if !done {
			return fmt.Errorf("the standby has not replayed up to %s", lsn)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// KillPrimary kills the primary's every process with SIGKILL, as a
// machine that dies does, and waits until they are gone.
func (p *PostgresPair) KillPrimary(t testing.TB) {
	t.Helper()
	syscall.Kill(-p.primary.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.primary.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed primary did not exit")
	}
}

// Promote makes the standby a primary and waits until it takes writes.
func (p *PostgresPair) Promote(t testing.TB) {
	t.Helper()
	var ok bool
	p.query(t, p.Standby, "SELECT pg_promote(true, 60)", &ok)
	if !ok {
		t.Fatal("pg_promote did not complete")
	}
}

func (p *PostgresPair) exec(t testing.TB, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (p *PostgresPair) query(t testing.TB, url, sql string, dest any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql).Scan(dest); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
