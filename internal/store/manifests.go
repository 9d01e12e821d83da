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
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// GetManifest reads a manifest's bytes from the index: no S3 round trip.
func (s *Store) GetManifest(ctx context.Context, repo, tag string, d digest.Digest) (m registry.StoredManifest, err error) {
	err = s.readAgain(ctx, func() error {
		m, err = s.getManifest(ctx, repo, tag, d)
		return err
	})
	return m, err
}

func (s *Store) getManifest(ctx context.Context, repo, tag string, d digest.Digest) (registry.StoredManifest, error) {
	var m registry.StoredManifest
	var dg string
	var err error
	if d != "" {
		err = s.db.QueryRow(ctx, `SELECT m.digest, m.media_type, m.content FROM manifests m
			JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2`,
			repo, d.String()).Scan(&dg, &m.MediaType, &m.Content)
	} else {
		err = s.db.QueryRow(ctx, `SELECT m.digest, m.media_type, m.content FROM tags t
			JOIN repositories r ON r.id = t.repository_id
			JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
			WHERE r.name = $1 AND t.name = $2`, repo, tag).Scan(&dg, &m.MediaType, &m.Content)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return m, registry.ErrManifestUnknown
	}
	if err != nil {
		return m, dbErr(err)
	}
	m.Digest = digest.Digest(dg)
	if s.pulls != nil {
		s.pulls.record(repo, dg, time.Now())
	}
	return m, nil
}

// lockTags takes the tags' locks in a fixed order (so two pushes of the
// same tags cannot deadlock), making the bucket's tag link and the index's
// tag row change together.
func lockTags(ctx context.Context, tx pgx.Tx, repo string, tags []string) error {
	sorted := slices.Clone(tags)
	slices.Sort(sorted)
	for _, t := range slices.Compact(sorted) {
		if err := pglock.XactLock(ctx, tx, TagLockKey(repo, t), pglock.Exclusive); err != nil {
			return err
		}
	}
	return nil
}

