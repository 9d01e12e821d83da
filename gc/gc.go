// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/rebuild"
	"github.com/ha-registry/ha-registry/s3store"
)

// Defaults of the command line and of serve's periodic passes.
const (
	DefaultGrace     = 24 * time.Hour
	DefaultUploadTTL = 24 * time.Hour
	// DefaultBatchSize bounds the candidates one transaction removes and
	// one DeleteObjects request deletes.
	DefaultBatchSize = 500
)

// LockKey is the cluster-wide advisory lock a pass holds, exclusively,
// from start to end: one runner at a time across every replica and every
// registry gc process.
var LockKey = pglock.Key(pglock.NamespaceJobs, "gc")

// Options configure a pass.
type Options struct {
	// DB is the index, migrated to this binary's schema.
	DB *pgxpool.Pool
	// S3 is the bucket.
	S3 *s3store.Store
	// Grace is how long a manifest, blob link or unknown bucket object must
	// have stayed unreferenced before it goes. Zero removes at once what
	// this pass finds unreferenced (unknown objects still need two passes).
	Grace time.Duration
	// UploadTTL is how long an upload session may stay idle, and an S3
	// multipart upload no session owns may exist, before they go. It
	// must exceed the longest single upload request.
	UploadTTL time.Duration
	// DeleteUntagged removes manifests no tag reaches (see the package
	// documentation for what reaches); without it no manifest is removed.
	DeleteUntagged bool
	// DryRun removes nothing and records nothing; the summary lists what a
	// pass would have removed.
	DryRun bool
	// Now is the clock marks and ages are measured with; time.Now if nil.
	Now func() time.Time
	// BatchSize is DefaultBatchSize when zero.
	BatchSize int
	// DutyCycle is the share of its time the pass works, in (0, 1]; it
	// sleeps the rest, so that pushes and pulls on the same servers keep
	// their latency. DefaultDutyCycle when zero; 1 never sleeps.
	DutyCycle float64
	// Logger receives the failures a pass survives.
	Logger zerolog.Logger

	// hooks let tests stop a pass at its critical points.
	hooks hooks
}

// hooks are called, when set, at the points of a pass where a race with
// a push matters.
type hooks struct {
	// beforeObjectDelete runs after a batch's rows are deleted and
	// committed, before its bucket objects are, while its locks are held.
	beforeObjectDelete func(stage Kind)
	// beforeBatch runs once a batch's candidates are known, before its
	// locks are taken.
	beforeBatch func(stage Kind)
}

// ErrLockLost ends a pass whose connection holding [LockKey] failed.
var ErrLockLost = errors.New("gc: lost the cluster-wide gc lock: the connection holding it failed")

// Run makes one pass: it takes [LockKey] without waiting and returns a
// summary with Skipped set when another runner (or registry rebuild-db)
// holds it. An error means the pass stopped early; what it removed until
// then is in the summary, and what it left the next pass finds again.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.DB == nil || opts.S3 == nil {
		return Summary{}, errors.New("gc: a database and a bucket are required")
	}
	if opts.Grace < 0 || opts.UploadTTL < 0 {
		return Summary{}, errors.New("gc: the grace period and the upload TTL may not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.DutyCycle == 0 {
		opts.DutyCycle = DefaultDutyCycle
	}
	if !(opts.DutyCycle > 0 && opts.DutyCycle <= 1) {
		return Summary{}, fmt.Errorf("gc: the duty cycle must be above 0 and at most 1, not %v", opts.DutyCycle)
	}
	started := time.Now()
	s := Summary{Start: opts.Now(), DryRun: opts.DryRun}
	s, err := run(ctx, opts, s, LockKey, (*pass).stages)
	s.Duration = time.Since(started)
	record(s, err)
	return s, err
}

