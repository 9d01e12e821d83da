// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/s3store"
)

// Mode is what a run does with what it finds.
type Mode int

// The modes.
const (
	// ModeRebuild adds to the index what the bucket holds and the index
	// lacks, and points tags where the bucket's links point. It deletes
	// nothing; it reports index rows whose objects are gone.
	ModeRebuild Mode = iota
	// ModeVerify compares without writing and reports every difference.
	ModeVerify
	// ModeRepair rebuilds, then also deletes index rows whose objects are
	// gone, each after asking S3 again under the lock a push would take.
	ModeRepair
)

// String names the mode as the command line does.
func (m Mode) String() string {
	switch m {
	case ModeVerify:
		return "verify"
	case ModeRepair:
		return "repair"
	}
	return "rebuild"
}

// DefaultConcurrency is the default of [Options.Concurrency].
const DefaultConcurrency = 32

// Options configure a run.
type Options struct {
	// DB is the index. It must be migrated to the binary's schema.
	DB *pgxpool.Pool
	// S3 is the bucket, which the run only reads.
	S3   *s3store.Store
	Mode Mode
	// Concurrency bounds the listing requests in flight, and separately
	// the object reads; DefaultConcurrency when zero.
	Concurrency int
	// Logger receives findings and the summary.
	Logger zerolog.Logger
	// Progress, when set, is called every ProgressInterval (default 1s)
	// while the run goes on, and once at its end with Phase "done".
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// LockKey is the cluster-wide advisory lock a run holds, exclusively,
// from start to end.
var LockKey = pglock.Key(pglock.NamespaceRebuild, "rebuild-db")

// ErrBusy is returned when another run holds [LockKey], or a garbage
// collection pass, which holds it shared so that the two never overlap.
var ErrBusy = errors.New("another registry rebuild-db is running against this database, or a garbage collection pass is")

// errLockLost cancels a run whose lock connection failed.
var errLockLost = errors.New("lost the rebuild-db lock: the connection holding it failed")

// Run walks the bucket and reconciles the index with it as opts.Mode says.
// Damaged content is reported and skipped, and is no error; an error means
// the run could not finish (S3 or PostgreSQL failed, or the lock was
// taken), in which case a rebuild or repair has written nothing or only
// some of its tag moves and deletions, which a new run completes.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.DB == nil || opts.S3 == nil {
		return Summary{}, errors.New("rebuild: a database and a bucket are required")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	lock, err := pglock.TryAcquire(ctx, opts.DB, LockKey, pglock.Exclusive)
	if errors.Is(err, pglock.ErrNotAcquired) {
		return Summary{}, ErrBusy
	}
	if err != nil {
		return Summary{}, fmt.Errorf("taking the rebuild-db lock: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lock.Lost():
			cancel(errLockLost)
		case <-ctx.Done():
		}
	}()

	// One connection of its own for the staging tables, closed at the end
	// so that they never reach another user of the pool.
	pc, err := opts.DB.Acquire(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))

	// The history the rebuilt index will match: read before the walk, so
	// that a failover during the run leaves the change to be found again.
	began, err := readLineage(ctx, conn)
	if err != nil {
		return Summary{}, err
	}
	r := &runner{opts: opts, conn: conn, start: time.Now(), report: newReporter(opts.Logger)}
	r.setPhase("listing")
	stop := r.startProgress()
	s, err := r.run(ctx)
	stop()
	if err == nil && opts.Mode != ModeVerify {
		err = recordRebuilt(ctx, conn, began)
	}
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w (%v)", cause, err)
	}
	return s, err
}

// runner is one run's state.
type runner struct {
	opts   Options
	conn   *pgx.Conn
	start  time.Time
	counts counters
	report *reporter
	// repos, when not nil, limits the walk to these repositories and the
	// blobs they link (see [Adopt]).
	repos []string

	mu    sync.Mutex
	phase string
}

func (r *runner) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

func (r *runner) progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Progress{Phase: r.phase, Elapsed: time.Since(r.start), ObjectsListed: r.counts.listed.Load(),
		ManifestsParsed: r.counts.parsed.Load(), TagsRead: r.counts.tagsRead.Load()}
}

// startProgress calls opts.Progress on every tick until the returned
// function is called, which makes the last call.
func (r *runner) startProgress() func() {
	if r.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.opts.Progress(r.progress())
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		r.setPhase("done")
		r.opts.Progress(r.progress())
	}
}

