// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/s3store"
)

// StatBlob answers from the index alone: a HEAD costs no S3 round trip.
func (s *Store) StatBlob(ctx context.Context, repo string, d digest.Digest) (info registry.BlobInfo, err error) {
	err = s.readAgain(ctx, func() error {
		info, err = s.statBlob(ctx, repo, d)
		return err
	})
	return info, err
}

func (s *Store) statBlob(ctx context.Context, repo string, d digest.Digest) (registry.BlobInfo, error) {
	var size int64
	err := s.db.QueryRow(ctx, `SELECT b.size FROM repository_blobs rb
		JOIN repositories r ON r.id = rb.repository_id JOIN blobs b ON b.digest = rb.digest
		WHERE r.name = $1 AND rb.digest = $2`, repo, d.String()).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return registry.BlobInfo{}, registry.ErrBlobUnknown
	}
	if err != nil {
		return registry.BlobInfo{}, dbErr(err)
	}
	return registry.BlobInfo{Digest: d, Size: size}, nil
}

// OpenBlob streams the blob's bytes from S3.
func (s *Store) OpenBlob(ctx context.Context, repo string, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	if _, err := s.StatBlob(ctx, repo, d); err != nil {
		return nil, err
	}
	rc, err := s.s3.GetObject(ctx, s.layout.BlobData(d), offset, length)
	if errors.Is(err, s3store.ErrNotFound) {
		// The index names a blob the bucket lacks: drift that rebuild-db
		// --verify reports. The client sees an unknown blob.
		return nil, fmt.Errorf("%w: index names %s but the bucket has no object", registry.ErrBlobUnknown, d)
	}
	return rc, err
}

// BlobURL presigns a GET of d's object when Config.Redirect is on. The
// handler has already checked with StatBlob that repo holds d.
func (s *Store) BlobURL(ctx context.Context, repo string, d digest.Digest) (string, bool, error) {
	if !s.cfg.Redirect {
		return "", false, nil
	}
	u, err := s.s3.PresignGet(ctx, s.layout.BlobData(d), RedirectExpiry)
	if err != nil {
		return "", false, err
	}
	return u, true, nil
}

// DeleteBlob removes repo's link to d. The foreign key from manifest
// references refuses while a manifest of repo still needs the blob.
func (s *Store) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	var events []AuditEvent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The digest lock keeps a concurrent commit or mount of d into repo
		// from writing its link between our row delete and object delete.
		if err := lockDigest(ctx, tx, d); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM repository_blobs rb USING repositories r
			WHERE r.id = rb.repository_id AND r.name = $1 AND rb.digest = $2`, repo, d.String())
		if isFKViolation(err) {
			return registry.ErrDenied.WithMessage("blob %s is referenced by a manifest of %s; delete the manifest first", d, repo)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return registry.ErrBlobUnknown
		}
		if err := s.s3.Delete(ctx, s.layout.LayerLink(repo, d)); err != nil {
			return err
		}
		events, err = s.record(ctx, tx, []change{{AuditEvent: AuditEvent{Action: AuditBlobDelete, Repository: repo, Digest: d.String()}}})
		return err
	})
	if err == nil {
		s.logAudit(events)
	}
	return err
}
