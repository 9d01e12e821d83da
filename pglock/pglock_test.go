// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package pglock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// bound is how long anything that should be prompt may take on a slow,
// shared CI machine; the tests wait for events, never for this long.
const bound = 15 * time.Second

// newPool opens a pool of at most maxConns connections on url.
func newPool(t *testing.T, url string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*bound)
	t.Cleanup(cancel)
	return ctx
}

func mustAcquire(t *testing.T, pool *pgxpool.Pool, key int64, mode Mode) *SessionLock {
	t.Helper()
	l, err := Acquire(testCtx(t), pool, key, mode)
	if err != nil {
		t.Fatalf("Acquire(%#x, %v): %v", key, modeName(mode), err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l
}

func mustRelease(t *testing.T, l *SessionLock) {
	t.Helper()
	if err := l.Release(testCtx(t)); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

func modeName(m Mode) string {
	if m == Shared {
		return "shared"
	}
	return "exclusive"
}

// lockRows counts the advisory locks on key in the pool's database,
// granted or waited for. pg_locks shows an int8 key as two oids.
func lockRows(t *testing.T, pool *pgxpool.Pool, key int64, granted bool) int {
	t.Helper()
	var n int
	err := pool.QueryRow(testCtx(t), `
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND classid = $1 AND objid = $2
  AND granted = $3
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		uint32(uint64(key)>>32), uint32(key), granted).Scan(&n)
	if err != nil {
		t.Fatalf("reading pg_locks: %v", err)
	}
	return n
}

// holderPID returns the backend that holds key.
func holderPID(t *testing.T, pool *pgxpool.Pool, key int64) int32 {
	t.Helper()
	var pid int32
	err := pool.QueryRow(testCtx(t), `
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND classid = $1 AND objid = $2 AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		uint32(uint64(key)>>32), uint32(key)).Scan(&pid)
	if err != nil {
		t.Fatalf("finding the holder of %#x: %v", key, err)
	}
	return pid
}

// waitForWaiters returns once n sessions wait for key: a waiter that shows
// in pg_locks has sent its request and is blocked on the server.
func waitForWaiters(t *testing.T, pool *pgxpool.Pool, key int64, n int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for lockRows(t, pool, key, false) != n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d waiter(s) for %#x in pg_locks after %v", n, key, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// result is what a goroutine's lock call returned.
type result struct {
	lock *SessionLock
	err  error
}

func acquireAsync(ctx context.Context, pool *pgxpool.Pool, key int64, mode Mode) <-chan result {
	ch := make(chan result, 1)
	go func() {
		l, err := Acquire(ctx, pool, key, mode)
		ch <- result{l, err}
	}()
	return ch
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("%s did not happen within %v", what, bound)
		panic("unreachable")
	}
}

func notYet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s happened too early: %+v", what, v)
	default:
	}
}

// conflicts is the advisory lock compatibility table.
var conflicts = []struct {
	held, want Mode
	compatible bool
}{
	{Exclusive, Exclusive, false},
	{Exclusive, Shared, false},
	{Shared, Exclusive, false},
	{Shared, Shared, true},
}

func TestTryAcquireModes(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t), 4)
	for i, c := range conflicts {
		t.Run(modeName(c.held)+"/"+modeName(c.want), func(t *testing.T) {
			key := Key(NamespaceJobs, fmt.Sprint("try-", i))
			held := mustAcquire(t, pool, key, c.held)
			l, err := TryAcquire(testCtx(t), pool, key, c.want)
			switch {
			case c.compatible && err != nil:
				t.Fatalf("TryAcquire: %v, want the lock", err)
			case !c.compatible && !errors.Is(err, ErrNotAcquired):
				t.Fatalf("TryAcquire: %v, want ErrNotAcquired", err)
			}
			if l != nil {
				mustRelease(t, l)
			}
			mustRelease(t, held)
			// Free again, the lock is anyone's.
			mustRelease(t, mustTryAcquire(t, pool, key, c.want))
		})
	}
}

