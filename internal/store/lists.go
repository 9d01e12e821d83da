// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/registry"
)

// DefaultPageSize is the page size of tag and catalog listings when the
// client names none.
const DefaultPageSize = 1000

// Tags lists repo's tags in byte order (COLLATE "C"), which is the
// spec's lexical order whatever the database's locale. A repository that
// holds no manifest (only an upload or blobs) is unknown, as it is to
// [Store.Catalog].
func (s *Store) Tags(ctx context.Context, repo, last string, n int) (tags []string, more bool, err error) {
	err = s.readAgain(ctx, func() error {
		tags, more, err = s.tags(ctx, repo, last, n)
		return err
	})
	return tags, more, err
}

func (s *Store) tags(ctx context.Context, repo, last string, n int) ([]string, bool, error) {
	repoID, ok, err := pushedRepositoryID(ctx, s.db, repo)
	if err != nil {
		return nil, false, dbErr(err)
	}
	if !ok {
		return nil, false, registry.ErrNameUnknown
	}
	return page(ctx, s.db, n, `SELECT name FROM tags WHERE repository_id = $1 AND name COLLATE "C" > $2
		ORDER BY name COLLATE "C" LIMIT $3`, repoID, last)
}

// Catalog lists, in byte order, the names of repositories holding a
// manifest. A repository row is also made by opening an upload or pushing
// a blob; such a name is not listed until something is pushed to it.
func (s *Store) Catalog(ctx context.Context, last string, n int) (names []string, more bool, err error) {
	err = s.readAgain(ctx, func() error {
		names, more, err = s.catalog(ctx, last, n)
		return err
	})
	return names, more, err
}

func (s *Store) catalog(ctx context.Context, last string, n int) ([]string, bool, error) {
	return page(ctx, s.db, n, `SELECT r.name FROM repositories r
		WHERE r.name COLLATE "C" > $1 AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
		ORDER BY r.name COLLATE "C" LIMIT $2`, last)
}

// pushedRepositoryID is the id of repo if it holds a manifest.
func pushedRepositoryID(ctx context.Context, q querier, repo string) (int64, bool, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT r.id FROM repositories r
		WHERE r.name = $1 AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)`, repo).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// page runs a listing query whose last argument is the limit, asking one
// row more than n to learn whether another page follows.
func page(ctx context.Context, q querier, n int, query string, args ...any) ([]string, bool, error) {
	if n <= 0 {
		n = DefaultPageSize
	}
	rows, err := q.Query(ctx, query, append(args, n+1)...)
	if err != nil {
		return nil, false, dbErr(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, dbErr(err)
	}
	if len(names) > n {
		return names[:n], true, nil
	}
	return names, false, nil
}

// Referrers lists the manifests of repo whose subject is d, from the
// subject index.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) (refs []ocispec.Descriptor, err error) {
	err = s.readAgain(ctx, func() error {
		refs, err = s.referrers(ctx, repo, d, artifactType)
		return err
	})
	return refs, err
}

func (s *Store) referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	rows, err := s.db.Query(ctx, `SELECT m.digest, m.media_type, m.artifact_type, length(m.content), m.annotations
		FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE r.name = $1 AND m.subject = $2 AND ($3 = '' OR m.artifact_type = $3)
		ORDER BY m.digest`, repo, d.String(), artifactType)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	out := []ocispec.Descriptor{}
	for rows.Next() {
		var desc ocispec.Descriptor
		var dg string
		var annotations []byte
		if err := rows.Scan(&dg, &desc.MediaType, &desc.ArtifactType, &desc.Size, &annotations); err != nil {
			return nil, err
		}
		desc.Digest = digest.Digest(dg)
		if annotations != nil {
			if err := json.Unmarshal(annotations, &desc.Annotations); err != nil {
				return nil, err
			}
		}
		out = append(out, desc)
	}
	return out, dbErr(rows.Err())
}

// uniqueDigests returns the descriptors' digests, each once, in order.
func uniqueDigests(ds []ocispec.Descriptor) []string {
	seen := make(map[digest.Digest]bool, len(ds))
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d.Digest.String())
		}
	}
	return out
}
