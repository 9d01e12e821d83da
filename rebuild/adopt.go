// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/s3store"
)

// Adoption is rebuild-db for a few repositories, as garbage collection
// runs it before it deletes bucket objects the index does not know: the
// same walk, staging, derivation and insertions, limited to the
// repositories' links and the blobs they link, and to what the bucket's
// own tags reach.

// AdoptOptions configure [Adopt].
type AdoptOptions struct {
	// DB is the index; tag moves take the tag's lock in transactions of
	// their own on it.
	DB *pgxpool.Pool
	// S3 is the bucket, which adoption only reads.
	S3 *s3store.Store
	// Concurrency bounds the listing requests, and separately the object
	// reads, in flight; DefaultConcurrency when zero.
	Concurrency int
	// Logger receives the damage found.
	Logger zerolog.Logger
	// DryRun finds the live objects and writes nothing to the index.
	DryRun bool
	// LockTimeout, when not zero, bounds how long the insertions wait for
	// a row a request holds: the adoption then fails rather than keep a
	// push waiting, or be the one PostgreSQL picks to end a deadlock.
	LockTimeout time.Duration
}

// Adoption is what [Adopt] found and did.
type Adoption struct {
	// Changes counts the index rows written.
	Changes Changes
	// Live are the keys of the repositories' bucket objects that the
	// bucket itself reaches: the current link of every tag whose manifest
	// the bucket holds, its history link for that manifest, and, for every
	// manifest such a tag reaches (directly, as a child of an index it
	// reaches, or as a referrer of one it reaches), its revision link, its
	// data, and the links and data of the blobs it references. They are
	// live even when damage keeps them out of the index, or the adoption
	// was postponed. Keys of objects that do not exist may be among them.
	Live []string
	// Findings counts the damage found, by kind.
	Findings map[Kind]int64
}

// Adopt indexes what the bucket's tags reach in repos, as rebuild-db
// would, and returns what is live there. It uses conn for temporary
// tables it drops again, so conn must not be in a transaction. The caller
// must hold [LockKey], shared at least, so that no rebuild-db runs at the
// same time. Untagged manifests are not adopted: their objects are what a
// deletion, or a push that failed, left.
func Adopt(ctx context.Context, conn *pgx.Conn, opts AdoptOptions, repos []string) (Adoption, error) {
	var a Adoption
	if len(repos) == 0 {
		return a, nil
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	repos = slices.Clone(repos)
	slices.Sort(repos)
	repos = slices.Compact(repos)
	if err := dropAdoptionTables(ctx, conn); err != nil {
		return a, err
	}
	defer dropAdoptionTables(context.WithoutCancel(ctx), conn)
	r := &runner{opts: Options{DB: opts.DB, S3: opts.S3, Concurrency: opts.Concurrency, Logger: opts.Logger},
		conn: conn, start: time.Now(), report: newReporter(opts.Logger), repos: repos}
	if err := r.collect(ctx); err != nil {
		return a, fmt.Errorf("adopting: %w", err)
	}
	if err := analyzeStaging(ctx, conn); err != nil {
		return a, err
	}
	if err := derive(ctx, conn, r.report); err != nil {
		return a, err
	}
	live, err := liveKeys(ctx, conn, opts.S3.Layout())
	if err != nil {
		return a, err
	}
	a.Live = live
	for _, q := range keepLive {
		if _, err := conn.Exec(ctx, q); err != nil {
			return a, fmt.Errorf("adopting: %w", err)
		}
	}
	if !opts.DryRun {
		if opts.LockTimeout > 0 {
			if _, err := conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", opts.LockTimeout.Milliseconds())); err != nil {
				return a, err
			}
			defer conn.Exec(context.WithoutCancel(ctx), "RESET lock_timeout")
		}
		if err := r.adopt(ctx, &a.Changes); err != nil {
			return a, err
		}
	}
	r.report.flushElided()
	a.Findings = r.report.snapshot()
	return a, nil
}

// onlyLacking limits the d_ tables to what the index lacks now: the
// rest is not the adoption's to write.
var onlyLacking = []string{
	`DELETE FROM d_tags x USING repositories r, tags t WHERE r.name = x.repo AND t.repository_id = r.id AND t.name = x.tag`,
	`DELETE FROM d_manifests x USING repositories r, manifests m
		WHERE r.name = x.repo AND m.repository_id = r.id AND m.digest = x.digest`,
	`DELETE FROM d_repo_blobs x USING repositories r, repository_blobs rb
		WHERE r.name = x.repo AND rb.repository_id = r.id AND rb.digest = x.digest`,
}

