// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// PutLink writes a link object: the digest as text, no newline, exactly as
// distribution writes it.
func (s *Store) PutLink(ctx context.Context, key string, d digest.Digest) error {
	return s.PutBytes(ctx, key, []byte(d.String()))
}

// GetLink reads a link object back. It returns [ErrNotFound] for a missing
// link and an error for content that is not a valid digest.
func (s *Store) GetLink(ctx context.Context, key string) (digest.Digest, error) {
	b, err := s.GetBytes(ctx, key)
	if err != nil {
		return "", err
	}
	// distribution never writes surrounding space, but hand-made buckets
	// might; a digest cannot contain any.
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("s3store: link %q: %w", key, err)
	}
	return d, nil
}