// run lists, derives, and reconciles.
func (r *runner) run(ctx context.Context) (Summary, error) {
	s := Summary{Mode: r.opts.Mode}
	if err := r.collect(ctx); err != nil {
		return s, err
	}
	r.setPhase("reconciling")
	if err := analyzeStaging(ctx, r.conn); err != nil {
		return s, err
	}
	if err := derive(ctx, r.conn, r.report); err != nil {
		return s, err
	}
	err := r.conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM d_repos), (SELECT count(*) FROM d_tags),
		(SELECT count(*) FROM d_manifests), (SELECT count(*) FROM s_blobs), (SELECT coalesce(sum(size), 0) FROM s_blobs)`).
		Scan(&s.Repositories, &s.Tags, &s.Manifests, &s.Blobs, &s.Bytes)
	if err != nil {
		return s, err
	}
	if r.opts.Mode == ModeVerify {
		err = r.verify(ctx)
	} else {
		s.Unresolved, err = r.reconcile(ctx, &s.Changes)
	}
	if err != nil {
		return s, err
	}
	r.report.flushElided()
	s.Findings = r.report.snapshot()
	if r.opts.Mode == ModeVerify {
		s.Unresolved = s.Drift()
	}
	s.ObjectsListed = r.counts.listed.Load()
	s.Unrecognised = r.counts.unrecognised.Load()
	s.ManifestsParsed = r.counts.parsed.Load()
	s.Duration = time.Since(r.start)
	return s, nil
}

// collect walks the bucket into the staging tables.
func (r *runner) collect(ctx context.Context) error {
	if err := createStaging(ctx, r.conn); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	st := startStager(ctx, r.conn, cancel)
	c := &collector{s3: r.opts.S3, layout: r.opts.S3.Layout(), stage: st, report: r.report, log: r.opts.Logger,
		counts: &r.counts, jobs: make(chan readJob, 4*r.opts.Concurrency)}
	var readers sync.WaitGroup
	for range r.opts.Concurrency {
		readers.Go(func() {
			if err := c.read(ctx); err != nil {
				cancel(err)
			}
		})
	}
	w := &walker{s3: r.opts.S3, workers: r.opts.Concurrency, emit: c.emit}
	var links *linkedBlobs
	if r.repos != nil {
		w.roots = repoRoots(c.layout, r.repos)
		links = &linkedBlobs{}
		w.emit = links.watch(c)
	}
	walkErr := w.walk(ctx, c.layout)
	if walkErr == nil && links != nil {
		walkErr = links.stat(ctx, c, r.opts.Concurrency)
	}
	if walkErr != nil {
		cancel(walkErr)
	}
	close(c.jobs)
	readers.Wait()
	stageErr := st.finish()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return stageErr
}

// verify reports every difference without writing.
func (r *runner) verify(ctx context.Context) error {
	for _, q := range lacksQueries {
		if err := reportRows(ctx, r.conn, r.report, q); err != nil {
			return err
		}
	}
	if err := reportRows(ctx, r.conn, r.report, blobSizes); err != nil {
		return err
	}
	moves, err := listMoves(ctx, r.conn)
	if err != nil {
		return err
	}
	for _, m := range moves {
		r.report.add(Finding{Kind: TagDiffers, Repo: m.repo, Tag: m.tag, Digest: m.bucket.String(),
			Detail: fmt.Sprintf("the bucket points the tag at this manifest; the index at %s", m.index)})
	}
	_, err = listStale(ctx, r.conn, r.report)
	return err
}

// reconcile writes what the bucket holds into the index and, with
// --repair, deletes the rows whose objects are gone. It returns how many
// differences it left.
func (r *runner) reconcile(ctx context.Context, c *Changes) (int64, error) {
	var empty bool
	if err := r.conn.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM repositories) AND NOT EXISTS (SELECT 1 FROM blobs)`).Scan(&empty); err != nil {
		return 0, err
	}
	if err := insertMissing(ctx, r.conn, c); err != nil {
		return 0, err
	}
	if empty {
		// Every row now came from the bucket: none can differ from it.
		return 0, nil
	}
	var unresolved int64
	moves, err := listMoves(ctx, r.conn)
	if err != nil {
		return 0, err
	}
	for _, m := range moves {
		moved, err := moveTag(ctx, r.opts.DB, r.opts.S3, m)
		if err != nil {
			return unresolved, fmt.Errorf("moving tag %s:%s: %w", m.repo, m.tag, err)
		}
		if moved {
			c.TagsMoved++
			r.opts.Logger.Info().Str("repository", m.repo).Str("tag", m.tag).Str("from", m.index.String()).
				Str("to", m.bucket.String()).Msg("moved the tag where the bucket points it")
		} else {
			r.opts.Logger.Info().Str("repository", m.repo).Str("tag", m.tag).
				Msg("the tag changed during the run; left as it is now")
		}
	}
	before := r.report.snapshot()[BlobSizeDiffers]
	if err := reportRows(ctx, r.conn, r.report, blobSizes); err != nil {
		return unresolved, err
	}
	unresolved += r.report.snapshot()[BlobSizeDiffers] - before
	stale, err := listStale(ctx, r.conn, r.report)
	if err != nil {
		return unresolved, err
	}
	if r.opts.Mode != ModeRepair {
		return unresolved + int64(len(stale)), nil
	}
	rp := &repairer{pool: r.opts.DB, s3: r.opts.S3, log: r.opts.Logger}
	for _, row := range stale {
		n, err := rp.repair(ctx, row)
		c.Deleted += n
		switch {
		case err == nil:
		case errors.Is(err, errStillThere):
			unresolved++
			r.opts.Logger.Info().Str("kind", string(row.kind)).Str("repository", row.repo).Str("tag", row.tag).
				Str("digest", row.digest.String()).Msg("not repaired: the object exists now (written during the run?)")
		case ctx.Err() != nil:
			return unresolved, err
		default:
			unresolved++
			r.opts.Logger.Warn().Err(err).Str("kind", string(row.kind)).Str("repository", row.repo).Str("tag", row.tag).
				Str("digest", row.digest.String()).Msg("not repaired")
		}
	}
	return unresolved, nil
}
