// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// ManifestIndex is what the index stores of a manifest besides its bytes:
// the column values of its manifests row and the digests of its
// manifest_blobs and manifest_children rows. A push and registry
// rebuild-db both derive it with [IndexManifest], so a rebuilt index holds
// exactly the rows pushes write.
type ManifestIndex struct {
	MediaType    string
	ArtifactType string
	// Subject is the subject's digest, or nil.
	Subject *string
	// Annotations is the annotations as JSON, or nil when there are none.
	Annotations []byte
	// Blobs are the config and layer digests, each once, in manifest order.
	Blobs []string
	// Children are the digests an index lists, each once, in order.
	Children []string
}

// IndexManifest derives the index rows of a parsed manifest.
func IndexManifest(m *registry.Manifest) (ManifestIndex, error) {
	ix := ManifestIndex{
		MediaType:    m.MediaType,
		ArtifactType: m.ArtifactType,
		Blobs:        uniqueDigests(m.Blobs),
		Children:     uniqueDigests(m.Children),
	}
	if m.Subject != nil {
		sd := m.Subject.Digest.String()
		ix.Subject = &sd
	}
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return ManifestIndex{}, err
		}
		ix.Annotations = b
	}
	return ix, nil
}

// LockTags takes, until tx ends, the locks a push holds while it moves the
// tags of repo, so that another writer of the index (rebuild-db) can read
// a tag link and change its row without a push slipping in between.
func LockTags(ctx context.Context, tx pgx.Tx, repo string, tags []string) error {
	return lockTags(ctx, tx, repo, tags)
}

// LockDigest takes, until tx ends, the lock every creation and removal of
// d's objects holds, for the same reason as [LockTags].
func LockDigest(ctx context.Context, tx pgx.Tx, d digest.Digest) error {
	return lockDigest(ctx, tx, d)
}