func mustTryAcquire(t *testing.T, pool *pgxpool.Pool, key int64, mode Mode) *SessionLock {
	t.Helper()
	l, err := TryAcquire(testCtx(t), pool, key, mode)
	if err != nil {
		t.Fatalf("TryAcquire(%#x, %v): %v", key, modeName(mode), err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l
}

// TestAcquireWaitsForRelease shows a conflicting Acquire blocked on the
// server until the holder releases, and an exclusive one waiting for every
// shared holder.
func TestAcquireWaitsForRelease(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t), 6)
	for i, c := range conflicts {
		if c.compatible {
			continue
		}
		t.Run(modeName(c.held)+"/"+modeName(c.want), func(t *testing.T) {
			key := Key(NamespaceJobs, fmt.Sprint("wait-", i))
			held := mustAcquire(t, pool, key, c.held)
			ch := acquireAsync(testCtx(t), pool, key, c.want)
			waitForWaiters(t, pool, key, 1)
			notYet(t, ch, "Acquire while the lock is held")
			mustRelease(t, held)
			r := receive(t, ch, "Acquire after Release")
			if r.err != nil {
				t.Fatalf("Acquire: %v", r.err)
			}
			defer mustRelease(t, r.lock)
			if _, err := TryAcquire(testCtx(t), pool, key, Exclusive); !errors.Is(err, ErrNotAcquired) {
				t.Fatalf("TryAcquire after the waiter got the lock: %v, want ErrNotAcquired", err)
			}
		})
	}
	t.Run("exclusive waits for all shared holders", func(t *testing.T) {
		key := Key(NamespaceJobs, "wait-shared-holders")
		a := mustAcquire(t, pool, key, Shared)
		b := mustAcquire(t, pool, key, Shared)
		ch := acquireAsync(testCtx(t), pool, key, Exclusive)
		waitForWaiters(t, pool, key, 1)
		mustRelease(t, a)
		// b still holds: the waiter must still be waiting.
		if lockRows(t, pool, key, true) != 1 {
			t.Fatalf("after releasing one of two shared holders, want 1 granted lock")
		}
		waitForWaiters(t, pool, key, 1)
		notYet(t, ch, "exclusive Acquire while a shared holder remains")
		mustRelease(t, b)
		r := receive(t, ch, "exclusive Acquire after the last shared Release")
		if r.err != nil {
			t.Fatal(r.err)
		}
		mustRelease(t, r.lock)
	})
}

func TestReleaseThenReacquire(t *testing.T) {
	url := testenv.Postgres(t)
	// One connection: whatever Release hands back is what the next
	// Acquire gets.
	pool := newPool(t, url, 1)
	other := newPool(t, url, 2)
	for _, mode := range []Mode{Exclusive, Shared} {
		t.Run(modeName(mode), func(t *testing.T) {
			key := Key(NamespaceJobs, "reacquire-"+modeName(mode))
			l := mustAcquire(t, pool, key, mode)
			mustRelease(t, l)
			var n int
			if err := pool.QueryRow(testCtx(t), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("the released connection holds %d advisory locks (err %v)", n, err)
			}
			// Release is idempotent, as documented.
			mustRelease(t, l)
			mustRelease(t, mustTryAcquire(t, other, key, Exclusive))
			l = mustAcquire(t, pool, key, mode)
			if _, err := TryAcquire(testCtx(t), other, key, Exclusive); !errors.Is(err, ErrNotAcquired) {
				t.Fatalf("TryAcquire of a re-acquired lock: %v, want ErrNotAcquired", err)
			}
			mustRelease(t, l)
		})
	}
}

// TestAcquireCancelled: a waiting Acquire whose context ends returns at
// once with the context's error, leaves nothing waiting or held on the
// server, and leaves its pool usable.
func TestAcquireCancelled(t *testing.T) {
	url := testenv.Postgres(t)
	holders := newPool(t, url, 2)
	for _, c := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := newPool(t, url, 1)
			// Connect first, so that the deadline falls in the lock wait.
			if err := pool.Ping(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			key := Key(NamespaceJobs, "cancel-"+c.name)
			held := mustAcquire(t, holders, key, Exclusive)
			ctx, cancel := c.ctx()
			defer cancel()
			ch := acquireAsync(ctx, pool, key, Exclusive)
			if c.want == context.Canceled {
				waitForWaiters(t, holders, key, 1)
				notYet(t, ch, "Acquire while the lock is held")
				cancel()
			}
			<-ctx.Done()
			ended := time.Now()
			r := receive(t, ch, "Acquire returning after its context ended")
			t.Logf("Acquire returned %v after its context ended", time.Since(ended).Round(time.Millisecond))
			if !errors.Is(r.err, c.want) || r.lock != nil {
				t.Fatalf("Acquire = %v, %v; want %v", r.lock, r.err, c.want)
			}
			// Nothing of the cancelled request may remain on the server:
			// a waiter left behind would be granted the lock on Release.
			if n := lockRows(t, holders, key, false); n != 0 {
				t.Fatalf("%d request(s) still wait for the lock after Acquire returned", n)
			}
			mustRelease(t, held)
			mustRelease(t, mustTryAcquire(t, holders, key, Exclusive))
			// The pool's one connection was replaced, not left waiting.
			mustRelease(t, mustTryAcquire(t, pool, key, Exclusive))
			var n int
			if err := pool.QueryRow(testCtx(t), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("the pool's connection holds %d advisory locks (err %v)", n, err)
			}
		})
	}
}

