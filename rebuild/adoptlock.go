// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/s3store"
)

// errPostponed ends an adoption that found a lock busy or an object
// changed since it was read.
var errPostponed = errors.New("a request holds or changed the objects to adopt")

// objectCheck is an object an adoption reads again under its locks: it
// must exist and, for a tag's current link, hold the digest want.
type objectCheck struct {
	key, want string
}

// adoptees returns the objects behind every row the d_ tables (and
// s_blobs, for the blobs the index lacks) would insert, and the locks
// their writers and deleters take: a tag's, and the digest's of the tag's
// manifest, of a manifest, of a linked blob and of a blob.
func (r *runner) adoptees(ctx context.Context) ([]objectCheck, []int64, error) {
	l := r.opts.S3.Layout()
	var checks []objectCheck
	var locks []int64
	err := queryEach(ctx, r.conn, `SELECT 'tag', repo, tag, digest FROM d_tags
		UNION ALL SELECT 'manifest', repo, '', digest FROM d_manifests
		UNION ALL SELECT 'link', repo, '', digest FROM d_repo_blobs
		UNION ALL SELECT 'blob', '', '', b.digest FROM s_blobs b WHERE NOT EXISTS (SELECT 1 FROM blobs x WHERE x.digest = b.digest)`,
		func(rows pgx.Rows) error {
			var kind, repo, tag, d string
			if err := rows.Scan(&kind, &repo, &tag, &d); err != nil {
				return err
			}
			dg := digest.Digest(d)
			locks = append(locks, store.DigestLockKey(dg))
			switch kind {
			case "tag":
				locks = append(locks, store.TagLockKey(repo, tag))
				checks = append(checks, objectCheck{key: l.TagCurrentLink(repo, tag), want: d})
			case "manifest":
				checks = append(checks, objectCheck{key: l.RevisionLink(repo, dg)}, objectCheck{key: l.BlobData(dg)})
			case "link":
				checks = append(checks, objectCheck{key: l.LayerLink(repo, dg)}, objectCheck{key: l.BlobData(dg)})
			case "blob":
				checks = append(checks, objectCheck{key: l.BlobData(dg)})
			}
			return nil
		})
	if err != nil {
		return nil, nil, fmt.Errorf("adopting: %w", err)
	}
	slices.SortFunc(checks, func(a, b objectCheck) int { return strings.Compare(a.key, b.key) })
	checks = slices.Compact(checks)
	slices.Sort(locks)
	return checks, slices.Compact(locks), nil
}

// stillThere reads checks again, in parallel, and returns errPostponed
// when one is gone or holds another digest.
func (r *runner) stillThere(ctx context.Context, checks []objectCheck) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan objectCheck)
	var wg sync.WaitGroup
	for range min(r.opts.Concurrency, len(checks)) {
		wg.Go(func() {
			for c := range next {
				if err := r.check(ctx, c); err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, c := range checks {
		select {
		case next <- c:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// check is one object of stillThere.
func (r *runner) check(ctx context.Context, c objectCheck) error {
	var err error
	if c.want == "" {
		_, err = r.opts.S3.Stat(ctx, c.key)
	} else {
		var b []byte
		b, err = r.opts.S3.GetBytes(ctx, c.key)
		if err == nil && strings.TrimSpace(string(b)) != c.want {
			return errPostponed
		}
	}
	if errors.Is(err, s3store.ErrNotFound) {
		return errPostponed
	}
	return err
}

// raced reports a write that a request got in the way of: a foreign key
// refusing it (23503), a lock not granted within the lock timeout
// (55P03), or a deadlock PostgreSQL ended with it (40P01).
func raced(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "23503", "55P03", "40P01":
		return true
	}
	return false
}