// maxAdoptions bounds the rows one adoption indexes: each holds its locks
// until the adoption commits. More is registry rebuild-db's work.
const maxAdoptions = 1000

// adopt inserts what the index lacks of the d_ tables and points tags
// where the bucket points them. Requests go on meanwhile, and a deletion
// removes its rows and then its links: a link read before a deletion
// committed must not put the rows back. So the insertions run under the
// locks the writers and deleters of those objects hold (the tag's, the
// digest's), taken without waiting, and only once every object has been
// read again under them. When a lock is busy or an object changed, the
// adoption writes nothing and a later pass tries again; the objects stay
// live meanwhile.
func (r *runner) adopt(ctx context.Context, c *Changes) error {
	moves, err := listMoves(ctx, r.conn)
	if err != nil {
		return err
	}
	for _, q := range onlyLacking {
		if _, err := r.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("adopting: %w", err)
		}
	}
	checks, locks, err := r.adoptees(ctx)
	if err != nil {
		return err
	}
	if len(checks) > maxAdoptions {
		r.opts.Logger.Warn().Int("objects", len(checks)).
			Msg("too much is missing from the index to adopt it during garbage collection: run registry rebuild-db")
		return nil
	}
	var added Changes
	if len(checks) > 0 {
		err = pgx.BeginFunc(ctx, r.conn, func(tx pgx.Tx) error {
			var busy int
			if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT pg_try_advisory_xact_lock(k))
				FROM unnest($1::bigint[]) AS k`, locks).Scan(&busy); err != nil {
				return err
			}
			if busy > 0 {
				return errPostponed
			}
			if err := r.stillThere(ctx, checks); err != nil {
				return err
			}
			return insertMissingTx(ctx, tx, &added)
		})
		if errors.Is(err, errPostponed) || raced(err) {
			r.opts.Logger.Debug().Err(err).Msg("adoption postponed: a request is changing these objects")
			return nil
		}
		if err != nil {
			return err
		}
	}
	*c = added
	// Each move reads the tag's link again under the tag's lock.
	for _, m := range moves {
		moved, err := moveTag(ctx, r.opts.DB, r.opts.S3, m)
		if raced(err) {
			continue // the manifest went meanwhile, or a push holds the tag
		}
		if err != nil {
			return fmt.Errorf("moving tag %s:%s: %w", m.repo, m.tag, err)
		}
		if moved {
			c.TagsMoved++
			r.opts.Logger.Info().Str("repository", m.repo).Str("tag", m.tag).Str("from", m.index.String()).
				Str("to", m.bucket.String()).Msg("adopted: moved the tag where the bucket points it")
		}
	}
	return nil
}

// liveTable holds (repository, manifest digest) for every manifest the
// staged tags reach: the tagged ones that have a revision link and bytes
// that parse (a tag link to anything else is what a push that failed
// left), the children of an index reached, and the referrers (with a
// revision link in the same repository) of a manifest reached, to any
// depth.
const liveTable = `CREATE TEMP TABLE a_live AS
	WITH RECURSIVE live (repo, digest) AS (
		SELECT t.repo, t.digest FROM s_tags t
		WHERE EXISTS (SELECT 1 FROM s_revisions r WHERE r.repo = t.repo AND r.digest = t.digest)
			AND EXISTS (SELECT 1 FROM s_manifests m WHERE m.digest = t.digest)
		UNION
		SELECT x.repo, x.digest FROM live l CROSS JOIN LATERAL (
			SELECT l.repo, f.ref AS digest FROM s_refs f WHERE f.digest = l.digest AND f.child
			UNION ALL
			SELECT r.repo, r.digest FROM s_manifests m JOIN s_revisions r ON r.digest = m.digest AND r.repo = l.repo
			WHERE m.subject = l.digest) x)
	SELECT repo, digest FROM live`

// keepLive limits the d_ tables and s_blobs to what a_live reaches, so
// that the insertions adopt nothing else.
var keepLive = []string{
	`DELETE FROM d_manifests d WHERE NOT EXISTS (SELECT 1 FROM a_live a WHERE a.repo = d.repo AND a.digest = d.digest)`,
	`DELETE FROM d_tags t WHERE NOT EXISTS (SELECT 1 FROM d_manifests d WHERE d.repo = t.repo AND d.digest = t.digest)`,
	`DELETE FROM d_repo_blobs x WHERE NOT EXISTS (SELECT 1 FROM d_manifests d JOIN s_refs f ON f.digest = d.digest AND NOT f.child
		WHERE d.repo = x.repo AND f.ref = x.digest)`,
	`DELETE FROM s_blobs b WHERE NOT EXISTS (SELECT 1 FROM d_manifests d WHERE d.digest = b.digest)
		AND NOT EXISTS (SELECT 1 FROM d_repo_blobs x WHERE x.digest = b.digest)`,
	`DELETE FROM d_repos x WHERE NOT EXISTS (SELECT 1 FROM d_manifests d WHERE d.repo = x.repo)`,
}

// liveKeys builds a_live and returns the keys of the live objects.
func liveKeys(ctx context.Context, conn *pgx.Conn, l s3store.Layout) ([]string, error) {
	if _, err := conn.Exec(ctx, liveTable); err != nil {
		return nil, fmt.Errorf("finding what the bucket's tags reach: %w", err)
	}
	var keys []string
	err := queryEach(ctx, conn, `SELECT 'tag', t.repo, t.tag, t.digest FROM s_tags t JOIN a_live a ON a.repo = t.repo AND a.digest = t.digest
		UNION ALL SELECT 'manifest', repo, '', digest FROM a_live
		UNION SELECT 'blob', a.repo, '', f.ref FROM a_live a JOIN s_refs f ON f.digest = a.digest AND NOT f.child`,
		func(rows pgx.Rows) error {
			var kind, repo, tag, d string
			if err := rows.Scan(&kind, &repo, &tag, &d); err != nil {
				return err
			}
			dg := digest.Digest(d)
			switch kind {
			case "tag":
				keys = append(keys, l.TagCurrentLink(repo, tag), l.TagIndexLink(repo, tag, dg))
			case "manifest":
				keys = append(keys, l.RevisionLink(repo, dg), l.BlobData(dg))
			case "blob":
				keys = append(keys, l.LayerLink(repo, dg), l.BlobData(dg))
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("finding what the bucket's tags reach: %w", err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// dropAdoptionTables drops the temporary tables an adoption creates.
func dropAdoptionTables(ctx context.Context, conn *pgx.Conn) error {
	names := []string{"a_live", "d_repos", "d_repo_blobs", "d_manifests", "d_tags"}
	for _, t := range stagingTables {
		names = append(names, t.name)
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+n); err != nil {
			return err
		}
	}
	return nil
}

// repoRoots are the prefixes of repos' blob links, revision links and
// tags: not their uploads, nor the repositories nested below them.
func repoRoots(l s3store.Layout, repos []string) []listTask {
	var out []listTask
	for _, r := range repos {
		out = append(out, listTask{prefix: l.LayersPrefix(r), rule: ruleLinkAlgs},
			listTask{prefix: l.RepositoryPrefix(r) + "_manifests/", rule: ruleManifests})
	}
	return out
}

// linkedBlobs notes the blobs a limited walk finds linked, so that their
// data objects can be staged without listing the whole blob store.
type linkedBlobs struct {
	mu      sync.Mutex
	digests []digest.Digest
}

// watch wraps c's emit to note blob links.
func (b *linkedBlobs) watch(c *collector) func(context.Context, s3store.ObjectInfo) error {
	return func(ctx context.Context, o s3store.ObjectInfo) error {
		if info, ok := parseKey(c.layout, o.Key); ok && info.Kind == s3store.KeyLayerLink {
			b.mu.Lock()
			b.digests = append(b.digests, info.Digest)
			b.mu.Unlock()
		}
		return c.emit(ctx, o)
	}
}

// stat stages the data objects of the noted blobs that exist.
func (b *linkedBlobs) stat(ctx context.Context, c *collector, workers int) error {
	slices.Sort(b.digests)
	ds := slices.Compact(b.digests)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan digest.Digest)
	var wg sync.WaitGroup
	for range min(workers, max(len(ds), 1)) {
		wg.Go(func() {
			for d := range next {
				o, err := c.s3.Stat(ctx, c.layout.BlobData(d))
				if errors.Is(err, s3store.ErrNotFound) {
					continue
				}
				if err == nil {
					err = c.emit(ctx, o)
				}
				if err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, d := range ds {
		select {
		case next <- d:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}
