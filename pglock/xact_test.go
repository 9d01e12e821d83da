// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package pglock

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// begin opens a transaction that the test rolls back if it is still open.
func begin(t *testing.T, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

func mustXactLock(t *testing.T, tx pgx.Tx, key int64, mode Mode) {
	t.Helper()
	if err := XactLock(testCtx(t), tx, key, mode); err != nil {
		t.Fatalf("XactLock(%#x, %v): %v", key, modeName(mode), err)
	}
}

func tryXact(t *testing.T, tx pgx.Tx, key int64, mode Mode) bool {
	t.Helper()
	ok, err := TryXactLock(testCtx(t), tx, key, mode)
	if err != nil {
		t.Fatalf("TryXactLock(%#x, %v): %v", key, modeName(mode), err)
	}
	return ok
}

func TestTryXactLockModes(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t), 4)
	for i, c := range conflicts {
		t.Run(modeName(c.held)+"/"+modeName(c.want), func(t *testing.T) {
			key := Key(NamespaceDigest, fmt.Sprint("try-", i))
			holder := begin(t, pool)
			mustXactLock(t, holder, key, c.held)
			tx := begin(t, pool)
			if got := tryXact(t, tx, key, c.want); got != c.compatible {
				t.Fatalf("TryXactLock = %v, want %v", got, c.compatible)
			}
			// A refused try leaves its transaction usable.
			if err := tx.Commit(testCtx(t)); err != nil {
				t.Fatalf("commit after TryXactLock: %v", err)
			}
		})
	}
}

// TestSessionAndXactLocksShareKeys: both kinds of lock live in one key
// space, so a key means the same whichever kind a caller takes.
func TestSessionAndXactLocksShareKeys(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t), 4)
	key := Key(NamespaceDigest, "shared-space")

	l := mustAcquire(t, pool, key, Exclusive)
	tx := begin(t, pool)
	if tryXact(t, tx, key, Shared) {
		t.Fatal("TryXactLock took a key held by a session lock")
	}
	mustRelease(t, l)
	if !tryXact(t, tx, key, Exclusive) {
		t.Fatal("TryXactLock failed on a released key")
	}
	if _, err := TryAcquire(testCtx(t), pool, key, Shared); !errors.Is(err, ErrNotAcquired) {
		t.Fatalf("TryAcquire of a key held by a transaction: %v, want ErrNotAcquired", err)
	}
	if err := tx.Rollback(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	mustRelease(t, mustTryAcquire(t, pool, key, Exclusive))
}

// TestXactLockEndsWithTransaction: commit and rollback both release the
// lock, and a waiter blocked on the server gets it only then.
func TestXactLockEndsWithTransaction(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t), 4)
	for _, end := range []struct {
		name string
		end  func(pgx.Tx, context.Context) error
	}{
		{"commit", pgx.Tx.Commit},
		{"rollback", pgx.Tx.Rollback},
	} {
		for i, c := range conflicts {
			if c.compatible {
				continue
			}
			t.Run(end.name+"/"+modeName(c.held)+"/"+modeName(c.want), func(t *testing.T) {
				key := Key(NamespaceDigest, fmt.Sprint(end.name, i))
				holder := begin(t, pool)
				mustXactLock(t, holder, key, c.held)
				waiter := begin(t, pool)
				ch := make(chan error, 1)
				go func() { ch <- XactLock(testCtx(t), waiter, key, c.want) }()
				waitForWaiters(t, pool, key, 1)
				notYet(t, ch, "XactLock while the lock is held")
				if err := end.end(holder, testCtx(t)); err != nil {
					t.Fatal(err)
				}
				if err := receive(t, ch, "XactLock after the holder's "+end.name); err != nil {
					t.Fatalf("XactLock: %v", err)
				}
				if _, err := TryAcquire(testCtx(t), pool, key, Exclusive); !errors.Is(err, ErrNotAcquired) {
					t.Fatalf("TryAcquire while the waiter holds: %v, want ErrNotAcquired", err)
				}
				if err := end.end(waiter, testCtx(t)); err != nil {
					t.Fatal(err)
				}
				if n := lockRows(t, pool, key, true); n != 0 {
					t.Fatalf("%d lock(s) still granted after %s", n, end.name)
				}
				tx := begin(t, pool)
				if !tryXact(t, tx, key, Exclusive) {
					t.Fatalf("the lock is still held after %s", end.name)
				}
			})
		}
	}
}

// TestXactLockCancelled: a waiting XactLock whose context ends returns at
// once with the context's error, leaves nothing waiting or held on the
// server, and leaves its pool usable.
func TestXactLockCancelled(t *testing.T) {
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
			key := Key(NamespaceDigest, "cancel-"+c.name)
			holder := begin(t, holders)
			mustXactLock(t, holder, key, Exclusive)
			tx := begin(t, pool)
			ctx, cancel := c.ctx()
			defer cancel()
			ch := make(chan error, 1)
			go func() { ch <- XactLock(ctx, tx, key, Exclusive) }()
			if c.want == context.Canceled {
				waitForWaiters(t, holders, key, 1)
				notYet(t, ch, "XactLock while the lock is held")
				cancel()
			}
			<-ctx.Done()
			ended := time.Now()
			err := receive(t, ch, "XactLock returning after its context ended")
			t.Logf("XactLock returned %v after its context ended", time.Since(ended).Round(time.Millisecond))
			if !errors.Is(err, c.want) {
				t.Fatalf("XactLock = %v, want %v", err, c.want)
			}
			if n := lockRows(t, holders, key, false); n != 0 {
				t.Fatalf("%d request(s) still wait for the lock after XactLock returned", n)
			}
			// The transaction is dead; ending it must not hang, and must
			// hand the pool nothing broken.
			rollbackCtx, cancelRollback := context.WithTimeout(context.Background(), bound)
			defer cancelRollback()
			t.Logf("rollback of the cancelled transaction: %v", tx.Rollback(rollbackCtx))
			if rollbackCtx.Err() != nil {
				t.Fatal("rollback of the cancelled transaction hung")
			}
			if err := holder.Commit(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			tx = begin(t, pool)
			if !tryXact(t, tx, key, Exclusive) {
				t.Fatal("the pool's connection cannot take the released lock")
			}
			if err := tx.Commit(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := pool.QueryRow(testCtx(t), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("the pool's connection holds %d advisory locks (err %v)", n, err)
			}
		})
	}
}
