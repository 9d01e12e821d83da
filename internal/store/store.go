// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/s3store"
)

// MinPartSize is S3's smallest part other than the last.
const MinPartSize = 5 << 20

// Config configures a [Store].
type Config struct {
	// PartSize is the size of every multipart part but the last. Bytes
	// below it are staged in PostgreSQL between requests. It bounds the
	// memory of one upload request; at least MinPartSize (the default).
	PartSize int
	// AutoMount lets a mount without a source repository link a blob from
	// any repository that holds it.
	AutoMount bool
	// StreamDB is the pool for the transactions that stay open while a
	// client's body streams (chunks and monolithic uploads hold their
	// session's row lock that long). Kept apart from the main pool so that
	// slow uploads can never starve manifest reads, tag writes or the
	// readiness probe of connections. Nil means the main pool.
	StreamDB *pgxpool.Pool
	// StreamWait bounds how long a request waits for a StreamDB
	// connection: when every one stays busy that long, the request is
	// refused with 429 TOOMANYREQUESTS (0: wait as long as the request
	// lasts). A client that cannot get one retries later instead of
	// piling up behind uploads that may take minutes.
	StreamWait time.Duration
	// SessionLockTimeout bounds how long a request waits for another
	// request's hold on the same upload session (0: DefaultSessionLockTimeout).
	SessionLockTimeout time.Duration
	// Redirect answers blob GETs with a presigned S3 URL valid for
	// [RedirectExpiry] instead of streaming the bytes through the replica.
	Redirect bool
	// Streaming, when set, is told +1 as an upload request with a body
	// begins (before it waits for a StreamDB connection) and -1 as it
	// ends, so that the caller can size memory to the uploads in flight.
	Streaming func(delta int)
	// Quotas returns the quotas a repository is bound by (nil: none); it
	// is asked on every upload start and manifest push, so a reloaded
	// policy applies at once.
	Quotas func(repo string) []policy.Quota
	// RecordPulls keeps the time of each manifest pull in memory until
	// [Store.FlushPulls] writes them, for retention's pulledWithin rule.
	RecordPulls bool
	// AuditLog is given every audit event once it is committed, for the
	// structured log; the audit_events table has them all regardless.
	AuditLog func(AuditEvent)
	// Webhooks returns the webhooks in force; pushes and deletions are
	// queued in the outbox for those that want them.
	Webhooks func() []policy.Webhook
	// MaxUploadsPerRepository and MaxUploadsPerClient cap the upload
	// sessions open at once in one repository and by one client (see
	// uploadlimits.go); beyond them a new session is refused with 429.
	// MaxStagedBytes caps the bytes below one part that all sessions
	// together keep in PostgreSQL; an append past it is refused with 429.
	// Zero means no cap.
	MaxUploadsPerRepository int
	MaxUploadsPerClient     int
	MaxStagedBytes          int64
}

// DefaultSessionLockTimeout is [Config.SessionLockTimeout]'s default:
// long enough for a chunk racing its own retry to finish, short enough
// that a client behind a hung replica's lock retries within seconds.
const DefaultSessionLockTimeout = 5 * time.Second

func (s *Store) sessionLockTimeout() time.Duration {
	if s.cfg.SessionLockTimeout > 0 {
		return s.cfg.SessionLockTimeout
	}
	return DefaultSessionLockTimeout
}

// RedirectExpiry is how long a presigned blob URL stays valid.
const RedirectExpiry = 20 * time.Minute

// Store is the registry's storage: S3 for bytes, PostgreSQL for the index.
type Store struct {
	db       *pgxpool.Pool
	streamDB *pgxpool.Pool
	s3       *s3store.Store
	layout   s3store.Layout
	partSize int
	cfg      Config
	pulls    *pullLog
}

var (
	_ registry.Store          = (*Store)(nil)
	_ registry.BlobRedirector = (*Store)(nil)
)

// New returns a Store over db and s3.
func New(db *pgxpool.Pool, s3 *s3store.Store, cfg Config) (*Store, error) {
	if cfg.PartSize == 0 {
		cfg.PartSize = MinPartSize
	}
	if cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("part size %d is below S3's minimum of %d", cfg.PartSize, MinPartSize)
	}
	streamDB := cfg.StreamDB
	if streamDB == nil {
		streamDB = db
	}
	st := &Store{db: db, streamDB: streamDB, s3: s3, layout: s3.Layout(), partSize: cfg.PartSize, cfg: cfg}
	if cfg.RecordPulls {
		st.pulls = newPullLog()
	}
	return st, nil
}