// TestLost kills the backend of a held session lock: Lost must close
// within a few keepalives, another session can then take the lock, and
// Release must hand the pool a working connection.
func TestLost(t *testing.T) {
	url := testenv.Postgres(t)
	pool := newPool(t, url, 1)
	admin := newPool(t, url, 2)
	key := Key(NamespaceJobs, "lost")
	l := mustAcquire(t, pool, key, Exclusive)
	select {
	case <-l.Lost():
		t.Fatal("Lost closed on a healthy lock")
	default:
	}
	pid := holderPID(t, admin, key)
	var ok bool
	// The timeout makes pg_terminate_backend wait until the backend has
	// exited, so its locks are gone when it returns.
	if err := admin.QueryRow(testCtx(t), `SELECT pg_terminate_backend($1, 10000)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	start := time.Now()
	receive(t, l.Lost(), "Lost after the backend was terminated")
	t.Logf("Lost closed %v after the backend exited", time.Since(start).Round(time.Millisecond))
	mustRelease(t, mustTryAcquire(t, admin, key, Exclusive))

	err := l.Release(testCtx(t))
	t.Logf("Release of a lost lock: %v", err)
	if err == nil {
		t.Fatal("Release of a lost lock returned nil; the caller must learn the lock was not held")
	}
	if err := l.Release(testCtx(t)); err != nil {
		t.Fatalf("second Release of a lost lock: %v", err)
	}
	// The pool's one connection must be a live one again.
	var one int
	if err := pool.QueryRow(testCtx(t), `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("pool after releasing a lost lock: %v", err)
	}
	l = mustAcquire(t, pool, key, Exclusive)
	if got := holderPID(t, admin, key); got == pid {
		t.Fatalf("re-acquired on the terminated backend %d", pid)
	}
	mustRelease(t, l)
}

// TestReleaseOfDeadConnection releases a lock whose backend was killed
// before any keepalive noticed: Release must report the failure and leave
// the pool working.
func TestReleaseOfDeadConnection(t *testing.T) {
	url := testenv.Postgres(t)
	pool := newPool(t, url, 1)
	admin := newPool(t, url, 2)
	key := Key(NamespaceJobs, "dead")
	l := mustAcquire(t, pool, key, Shared)
	pid := holderPID(t, admin, key)
	var ok bool
	if err := admin.QueryRow(testCtx(t), `SELECT pg_terminate_backend($1, 10000)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	err := l.Release(testCtx(t))
	t.Logf("Release on a terminated backend: %v", err)
	if err == nil {
		t.Fatal("Release on a terminated backend returned nil")
	}
	var one int
	if err := pool.QueryRow(testCtx(t), `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("pool after releasing on a dead connection: %v", err)
	}
	mustRelease(t, mustTryAcquire(t, pool, key, Exclusive))
}

// TestReleaseWithEndedContext: a Release that cannot unlock, here for its
// context has ended, still frees the lock by closing the connection.
func TestReleaseWithEndedContext(t *testing.T) {
	url := testenv.Postgres(t)
	pool := newPool(t, url, 1)
	other := newPool(t, url, 2)
	key := Key(NamespaceJobs, "release-ended")
	l := mustAcquire(t, pool, key, Exclusive)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Release(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Release with an ended context = %v, want context.Canceled", err)
	}
	// Closing the session frees the lock as soon as the server reads the
	// goodbye, which Release does not wait for.
	deadline := time.Now().Add(bound)
	for lockRows(t, other, key, true) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lock still held %v after Release closed its connection", bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustRelease(t, mustTryAcquire(t, other, key, Exclusive))
	mustRelease(t, mustTryAcquire(t, pool, key, Exclusive))
}
