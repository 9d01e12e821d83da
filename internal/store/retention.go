// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/policy"
)

var _ policy.RetentionIndex = (*Store)(nil)

// RepositoryNames lists every repository, in name order.
func (s *Store) RepositoryNames(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT name FROM repositories ORDER BY name`)
	if err != nil {
		return nil, dbErr(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, dbErr(err)
}

// RepositoryState reads a repository's tags, with the last recorded pull
// of their manifests, and its manifests, from one snapshot.
func (s *Store) RepositoryState(ctx context.Context, repo string) (policy.RepositoryState, error) {
	st := policy.RepositoryState{Name: repo}
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		id, ok, err := repositoryID(ctx, tx, repo)
		if err != nil || !ok {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT t.name, t.manifest_digest, t.updated_at, p.last_pulled_at
			FROM tags t LEFT JOIN manifest_pulls p ON p.repository_id = t.repository_id AND p.digest = t.manifest_digest
			WHERE t.repository_id = $1 ORDER BY t.name`, id)
		if err != nil {
			return err
		}
		st.Tags, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.TagState, error) {
			var t policy.TagState
			var pulled *time.Time
			err := r.Scan(&t.Name, &t.Digest, &t.PushedAt, &pulled)
			if pulled != nil {
				t.LastPulled = *pulled
			}
			return t, err
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT m.digest, m.created_at, coalesce(m.subject, ''),
				coalesce(array_agg(c.child_digest ORDER BY c.child_digest) FILTER (WHERE c.child_digest IS NOT NULL), '{}')
			FROM manifests m LEFT JOIN manifest_children c ON c.repository_id = m.repository_id AND c.parent_digest = m.digest
			WHERE m.repository_id = $1 GROUP BY m.digest, m.created_at, m.subject ORDER BY m.digest`, id)
		if err != nil {
			return err
		}
		st.Manifests, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.ManifestState, error) {
			var m policy.ManifestState
			err := r.Scan(&m.Digest, &m.CreatedAt, &m.Subject, &m.Children)
			return m, err
		})
		return err
	})
	return st, dbErr(err)
}

// RemoveTag removes a tag from the bucket and the index if it still
// points at digest and was last pushed at pushedAt.
func (s *Store) RemoveTag(ctx context.Context, repo, tagName, manifest string, pushedAt time.Time) (bool, error) {
	removed := false
	var events []AuditEvent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockTags(ctx, tx, repo, []string{tagName}); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tags t USING repositories r
			WHERE r.id = t.repository_id AND r.name = $1 AND t.name = $2 AND t.manifest_digest = $3 AND t.updated_at = $4`,
			repo, tagName, manifest, pushedAt)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if err := s.s3.DeletePrefix(ctx, s.layout.TagPrefix(repo, tagName)); err != nil {
			return err
		}
		removed = true
		events, err = s.record(ctx, tx, []change{tagDeleteChange(repo, tagName, manifest)})
		return err
	})
	if err != nil {
		return false, err
	}
	s.logAudit(events)
	return removed, nil
}

// errKept rolls back a removal that found the manifest needed after all.
var errKept = errors.New("manifest still needed")

// RemoveUntaggedManifest removes a manifest, from the index and the
// bucket, if no tag points at it or at its subject and no index lists it.
// The digest locks order it with a push tagging either.
func (s *Store) RemoveUntaggedManifest(ctx context.Context, repo, manifest string) (bool, error) {
	d, err := digest.Parse(manifest)
	if err != nil {
		return false, err
	}
	var events []AuditEvent
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		id, ok, err := repositoryID(ctx, tx, repo)
		if err != nil || !ok {
			if err == nil {
				err = errKept
			}
			return err
		}
		var subject *string
		err = tx.QueryRow(ctx, `SELECT subject FROM manifests WHERE repository_id = $1 AND digest = $2`, id, manifest).Scan(&subject)
		if errors.Is(err, pgx.ErrNoRows) {
			return errKept
		}
		if err != nil {
			return err
		}
		if err := lockDigest(ctx, tx, d); err != nil {
			return err
		}
		both := []string{manifest}
		if subject != nil {
			if sd, err := digest.Parse(*subject); err == nil && sd != d {
				if err := lockDigest(ctx, tx, sd); err != nil {
					return err
				}
				both = append(both, *subject)
			}
		}
		var needed bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tags WHERE repository_id = $1 AND manifest_digest = ANY($2))
			OR EXISTS (SELECT 1 FROM manifest_children WHERE repository_id = $1 AND child_digest = $3)`,
			id, both, manifest).Scan(&needed); err != nil {
			return err
		}
		if needed {
			return errKept
		}
		tag, err := tx.Exec(ctx, `DELETE FROM manifests WHERE repository_id = $1 AND digest = $2`, id, manifest)
		if isFKViolation(err) {
			return errKept // an index listing it was pushed meanwhile
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errKept
		}
		if err := s.s3.Delete(ctx, s.layout.RevisionLink(repo, d)); err != nil {
			return err
		}
		events, err = s.record(ctx, tx, []change{{AuditEvent: AuditEvent{Action: AuditManifestDelete, Repository: repo, Digest: manifest},
			event: policy.EventDelete}})
		return err
	})
	if errors.Is(err, errKept) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.logAudit(events)
	return true, nil
}
