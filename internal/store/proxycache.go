// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/registry"
)

// ProxyTag is where upstream pointed a tag when last asked.
type ProxyTag struct {
	Digest    digest.Digest
	CheckedAt time.Time
}

// ProxyTagOf returns the cached upstream answer for repo's tag.
func (s *Store) ProxyTagOf(ctx context.Context, repo, tag string) (ProxyTag, bool, error) {
	var t ProxyTag
	var d string
	err := s.db.QueryRow(ctx, `SELECT digest, checked_at FROM proxy_tags WHERE repository = $1 AND tag = $2`, repo, tag).Scan(&d, &t.CheckedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	t.Digest = digest.Digest(d)
	return t, err == nil, dbErr(err)
}

// SetProxyTag records that upstream points repo's tag at d, now.
func (s *Store) SetProxyTag(ctx context.Context, repo, tag string, d digest.Digest) error {
	_, err := s.db.Exec(ctx, `INSERT INTO proxy_tags (repository, tag, digest, checked_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (repository, tag) DO UPDATE SET digest = EXCLUDED.digest, checked_at = EXCLUDED.checked_at`, repo, tag, d.String())
	return dbErr(err)
}

// ProxyManifest returns a manifest cached for repo that is not yet an
// ordinary manifest.
func (s *Store) ProxyManifest(ctx context.Context, repo string, d digest.Digest) (registry.StoredManifest, bool, error) {
	m := registry.StoredManifest{Digest: d}
	err := s.db.QueryRow(ctx, `SELECT media_type, content FROM proxy_manifests WHERE repository = $1 AND digest = $2`,
		repo, d.String()).Scan(&m.MediaType, &m.Content)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, false, nil
	}
	return m, err == nil, dbErr(err)
}

// SaveProxyManifest caches a manifest pulled for repo.
func (s *Store) SaveProxyManifest(ctx context.Context, repo string, m registry.StoredManifest) error {
	_, err := s.db.Exec(ctx, `INSERT INTO proxy_manifests (repository, digest, media_type, content) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, repo, m.Digest.String(), m.MediaType, m.Content)
	return dbErr(err)
}

// PendingProxyManifests lists the manifests cached for repo that are not
// ordinary manifests yet.
func (s *Store) PendingProxyManifests(ctx context.Context, repo string) ([]registry.StoredManifest, error) {
	rows, err := s.db.Query(ctx, `SELECT digest, media_type, content FROM proxy_manifests WHERE repository = $1 ORDER BY fetched_at`, repo)
	if err != nil {
		return nil, dbErr(err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (registry.StoredManifest, error) {
		var m registry.StoredManifest
		var d string
		err := r.Scan(&d, &m.MediaType, &m.Content)
		m.Digest = digest.Digest(d)
		return m, err
	})
	return ms, dbErr(err)
}

// DropProxyManifest removes a cached manifest once it is an ordinary one.
func (s *Store) DropProxyManifest(ctx context.Context, repo string, d digest.Digest) error {
	_, err := s.db.Exec(ctx, `DELETE FROM proxy_manifests WHERE repository = $1 AND digest = $2`, repo, d.String())
	return dbErr(err)
}

// ProxyTagsAt lists repo's cached tags that point at d.
func (s *Store) ProxyTagsAt(ctx context.Context, repo string, d digest.Digest) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT tag FROM proxy_tags WHERE repository = $1 AND digest = $2 ORDER BY tag`, repo, d.String())
	if err != nil {
		return nil, dbErr(err)
	}
	tags, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return tags, dbErr(err)
}

// AddProxyStats adds hits and misses to a remote's counters.
func (s *Store) AddProxyStats(ctx context.Context, remote string, hits, misses int64) error {
	_, err := s.db.Exec(ctx, `INSERT INTO proxy_stats (remote, hits, misses) VALUES ($1, $2, $3)
		ON CONFLICT (remote) DO UPDATE SET hits = proxy_stats.hits + EXCLUDED.hits, misses = proxy_stats.misses + EXCLUDED.misses`,
		remote, hits, misses)
	return dbErr(err)
}

// ProxyStats returns a remote's counters.
func (s *Store) ProxyStats(ctx context.Context, remote string) (hits, misses int64, err error) {
	err = s.db.QueryRow(ctx, `SELECT hits, misses FROM proxy_stats WHERE remote = $1`, remote).Scan(&hits, &misses)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil
	}
	return hits, misses, dbErr(err)
}

// ProxyFetchLock takes, waiting at most wait, the cluster-wide lock on
// fetching blob d from upstream, on a connection of the stream pool held
// until release is called. ok is false when another replica kept it
// longer than wait.
func (s *Store) ProxyFetchLock(ctx context.Context, d digest.Digest, wait time.Duration) (release func(), ok bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	lock, err := pglock.Acquire(wctx, s.streamDB, pglock.Key(pglock.NamespaceProxy, d.String()), pglock.Exclusive)
	if err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			return nil, false, nil
		}
		return nil, false, dbErr(err)
	}
	return func() { lock.Release(context.WithoutCancel(ctx)) }, true, nil
}

// ProxyCacheSize is the bytes a remote's cache holds under prefix: the
// unique blobs its repositories link, their ordinary manifests, and the
// manifests still waiting in the cache.
func (s *Store) ProxyCacheSize(ctx context.Context, prefix string) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, `WITH rs AS (SELECT id FROM repositories WHERE starts_with(name, $1)),
		d AS (SELECT digest FROM repository_blobs WHERE repository_id IN (SELECT id FROM rs)
			UNION SELECT digest FROM manifests WHERE repository_id IN (SELECT id FROM rs))
		SELECT (SELECT coalesce(sum(b.size), 0) FROM d JOIN blobs b ON b.digest = d.digest)
			+ (SELECT coalesce(sum(length(content)), 0) FROM proxy_manifests WHERE starts_with(repository, $1))`, prefix).Scan(&n)
	return n, dbErr(err)
}