// PutManifest validates, stores and tags a manifest. Its references are
// locked FOR SHARE while the manifest is written, so a concurrent deletion
// of a blob link it needs waits, then fails on the foreign key: a manifest
// that was accepted never lacks a blob.
func (s *Store) PutManifest(ctx context.Context, p registry.ManifestPut) (*registry.Manifest, error) {
	m, err := registry.ParseManifest(p.MediaType, p.Content)
	if err != nil {
		return nil, err
	}
	ix, err := IndexManifest(m)
	if err != nil {
		return nil, err
	}
	blobs, children := ix.Blobs, ix.Children
	d := p.Digest.String()
	var events []AuditEvent

	err = s.inTx(ctx, func(tx pgx.Tx) error {
		repoID, err := ensureRepository(ctx, tx, p.Repo)
		if err != nil {
			return err
		}
		if missing, err := missingRows(ctx, tx, `SELECT digest FROM repository_blobs
			WHERE repository_id = $1 AND digest = ANY($2) FOR SHARE`, repoID, blobs); err != nil {
			return err
		} else if missing != "" {
			return registry.ErrManifestBlobUnknown.WithMessage("blob %s is not in repository %s; push it first", missing, p.Repo).
				WithDetail(map[string]string{"digest": missing})
		}
		if missing, err := missingRows(ctx, tx, `SELECT digest FROM manifests
			WHERE repository_id = $1 AND digest = ANY($2) FOR SHARE`, repoID, children); err != nil {
			return err
		} else if missing != "" {
			return registry.ErrManifestBlobUnknown.WithMessage("manifest %s is not in repository %s; push it first", missing, p.Repo).
				WithDetail(map[string]string{"digest": missing})
		}
		if err := lockTags(ctx, tx, p.Repo, p.Tags); err != nil {
			return err
		}
		if err := lockDigest(ctx, tx, p.Digest); err != nil {
			return err
		}
		if err := s.checkManifestQuotas(ctx, tx, p.Repo, manifestPush{
			repoID: repoID, digest: d, size: int64(len(p.Content)), blobs: blobs, tags: p.Tags,
		}); err != nil {
			return err
		}

		// The bucket first, then the index.
		var blobExists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1)`, d).Scan(&blobExists); err != nil {
			return err
		}
		if err := s.writeManifestLinks(ctx, p, blobExists); err != nil {
			return err
		}

		// Then the index.
		if _, err := tx.Exec(ctx, `INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT DO NOTHING`, d, len(p.Content)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO manifests (repository_id, digest, media_type, artifact_type, content, subject, annotations)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			repoID, d, ix.MediaType, ix.ArtifactType, p.Content, ix.Subject, ix.Annotations); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO manifest_blobs (repository_id, manifest_digest, blob_digest)
			SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`, repoID, d, blobs); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO manifest_children (repository_id, parent_digest, child_digest)
			SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`, repoID, d, children); err != nil {
			return err
		}
		moved, err := tagDigests(ctx, tx, repoID, p.Tags)
		if err != nil {
			return err
		}
		for _, t := range p.Tags {
			if _, err := tx.Exec(ctx, `INSERT INTO tags (repository_id, name, manifest_digest) VALUES ($1, $2, $3)
				ON CONFLICT (repository_id, name) DO UPDATE SET manifest_digest = EXCLUDED.manifest_digest, updated_at = now()`,
				repoID, t, d); err != nil {
				return err
			}
		}
		events, err = s.record(ctx, tx, pushChanges(p, ix.MediaType, moved))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.logAudit(events)
	return m, nil
}

// tagDigests returns where tags point now, by name, before a push moves
// them.
func tagDigests(ctx context.Context, tx pgx.Tx, repoID int64, tags []string) (map[string]string, error) {
	rows, err := tx.Query(ctx, `SELECT name, manifest_digest FROM tags WHERE repository_id = $1 AND name = ANY($2)`, repoID, tags)
	if err != nil {
		return nil, err
	}
	was := map[string]string{}
	defer rows.Close()
	for rows.Next() {
		var n, dg string
		if err := rows.Scan(&n, &dg); err != nil {
			return nil, err
		}
		was[n] = dg
	}
	return was, rows.Err()
}

// pushChanges are the audit entries of a push: one per tag (one untagged
// when it has none), and a move for each tag that pointed elsewhere.
func pushChanges(p registry.ManifestPut, mediaType string, was map[string]string) []change {
	d := p.Digest.String()
	entry := func(action, tag, detail, event string) change {
		return change{AuditEvent: AuditEvent{Action: action, Repository: p.Repo, Digest: d, Tag: tag, Detail: detail},
			event: event, mediaType: mediaType}
	}
	if len(p.Tags) == 0 {
		return []change{entry(AuditPush, "", "", policy.EventPush)}
	}
	var cs []change
	for _, t := range slices.Compact(slices.Sorted(slices.Values(p.Tags))) {
		cs = append(cs, entry(AuditPush, t, "", policy.EventPush))
		if old, ok := was[t]; ok && old != d {
			cs = append(cs, entry(AuditTagMove, t, "from "+old, ""))
		}
	}
	return cs
}

// missingRows returns the first of want that query (given repoID and want)
// does not return, or "".
func missingRows(ctx context.Context, tx pgx.Tx, query string, repoID int64, want []string) (string, error) {
	if len(want) == 0 {
		return "", nil
	}
	rows, err := tx.Query(ctx, query, repoID, want)
	if err != nil {
		return "", err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	for _, w := range want {
		if !slices.Contains(found, w) {
			return w, nil
		}
	}
	return "", nil
}

// DeleteManifest removes a manifest and its tags, index rows first.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	var events []AuditEvent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		repoID, ok, err := repositoryID(ctx, tx, repo)
		if err != nil {
			return err
		}
		if !ok {
			return registry.ErrManifestUnknown
		}
		rows, err := tx.Query(ctx, `SELECT name FROM tags WHERE repository_id = $1 AND manifest_digest = $2`, repoID, d.String())
		if err != nil {
			return err
		}
		tags, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if err := lockTags(ctx, tx, repo, tags); err != nil {
			return err
		}
		// Its revision link goes: garbage collection's adoption re-reads
		// links under this lock before it indexes them.
		if err := lockDigest(ctx, tx, d); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM manifests WHERE repository_id = $1 AND digest = $2`, repoID, d.String())
		if isFKViolation(err) {
			return registry.ErrDenied.WithMessage("manifest %s is listed by an index in %s; delete the index first", d, repo)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return registry.ErrManifestUnknown
		}
		for _, t := range tags {
			if err := s.s3.DeletePrefix(ctx, s.layout.TagPrefix(repo, t)); err != nil {
				return err
			}
		}
		if err := s.s3.Delete(ctx, s.layout.RevisionLink(repo, d)); err != nil {
			return err
		}
		events, err = s.record(ctx, tx, []change{{AuditEvent: AuditEvent{Action: AuditManifestDelete, Repository: repo,
			Digest: d.String(), Detail: tagsDetail(tags)}, event: policy.EventDelete}})
		return err
	})
	if err == nil {
		s.logAudit(events)
	}
	return err
}

