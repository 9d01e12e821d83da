// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// Defaults of serve's caps on upload sessions (see [Config]).
const (
	DefaultMaxUploadsPerRepository = 1000
	DefaultMaxUploadsPerClient     = 100
	DefaultMaxStagedBytes          = 1 << 30
)

// stagedLockKey serializes, cluster-wide, the appends that grow the bytes
// staged in PostgreSQL, so that together they cannot pass the ceiling.
var stagedLockKey = pglock.Key(pglock.NamespaceUploads, "staged")

// sessionLockKey serializes the opening of sessions counted together:
// kind is "repository" or "client".
func sessionLockKey(kind, name string) int64 {
	return pglock.Key(pglock.NamespaceUploads, kind+":"+name)
}

// clientOf names the caller in ctx as the per-client cap counts it: a
// user's or robot's name, or "@" and the address of an anonymous caller
// (so that no name can share an address's count). "" when ctx carries no
// caller, which no cap counts.
func clientOf(ctx context.Context) string {
	c, _ := auth.CallerFrom(ctx)
	switch {
	case c.Name != "":
		return shortClient(c.Name)
	case c.Address != "":
		return "@" + c.Address
	}
	return ""
}

// maxClientLen bounds what the client column's index holds: a name from
// an external token service may be longer than an index entry can be.
const maxClientLen = 256

// shortClient is name, or when it is longer than maxClientLen its start
// and a hash of the whole, which still tells names apart.
func shortClient(name string) string {
	if len(name) <= maxClientLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.ToValidUTF8(name[:128], "") + "…" + hex.EncodeToString(sum[:])
}

// describeClient is the client as a refusal names it.
func describeClient(client string) string {
	if client[0] == '@' {
		return "the anonymous client at " + client[1:]
	}
	return client
}

// checkSessionCaps refuses to open one more session in repo for client
// when the repository or the client already has as many open as its cap
// allows. It runs in the opening transaction before the insert and holds
// the caps' advisory locks until that commits, so sessions opened at
// once through any replicas are counted one after the other and together
// cannot pass a cap. Locks are taken repository first, client second,
// always, so that two openings never wait on each other in a cycle.
func (s *Store) checkSessionCaps(ctx context.Context, tx pgx.Tx, repo string, repoID int64, client string) error {
	if limit := s.cfg.MaxUploadsPerRepository; limit > 0 {
		if err := pglock.XactLock(ctx, tx, sessionLockKey("repository", repo), pglock.Exclusive); err != nil {
			return err
		}
		var open int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM uploads WHERE repository_id = $1`, repoID).Scan(&open); err != nil {
			return err
		}
		if open >= limit {
			return registry.ErrTooManyRequests.WithMessage(
				"repository %s has %d upload sessions open, the cap of open upload sessions per repository; finish or cancel one (DELETE its location) or wait until idle ones expire",
				repo, open)
		}
	}
	if limit := s.cfg.MaxUploadsPerClient; limit > 0 && client != "" {
		if err := pglock.XactLock(ctx, tx, sessionLockKey("client", client), pglock.Exclusive); err != nil {
			return err
		}
		var open int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM uploads WHERE client = $1`, client).Scan(&open); err != nil {
			return err
		}
		if open >= limit {
			return registry.ErrTooManyRequests.WithMessage(
				"%s has %d upload sessions open, the cap of open upload sessions per client; finish or cancel one (DELETE its location) or wait until idle ones expire",
				describeClient(client), open)
		}
	}
	return nil
}

// checkStaged refuses an append that would make the bytes staged in
// PostgreSQL, over all sessions, pass [Config.MaxStagedBytes]. before and
// after are the session's staged bytes as the request found and leaves
// them; an append that does not grow them always passes. The ceiling's
// advisory lock is held until the append commits, so appends through any
// replicas are counted one after the other.
//
// Refusing (429) is the only sound answer: staged bytes are those below
// one S3 part, which S3 takes only as an upload's last part, so they
// cannot be flushed to the bucket before the upload ends.
func (s *Store) checkStaged(ctx context.Context, tx pgx.Tx, id string, before, after int) error {
	limit := s.cfg.MaxStagedBytes
	if limit <= 0 || after <= before {
		return nil
	}
	if err := pglock.XactLock(ctx, tx, stagedLockKey, pglock.Exclusive); err != nil {
		return err
	}
	var others int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(octet_length(staged)), 0)::bigint FROM uploads WHERE id <> $1`, id).Scan(&others); err != nil {
		return err
	}
	if others+int64(after) > limit {
		return registry.ErrTooManyRequests.WithMessage(
			"upload sessions keep %s below one part in the registry's database, and after this chunk this session would keep %s; the most allowed is %s in all: retry later, or send chunks in multiples of %s",
			policy.FormatSize(others), policy.FormatSize(int64(after)), policy.FormatSize(limit), policy.FormatSize(int64(s.partSize)))
	}
	return nil
}

// checkCommitQuota refuses to finish an upload as blob d of size bytes
// when the blob would take a byte quota of repo past its limit: its size
// added to the stored usage, unless a manifest under the quota's match
// already is or references d (then it adds nothing). A blob is counted in
// the usage only once a manifest referencing it is pushed, and that push
// is the exact check, under the quota's lock; this one takes no lock and
// changes no figure, so that a blob's commit never waits on pushes. It
// refuses what no manifest could then store: a session opened before the
// namespace filled up cannot store a blob the quota has no room for. A
// stored figure that would refuse is recomputed first.
func (s *Store) checkCommitQuota(ctx context.Context, tx pgx.Tx, repo string, d digest.Digest, size int64) error {
	for _, q := range s.quotasFor(repo) {
		if q.MaxBytes < 0 {
			continue
		}
		adds, err := addedBytes(ctx, tx, q.Match, d.String(), size, nil)
		if err != nil {
			return err
		}
		if adds == 0 {
			continue
		}
		u, current, err := readUsage(ctx, tx, q.Match)
		if err != nil {
			return err
		}
		if current && overQuota(q, u, adds, 0) == nil {
			continue
		}
		if u, err = RecomputeQuotaUsage(ctx, s.db, q); err != nil {
			return err
		}
		if err := overQuota(q, u, adds, 0); err != nil {
			return err
		}
	}
	return nil
}
