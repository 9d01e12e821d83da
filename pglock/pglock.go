// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package pglock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Namespace separates the uses of advisory locks. Values are part of the
// cluster's protocol: never renumber one, only add.
type Namespace uint16

// The namespaces in use.
const (
	// NamespaceMigrate serializes schema migrations.
	NamespaceMigrate Namespace = 1
	// NamespaceDigest serializes commits and deletions of one digest.
	NamespaceDigest Namespace = 2
	// NamespaceJobs elects the one runner of a background job.
	NamespaceJobs Namespace = 3
	// NamespaceRepository serializes tag and manifest writes of one
	// repository where a row lock cannot (the repository row may not
	// exist yet).
	NamespaceRepository Namespace = 4
	// NamespaceRebuild makes registry rebuild-db one at a time across the
	// cluster.
	NamespaceRebuild Namespace = 5
	// NamespaceQuota serializes the pushes under one quota's match, so
	// that together they cannot pass its limit.
	NamespaceQuota Namespace = 6
	// NamespaceProxy makes one replica at a time fetch a blob from a
	// pull-through cache's upstream.
	NamespaceProxy Namespace = 7
	// NamespaceUploads serializes the opening of upload sessions per
	// repository and per client, and the staging of bytes in PostgreSQL,
	// so that the caps on both hold across replicas.
	NamespaceUploads Namespace = 8
)

// Key derives the advisory lock key of name in namespace ns.
func Key(ns Namespace, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(uint64(ns)<<48 | h.Sum64()&(1<<48-1))
}

// Mode is a lock's mode.
type Mode bool

// The modes: shared holders exclude only exclusive ones.
const (
	Exclusive Mode = false
	Shared    Mode = true
)

// XactLock waits for the lock in tx, held until tx ends. It returns when
// ctx is done, with ctx's error; tx is then unusable, and its session has
// ended (or is ending, if the server was slow to answer), so the lock is
// neither held nor waited for.
func XactLock(ctx context.Context, tx pgx.Tx, key int64, mode Mode) error {
	q := "SELECT pg_advisory_xact_lock($1)"
	if mode == Shared {
		q = "SELECT pg_advisory_xact_lock_shared($1)"
	}
	if _, err := tx.Exec(ctx, q, key); err != nil {
		settle(tx.Conn())
		return lockErr(ctx, err)
	}
	return nil
}

// TryXactLock takes the lock in tx if it is free, reporting whether it did.
func TryXactLock(ctx context.Context, tx pgx.Tx, key int64, mode Mode) (bool, error) {
	q := "SELECT pg_try_advisory_xact_lock($1)"
	if mode == Shared {
		q = "SELECT pg_try_advisory_xact_lock_shared($1)"
	}
	var ok bool
	if err := tx.QueryRow(ctx, q, key).Scan(&ok); err != nil {
		settle(tx.Conn())
		return false, lockErr(ctx, err)
	}
	return ok, nil
}

func lockErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("advisory lock: %w", ctx.Err())
	}
	return fmt.Errorf("advisory lock: %w", err)
}

// settleTimeout bounds how long a failed lock call waits for its closed
// connection's session to end on the server.
const settleTimeout = 2 * time.Second

// settle waits until the session of c, if the failed call closed it, has
// ended on the server. pgx answers a cancelled call at once and only then,
// in the background, cancels the server's query and ends the session:
// until the server has done so, the abandoned lock request still waits in
// the lock's queue, and may even be granted, delaying the next taker. The
// server releases a session's locks before it closes the socket that pgx
// waits on, so when cleanup is done the lock is neither held nor waited
// for. The wait is bounded for a server that does not answer, whose
// session ends when it notices the closed socket.
func settle(c *pgx.Conn) {
	if c == nil || !c.IsClosed() {
		return
	}
	t := time.NewTimer(settleTimeout)
	defer t.Stop()
	select {
	case <-c.PgConn().CleanupDone():
	case <-t.C:
	}
}

// ErrNotAcquired is returned by [TryAcquire] when another session holds the
// lock.
var ErrNotAcquired = errors.New("advisory lock is held by another session")

