// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// QuotaRefresh bounds the age of a stored quota figure: a push finding an
// older one recomputes it exactly. Figures only drift from writers that do
// not keep them (binaries from before quotas, rebuild-db), and this bounds
// how long such drift can last.
const QuotaRefresh = 10 * time.Minute

// QuotaUsage is what the repositories under a quota's match store: the
// unique bytes of their manifests and of the blobs those reference, and
// their tags. Blobs no manifest references yet (an upload before its
// manifest, or one whose manifest was refused) are not counted; GC
// removes them after its grace period.
type QuotaUsage struct {
	Bytes int64 `json:"bytes"`
	Tags  int64 `json:"tags"`
}

// matchSQL is true for the repositories r under the quota match $1: a
// namespace when it ends in "/", one repository otherwise.
const matchSQL = `CASE WHEN right($1, 1) = '/' THEN starts_with(r.name, $1) ELSE r.name = $1 END`

// exactUsage computes a match's usage from the index.
func exactUsage(ctx context.Context, q querier, match string) (QuotaUsage, error) {
	var u QuotaUsage
	err := q.QueryRow(ctx, `WITH rs AS (SELECT r.id FROM repositories r WHERE `+matchSQL+`),
		d AS (SELECT digest FROM manifests WHERE repository_id IN (SELECT id FROM rs)
			UNION SELECT blob_digest FROM manifest_blobs WHERE repository_id IN (SELECT id FROM rs))
		SELECT (SELECT coalesce(sum(b.size), 0) FROM d JOIN blobs b ON b.digest = d.digest)::bigint,
			(SELECT count(*) FROM tags WHERE repository_id IN (SELECT id FROM rs))`, match).Scan(&u.Bytes, &u.Tags)
	return u, err
}

// ComputeQuotaUsage computes, exactly and without storing it, what the
// repositories under q's match store.
func ComputeQuotaUsage(ctx context.Context, db *pgxpool.Pool, q policy.Quota) (QuotaUsage, error) {
	u, err := exactUsage(ctx, db, q.Match)
	return u, dbErr(err)
}

// RecomputeQuotaUsage replaces the stored figure of q's match, which
// pushes are checked against, with the exact one.
func RecomputeQuotaUsage(ctx context.Context, db *pgxpool.Pool, q policy.Quota) (QuotaUsage, error) {
	var u QuotaUsage
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := pglock.XactLock(ctx, tx, quotaLockKey(q.Match), pglock.Exclusive); err != nil {
			return err
		}
		var err error
		u, err = recompute(ctx, tx, q.Match)
		return err
	})
	return u, dbErr(err)
}

func quotaLockKey(match string) int64 { return pglock.Key(pglock.NamespaceQuota, match) }

// recompute stores and returns the exact figure; the caller holds the
// match's lock.
func recompute(ctx context.Context, tx pgx.Tx, match string) (QuotaUsage, error) {
	u, err := exactUsage(ctx, tx, match)
	if err != nil {
		return u, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO quota_usage (match, bytes, tags, computed_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (match) DO UPDATE SET bytes = EXCLUDED.bytes, tags = EXCLUDED.tags, computed_at = EXCLUDED.computed_at`,
		match, u.Bytes, u.Tags)
	return u, err
}

// storedUsage returns the stored figure of match, or the exact one (then
// stored, fresh true) when there is none or it is older than
// [QuotaRefresh]. The caller holds the match's lock.
func storedUsage(ctx context.Context, tx pgx.Tx, match string) (u QuotaUsage, fresh bool, err error) {
	u, current, err := readUsage(ctx, tx, match)
	if err != nil || current {
		return u, false, err
	}
	u, err = recompute(ctx, tx, match)
	return u, true, err
}

// readUsage reads the stored figure of match; current is false when there
// is none or it is older than [QuotaRefresh].
func readUsage(ctx context.Context, q querier, match string) (u QuotaUsage, current bool, err error) {
	var age time.Duration
	err = q.QueryRow(ctx, `SELECT bytes, tags, now() - computed_at FROM quota_usage WHERE match = $1`, match).Scan(&u.Bytes, &u.Tags, &age)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	return u, err == nil && age < QuotaRefresh, err
}

// quotasFor returns repo's quotas, sorted by match so that every push
// takes their locks in one order.
func (s *Store) quotasFor(repo string) []policy.Quota {
	if s.cfg.Quotas == nil {
		return nil
	}
	qs := s.cfg.Quotas(repo)
	slices.SortFunc(qs, func(a, b policy.Quota) int { return strings.Compare(a.Match, b.Match) })
	return qs
}

// manifestPush is what a manifest PUT adds, for its quota check.
type manifestPush struct {
	repoID int64
	digest string
	size   int64
	blobs  []string
	tags   []string
}

// checkManifestQuotas refuses a manifest PUT that would take any of
// repo's quotas past a limit, and otherwise adds what it stores to their
// figures. It runs in the PUT's transaction before anything is written, and
// holds each match's lock until the PUT commits, so concurrent pushes
// under one match are checked one after the other against figures that
// include each other: together they cannot pass the limit.
//
// A stored figure is an upper bound (removals do not lower it), so a push
// it would refuse is checked again against the exact figure first.
func (s *Store) checkManifestQuotas(ctx context.Context, tx pgx.Tx, repo string, p manifestPush) error {
	qs := s.quotasFor(repo)
	if len(qs) == 0 {
		return nil
	}
	for _, q := range qs {
		if err := pglock.XactLock(ctx, tx, quotaLockKey(q.Match), pglock.Exclusive); err != nil {
			return err
		}
	}
	var newTags int64
	if err := tx.QueryRow(ctx, `SELECT count(DISTINCT t) FROM unnest($2::text[]) t
		WHERE NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = $1 AND name = t)`, p.repoID, p.tags).Scan(&newTags); err != nil {
		return err
	}
	for _, q := range qs {
		adds, err := addedBytes(ctx, tx, q.Match, p.digest, p.size, p.blobs)
		if err != nil {
			return err
		}
		if adds == 0 && newTags == 0 {
			continue
		}
		u, fresh, err := storedUsage(ctx, tx, q.Match)
		if err != nil {
			return err
		}
		if overQuota(q, u, adds, newTags) != nil && !fresh {
			if u, err = recompute(ctx, tx, q.Match); err != nil {
				return err
			}
		}
		if err := overQuota(q, u, adds, newTags); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE quota_usage SET bytes = bytes + $2, tags = tags + $3 WHERE match = $1`,
			q.Match, adds, newTags); err != nil {
			return err
		}
	}
	return nil
}