// Ready reports whether this replica can serve. Without PostgreSQL, or
// with a database that refuses writes (a standby, or a primary being
// demoted), it cannot: the balancer must take it out. Without S3 it
// serves degraded: manifests, tag lists and blob HEADs come from the
// index, and every replica shares the same S3, so taking them all out
// would refuse what they can still answer.
func (s *Store) Ready(ctx context.Context) error {
	var readOnly bool
	err := s.db.QueryRow(ctx, `SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'`).Scan(&readOnly)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if readOnly {
		return errors.New("postgres: the database is read-only (a standby, or default_transaction_read_only)")
	}
	if err := s.s3.Ping(ctx); err != nil {
		return &registry.DegradedError{Dependency: "s3", Err: err}
	}
	return nil
}

// inTx runs fn in a transaction, mapping an unreachable database to
// ErrUnavailable so clients get a fast 503 instead of a 500.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return dbErr(pgx.BeginFunc(ctx, s.db, fn))
}

// inStreamTx is inTx for a transaction held open while a request body
// streams; it draws on the stream pool.
func (s *Store) inStreamTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if s.cfg.Streaming != nil {
		s.cfg.Streaming(1)
		defer s.cfg.Streaming(-1)
	}
	conn, err := s.acquireStream(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return dbErr(pgx.BeginFunc(ctx, conn, fn))
}

// acquireStream takes a stream pool connection, waiting at most
// Config.StreamWait. Only a pool whose connections are all taken is
// refused with 429; a wait that ran out while connecting is the
// database's slowness, answered as its unavailability.
func (s *Store) acquireStream(ctx context.Context) (*pgxpool.Conn, error) {
	if s.cfg.StreamWait <= 0 {
		conn, err := s.streamDB.Acquire(ctx)
		return conn, dbErr(err)
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.StreamWait)
	defer cancel()
	conn, err := s.streamDB.Acquire(wctx)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		if st := s.streamDB.Stat(); st.AcquiredConns() >= st.MaxConns() {
			return nil, registry.ErrTooManyRequests.WithMessage(
				"all %d upload connections of this replica stayed busy for %s; retry later", st.MaxConns(), s.cfg.StreamWait)
		}
	}
	return conn, dbErr(err)
}

// readAgain runs read, an idempotent read of the index, once more when
// PostgreSQL ended the connection under it: a failover or a restart
// terminates every backend (57P01), and the pool still holds their dead
// connections. The pool's idle connections are dropped first, so the
// second try runs on a fresh one and a pull gets its answer, not a 503.
func (s *Store) readAgain(ctx context.Context, read func() error) error {
	err := read()
	if err == nil || ctx.Err() != nil || !connectionLost(err) {
		return err
	}
	s.db.Reset()
	return read()
}

// connectionLost reports whether err ended an established connection
// (the server closed it, terminated its backend or broke the protocol),
// as opposed to the statement failing or a connection failing to open,
// which a second try would only repeat.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || pe.Code == "57P02" || strings.HasPrefix(pe.Code, "08")
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// dbErr turns connection failures into ErrUnavailable; other errors pass.
func dbErr(err error) error {
	if err == nil {
		return nil
	}
	// Errors that already say what they are pass: the registry's own, and
	// an S3 outage met inside a transaction, whose network error must not
	// be blamed on the database.
	var re *registry.Error
	var outage registry.Outage
	if errors.As(err, &re) || errors.As(err, &outage) {
		return err
	}
	// A connection that dies under a query surfaces as a network error or,
	// when the server's answer is cut short, as an unexpected EOF.
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		serverUnavailable(err) {
		return fmt.Errorf("%w: %w", registry.ErrUnavailable.WithMessage("metadata database unavailable"), err)
	}
	return err
}

// serverUnavailable reports whether PostgreSQL refused err's statement
// for a reason of the moment, not of the statement: the server shuts
// down or fails over (admin_shutdown, crash_shutdown, cannot_connect_now),
// the connection broke (class 08), it has no connection slot free, or it
// is a standby that refuses writes (read_only_sql_transaction). The
// client should retry, on this replica or another, so 503, never 500.
func serverUnavailable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "57P01", "57P02", "57P03", "25006", "53300":
		return true
	}
	return strings.HasPrefix(pe.Code, "08")
}

// ensureRepository returns repo's id, creating the row on first use. The
// no-op update makes RETURNING answer for an existing row too, so racing
// first pushes both get the id instead of a unique violation.
func ensureRepository(ctx context.Context, tx pgx.Tx, repo string) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO repositories (name) VALUES ($1)
		ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`, repo).Scan(&id)
	return id, err
}

// repositoryID returns repo's id, or ok false when it does not exist.
func repositoryID(ctx context.Context, q querier, repo string) (int64, bool, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM repositories WHERE name = $1`, repo).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// querier is what a pool and a transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// lockDigest serializes, cluster-wide, everything that creates or removes
// the blob object of d, until tx ends.
func lockDigest(ctx context.Context, tx pgx.Tx, d digest.Digest) error {
	return pglock.XactLock(ctx, tx, pglock.Key(pglock.NamespaceDigest, d.String()), pglock.Exclusive)
}

// isFKViolation reports a foreign key refusing a delete or insert.
func isFKViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