// SessionLock is a session-level advisory lock on a dedicated pooled
// connection.
type SessionLock struct {
	conn *pgxpool.Conn
	key  int64
	mode Mode

	mu       sync.Mutex
	released bool
	lost     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

// keepaliveInterval is how often a held session lock checks its connection.
const keepaliveInterval = 2 * time.Second

// Acquire waits for a session lock. It returns when ctx is done, with an
// error wrapping ctx's; the connection it waited on is then closed, not
// returned to the pool, so the abandoned request can neither linger nor be
// granted on a connection someone else uses.
func Acquire(ctx context.Context, pool *pgxpool.Pool, key int64, mode Mode) (*SessionLock, error) {
	q := "SELECT pg_advisory_lock($1)"
	if mode == Shared {
		q = "SELECT pg_advisory_lock_shared($1)"
	}
	return acquire(ctx, pool, key, mode, func(conn *pgxpool.Conn) (bool, error) {
		_, err := conn.Exec(ctx, q, key)
		return err == nil, err
	})
}

// TryAcquire takes a session lock if it is free, or returns
// [ErrNotAcquired].
func TryAcquire(ctx context.Context, pool *pgxpool.Pool, key int64, mode Mode) (*SessionLock, error) {
	q := "SELECT pg_try_advisory_lock($1)"
	if mode == Shared {
		q = "SELECT pg_try_advisory_lock_shared($1)"
	}
	return acquire(ctx, pool, key, mode, func(conn *pgxpool.Conn) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, q, key).Scan(&ok)
		return ok, err
	})
}

func acquire(ctx context.Context, pool *pgxpool.Pool, key int64, mode Mode, take func(*pgxpool.Conn) (bool, error)) (*SessionLock, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, lockErr(ctx, err)
	}
	ok, err := take(conn)
	if err != nil {
		// The request may still wait, or have been granted, on the server
		// after a cancellation: end the session rather than return a
		// connection whose lock state is unknown to the pool.
		conn.Conn().Close(context.Background())
		settle(conn.Conn())
		conn.Release()
		return nil, lockErr(ctx, err)
	}
	if !ok {
		conn.Release()
		return nil, ErrNotAcquired
	}
	l := &SessionLock{conn: conn, key: key, mode: mode,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, nil
}

// watch pings the lock's connection; a failed ping means the server may
// have dropped the session and with it the lock.
func (l *SessionLock) watch() {
	defer close(l.done)
	t := time.NewTicker(keepaliveInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), keepaliveInterval)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				close(l.lost)
				return
			}
		}
	}
}

// Lost is closed when the lock's connection failed, after which the lock
// must be taken as not held. A failure is noticed by the next keepalive,
// so within about two keepalive intervals (4s). Lost never closes after
// [SessionLock.Release].
func (l *SessionLock) Lost() <-chan struct{} { return l.lost }

// Release unlocks and returns the connection to the pool. Call it even
// after the lock was lost: it then closes the connection, which ends
// whatever is left of the session, and returns an error saying the lock
// was lost, for the caller's work may have run unprotected. If unlocking
// fails, the connection is closed too, which releases the lock on the
// server. Release is idempotent: later calls return nil.
func (l *SessionLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	l.released = true
	close(l.stop)
	<-l.done
	defer l.conn.Release()
	select {
	case <-l.lost:
		l.conn.Conn().Close(context.Background())
		return fmt.Errorf("advisory lock %#x was lost before Release", uint64(l.key))
	default:
	}
	q := "SELECT pg_advisory_unlock($1)"
	if l.mode == Shared {
		q = "SELECT pg_advisory_unlock_shared($1)"
	}
	var held bool
	err := l.conn.QueryRow(ctx, q, l.key).Scan(&held)
	if err == nil && !held {
		err = fmt.Errorf("advisory lock %#x was not held by its session", uint64(l.key))
	}
	if err != nil {
		l.conn.Conn().Close(context.Background())
		settle(l.conn.Conn())
		return fmt.Errorf("releasing advisory lock: %w", err)
	}
	return nil
}