// run holds the locks around one pass, which runs the stages that stages
// gives; lockKey is the runner's lock, taken without waiting.
func run(ctx context.Context, opts Options, s Summary, lockKey int64, stages func(*pass) []stage) (Summary, error) {
	lock, err := pglock.TryAcquire(ctx, opts.DB, lockKey, pglock.Exclusive)
	if errors.Is(err, pglock.ErrNotAcquired) {
		s.Skipped = SkippedBusy
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("gc: taking the gc lock: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lock.Lost():
			cancel(ErrLockLost)
		case <-ctx.Done():
		}
	}()

	// A connection of the pass's own, for its temporary tables and the
	// session locks it deletes under; closing it ends both, whatever
	// happened.
	pc, err := opts.DB.Acquire(ctx)
	if err != nil {
		return s, fmt.Errorf("gc: connecting to PostgreSQL: %w", err)
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))

	// rebuild-db rewrites the index from the bucket while it runs; a pass
	// then could delete what it is about to index. Shared, so that only
	// rebuild-db (which takes it exclusively) and gc exclude each other.
	var free bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock_shared($1)`, rebuild.LockKey).Scan(&free); err != nil {
		return s, fmt.Errorf("gc: checking for registry rebuild-db: %w", err)
	}
	if !free {
		s.Skipped = SkippedRebuild
		return s, nil
	}
	// Closing the connection releases the lock only once its server
	// process has ended; a rebuild-db started right after the pass must
	// not find it still held.
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock_shared($1)`, rebuild.LockKey)

	// A database that went back in time lacks what the bucket holds:
	// deleting by what the index does not know would delete that.
	reason, err := rebuild.CheckLineage(ctx, conn, !opts.DryRun)
	if err != nil {
		return s, fmt.Errorf("gc: %w", err)
	}
	s.RebuildRequired = reason
	rebuildRequired.Set(0)
	if reason != "" {
		rebuildRequired.Set(1)
		opts.Logger.Error().Str("reason", reason).
			Msg("garbage collection deletes nothing but abandoned uploads until `registry rebuild-db` has run on this database")
	}

	p := newPass(opts, conn, &s)
	err = p.run(ctx, stages(p))
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w (%v)", cause, err)
	}
	return s, err
}

// pass is one pass's state.
type pass struct {
	opts   Options
	conn   *pgx.Conn
	s3     *s3store.Store
	layout s3store.Layout
	log    zerolog.Logger
	sum    *Summary
	pace   *pacer

	now          time.Time // the clock at the start: marks are stamped with it
	cutoff       time.Time // unreferenced since no later than this: old enough to go
	uploadCutoff time.Time // idle since no later than this: abandoned
}

func newPass(opts Options, conn *pgx.Conn, s *Summary) *pass {
	return &pass{
		opts: opts, conn: conn, s3: opts.S3, layout: opts.S3.Layout(), log: opts.Logger, sum: s,
		pace: newPacer(opts.DutyCycle),
		now:  s.Start, cutoff: s.Start.Add(-opts.Grace), uploadCutoff: s.Start.Add(-opts.UploadTTL),
	}
}

// passTables are the pass's temporary tables. The gone tables hold what
// the stages so far removed (or, dry, would have): later stages read the
// index as if those rows were gone, which in a real pass they are, so a
// dry run follows the same queries to the same answer.
var passTables = []string{
	`CREATE TEMP TABLE gc_gone_manifests (repository_id bigint NOT NULL, digest text NOT NULL, PRIMARY KEY (repository_id, digest))`,
	`CREATE TEMP TABLE gc_gone_links (repository_id bigint NOT NULL, digest text NOT NULL, PRIMARY KEY (repository_id, digest))`,
	`CREATE TEMP TABLE gc_gone_blobs (digest text PRIMARY KEY)`,
}

// stage is one step of a pass.
type stage struct {
	name string
	fn   func(context.Context) error
	// byIndex stages delete what the index does not reference or know;
	// they wait for a rebuild after the database went back in time.
	// Uploads are not acknowledged content.
	byIndex bool
}

// stages are a whole pass's, in the order their removals make room for
// each other: manifests free blob links, links and manifests free blobs.
// Uploads and the bucket come last, so that the listing finds what the
// earlier stages deleted already gone.
func (p *pass) stages() []stage {
	return append([]stage{
		{"manifests", p.sweepManifests, true},
		{"blob links", p.sweepBlobLinks, true},
		{"blobs", p.sweepBlobs, true},
	}, append(p.uploadStages(), stage{"bucket objects", p.sweepObjects, true})...)
}

// uploadStages end idle sessions, then the multipart uploads no session
// owns (see [ExpireUploads]).
func (p *pass) uploadStages() []stage {
	return []stage{{"uploads", p.sweepUploads, false}, {"multipart uploads", p.sweepMultipart, false}}
}

// run runs stages after creating the pass's tables.
func (p *pass) run(ctx context.Context, stages []stage) error {
	for _, ddl := range passTables {
		if _, err := p.conn.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("gc: creating the pass's tables: %w", err)
		}
	}
	defer func() { p.sum.Paused = p.pace.slept }()
	for _, st := range stages {
		if st.byIndex && p.sum.RebuildRequired != "" {
			continue
		}
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("gc: %s: %w", st.name, err)
		}
	}
	return nil
}