// addedBytes is what storing digest (of size bytes) and referencing the
// stored blobs adds to match's usage: the sizes of those that no manifest
// under match is or references yet.
func addedBytes(ctx context.Context, q querier, match, digest string, size int64, blobs []string) (int64, error) {
	var adds int64
	err := q.QueryRow(ctx, `WITH c (digest, size) AS (
			SELECT $2::text, $3::bigint UNION SELECT digest, size FROM blobs WHERE digest = ANY($4::text[]))
		SELECT coalesce(sum(c.size), 0)::bigint FROM c
		WHERE NOT EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repository_id
				WHERE m.digest = c.digest AND `+matchSQL+`)
			AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb JOIN repositories r ON r.id = mb.repository_id
				WHERE mb.blob_digest = c.digest AND `+matchSQL+`)`,
		match, digest, size, blobs).Scan(&adds)
	return adds, err
}

// overQuota returns the refusal of a push adding adds bytes and newTags
// tags to u, or nil when q allows it. Adding nothing is always allowed:
// a push of what is already stored, or a tag move, never needs room.
func overQuota(q policy.Quota, u QuotaUsage, adds, newTags int64) error {
	if q.MaxBytes >= 0 && adds > 0 && u.Bytes+adds > q.MaxBytes {
		return registry.ErrDenied.WithMessage("quota of %s exceeded: %s stored of %s allowed, and this push adds %s; delete images under %s to make room",
			q.Match, policy.FormatSize(u.Bytes), policy.FormatSize(q.MaxBytes), policy.FormatSize(adds), q.Match).
			WithDetail(quotaDetail{Match: q.Match, Kind: "bytes", Used: u.Bytes, Limit: q.MaxBytes, Adds: adds})
	}
	if q.MaxTags >= 0 && newTags > 0 && u.Tags+newTags > q.MaxTags {
		return registry.ErrDenied.WithMessage("quota of %s exceeded: %d tags of %d allowed, and this push adds %d; delete tags under %s to make room",
			q.Match, u.Tags, q.MaxTags, newTags, q.Match).
			WithDetail(quotaDetail{Match: q.Match, Kind: "tags", Used: u.Tags, Limit: q.MaxTags, Adds: newTags})
	}
	return nil
}

// quotaDetail is the detail of a quota refusal, for clients that read it.
type quotaDetail struct {
	Match string `json:"match"`
	Kind  string `json:"kind"`
	Used  int64  `json:"used"`
	Limit int64  `json:"limit"`
	Adds  int64  `json:"adds"`
}

// checkUploadQuota refuses an upload into a repository whose byte quota
// is already used up: no manifest that stores anything new could follow.
// It takes no lock; a stored figure at the limit is recomputed first.
func (s *Store) checkUploadQuota(ctx context.Context, repo string) error {
	var full []policy.Quota
	for _, q := range s.quotasFor(repo) {
		if q.MaxBytes >= 0 {
			full = append(full, q)
		}
	}
	if len(full) == 0 {
		return nil
	}
	for _, q := range full {
		u, current, err := readUsage(ctx, s.db, q.Match)
		if err != nil {
			return dbErr(err)
		}
		if current && u.Bytes < q.MaxBytes {
			continue
		}
		if u, err = RecomputeQuotaUsage(ctx, s.db, q); err != nil {
			return err
		}
		if u.Bytes >= q.MaxBytes {
			return registry.ErrDenied.WithMessage("quota of %s is used up: %s stored of %s allowed; delete images under %s to make room",
				q.Match, policy.FormatSize(u.Bytes), policy.FormatSize(q.MaxBytes), q.Match).
				WithDetail(quotaDetail{Match: q.Match, Kind: "bytes", Used: u.Bytes, Limit: q.MaxBytes})
		}
	}
	return nil
}
