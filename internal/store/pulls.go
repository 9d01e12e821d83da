// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"sync"
	"time"
)

// maxPendingPulls bounds the pulls kept in memory between flushes. Past
// it (a database down for long), new manifests' pulls are not recorded
// until a flush succeeds: statistics, not data, and retention keeps a tag
// whose pulls were never recorded.
const maxPendingPulls = 100_000

// pullLog collects manifest pulls in memory, so that a pull costs a map
// write, and one statement per flush records them all.
type pullLog struct {
	mu      sync.Mutex
	pending map[pullKey]time.Time
}

type pullKey struct{ repo, digest string }

func newPullLog() *pullLog { return &pullLog{pending: map[pullKey]time.Time{}} }

func (l *pullLog) record(repo, digest string, at time.Time) {
	k := pullKey{repo, digest}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.pending[k]; ok || len(l.pending) < maxPendingPulls {
		l.pending[k] = at
	}
}

// take empties the log.
func (l *pullLog) take() map[pullKey]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending
	l.pending = map[pullKey]time.Time{}
	return p
}

// putBack returns pulls a flush could not write, keeping the later time
// of any pull recorded since.
func (l *pullLog) putBack(p map[pullKey]time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, at := range p {
		if cur, ok := l.pending[k]; ok && cur.After(at) {
			continue
		}
		if _, ok := l.pending[k]; ok || len(l.pending) < maxPendingPulls {
			l.pending[k] = at
		}
	}
}

// FlushPulls writes the pulls recorded since the last flush. Pulls of
// manifests deleted meanwhile are dropped; on failure the pulls are kept
// for the next flush.
func (s *Store) FlushPulls(ctx context.Context) error {
	if s.pulls == nil {
		return nil
	}
	p := s.pulls.take()
	if len(p) == 0 {
		return nil
	}
	repos := make([]string, 0, len(p))
	digests := make([]string, 0, len(p))
	times := make([]time.Time, 0, len(p))
	for k, at := range p {
		repos = append(repos, k.repo)
		digests = append(digests, k.digest)
		times = append(times, at)
	}
	// The join drops manifests already gone; one deleted between the join
	// and the insert fails the statement on the foreign key, and the retry
	// no longer finds it.
	var err error
	for range 2 {
		_, err = s.db.Exec(ctx, `INSERT INTO manifest_pulls (repository_id, digest, last_pulled_at)
			SELECT m.repository_id, m.digest, max(x.at)
			FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x (repo, digest, at)
			JOIN repositories r ON r.name = x.repo
			JOIN manifests m ON m.repository_id = r.id AND m.digest = x.digest
			GROUP BY m.repository_id, m.digest
			ORDER BY m.repository_id, m.digest
			ON CONFLICT (repository_id, digest)
			DO UPDATE SET last_pulled_at = greatest(manifest_pulls.last_pulled_at, EXCLUDED.last_pulled_at)`,
			repos, digests, times)
		if err == nil || !isFKViolation(err) {
			break
		}
	}
	if err != nil {
		s.pulls.putBack(p)
		return dbErr(err)
	}
	return nil
}
