// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// PresignGet returns a URL that lets anyone holding it GET the object at
// key until expiry has passed, so that a blob pull can be redirected to S3.
// The URL is signed for Config.PublicEndpoint when set. It does not check
// that the object exists.
func (s *Store) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: &s.cfg.Bucket,
		Key:    &key,
	}, s3.WithPresignExpires(expiry))
	if err != nil {
		return "", fmt.Errorf("s3store: presign %q: %w", key, err)
	}
	return req.URL, nil
}