// tagsDetail names the tags a deletion took with it.
func tagsDetail(tags []string) string {
	if len(tags) == 0 {
		return ""
	}
	return "tags " + strings.Join(tags, ",")
}

// DeleteTag removes one tag; its manifest stays.
func (s *Store) DeleteTag(ctx context.Context, repo, tagName string) error {
	var events []AuditEvent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockTags(ctx, tx, repo, []string{tagName}); err != nil {
			return err
		}
		var was string
		err := tx.QueryRow(ctx, `DELETE FROM tags t USING repositories r
			WHERE r.id = t.repository_id AND r.name = $1 AND t.name = $2 RETURNING t.manifest_digest`, repo, tagName).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return registry.ErrManifestUnknown.WithMessage("tag %q unknown", tagName)
		}
		if err != nil {
			return err
		}
		if err := s.s3.DeletePrefix(ctx, s.layout.TagPrefix(repo, tagName)); err != nil {
			return err
		}
		events, err = s.record(ctx, tx, []change{tagDeleteChange(repo, tagName, was)})
		return err
	})
	if err == nil {
		s.logAudit(events)
	}
	return err
}

func tagDeleteChange(repo, tag, digest string) change {
	return change{AuditEvent: AuditEvent{Action: AuditTagDelete, Repository: repo, Digest: digest, Tag: tag}, event: policy.EventDelete}
}

// writeManifestLinks stores a pushed manifest in the bucket: its bytes as
// a blob (unless the bucket has them), its revision link and its tags'
// history entries at once, then the tags' current links at once. A tag
// moves only once the manifest it will name is stored, so whatever a
// failed push leaves behind, the bucket never names a manifest it lacks
// under a tag (rebuild-db would drop such a tag). Two round trips to S3
// for a tagged push, one for a push by digest.
func (s *Store) writeManifestLinks(ctx context.Context, p registry.ManifestPut, blobExists bool) error {
	link := []byte(p.Digest)
	put := func(key string, b []byte) func(context.Context) error {
		return func(ctx context.Context) error { return s.s3.PutBytes(ctx, key, b) }
	}
	first := []func(context.Context) error{put(s.layout.RevisionLink(p.Repo, p.Digest), link)}
	if !blobExists {
		first = append(first, put(s.layout.BlobData(p.Digest), p.Content))
	}
	var then []func(context.Context) error
	for _, t := range p.Tags {
		first = append(first, put(s.layout.TagIndexLink(p.Repo, t, p.Digest), link))
		then = append(then, put(s.layout.TagCurrentLink(p.Repo, t), link))
	}
	if err := together(ctx, first...); err != nil {
		return err
	}
	if len(then) == 0 {
		return nil
	}
	return together(ctx, then...)
}
