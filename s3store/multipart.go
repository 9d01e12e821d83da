// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Part is one uploaded part of a multipart upload. Size is not sent to S3;
// it is there so callers can keep the part list as their upload state.
type Part struct {
	Number int32
	ETag   string
	Size   int64
}

// CreateMultipart starts a multipart upload that will become the object at
// key, and returns its upload id.
func (s *Store) CreateMultipart(ctx context.Context, key string) (_ string, err error) {
	defer observe("CreateMultipartUpload", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.cfg.Bucket,
		Key:    &key,
	})
	if err != nil {
		return "", w.err("CreateMultipartUpload", key, err)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart stores body as part number (1..10000) of the upload and
// returns the part's ETag. Every part but the last must be at least 5 MiB;
// S3 checks that only at completion. Uploading the same number again
// replaces the part. A missing upload is [ErrNotFound].
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, number int32, body []byte) (_ string, err error) {
	defer observe("UploadPart", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        &s.cfg.Bucket,
		Key:           &key,
		UploadId:      &uploadID,
		PartNumber:    &number,
		Body:          watchSend(bytes.NewReader(body), w),
		ContentLength: aws.Int64(int64(len(body))),
	}, unsignedPayload)
	if err != nil {
		return "", w.err("UploadPart", key, err)
	}
	return aws.ToString(out.ETag), nil
}

// CompleteMultipart assembles the parts, in number order, into the object
// at key. S3 refuses to complete an upload with no parts, so an empty
// object must be written with [Store.PutObject] instead. A missing upload
// is [ErrNotFound].
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (err error) {
	if len(parts) == 0 {
		return fmt.Errorf("s3store: complete %q: no parts", key)
	}
	defer observe("CompleteMultipartUpload", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.SlowResponseTimeout)
	defer w.release()
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	slices.SortFunc(completed, func(a, b types.CompletedPart) int {
		return int(*a.PartNumber) - int(*b.PartNumber)
	})
	// The registry completes uploads at blob addresses, next to the
	// deletions of garbage collection (see retryDirRace); a completion
	// that failed leaves the upload as it was, to be completed again.
	err = retryDirRace(ctx, func() error {
		_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          &s.cfg.Bucket,
			Key:             &key,
			UploadId:        &uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
		})
		return err
	})
	return w.err("CompleteMultipartUpload", key, err)
}

// AbortMultipart discards the upload and its parts; an upload already gone
// (aborted or completed) is not an error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) (err error) {
	defer observe("AbortMultipartUpload", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	_, err = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   &s.cfg.Bucket,
		Key:      &key,
		UploadId: &uploadID,
	})
	if err = w.err("AbortMultipartUpload", key, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// UploadInfo is a multipart upload in progress.
type UploadInfo struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// ListUploads calls fn for every multipart upload in progress whose key
// starts with prefix. Garbage collection uses it to find uploads that no
// session owns any more; tests, to prove none is left behind.
func (s *Store) ListUploads(ctx context.Context, prefix string, fn func(UploadInfo) error) error {
	in := &s3.ListMultipartUploadsInput{Bucket: &s.cfg.Bucket, Prefix: &prefix}
	for {
		page, err := s.listUploadsPage(ctx, in)
		if err != nil {
			return err
		}
		for _, u := range page.Uploads {
			err := fn(UploadInfo{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
			if err != nil {
				return err
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		key, id := aws.ToString(page.NextKeyMarker), aws.ToString(page.NextUploadIdMarker)
		if key == aws.ToString(in.KeyMarker) && id == aws.ToString(in.UploadIdMarker) {
			return fmt.Errorf("s3store: list uploads %q: server sent a truncated page without new markers", prefix)
		}
		in.KeyMarker, in.UploadIdMarker = &key, &id
	}
}

func (s *Store) listUploadsPage(ctx context.Context, in *s3.ListMultipartUploadsInput) (_ *s3.ListMultipartUploadsOutput, err error) {
	defer observe("ListMultipartUploads", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	out, err := s.client.ListMultipartUploads(ctx, in)
	if err != nil {
		return nil, w.err("ListMultipartUploads", aws.ToString(in.Prefix), err)
	}
	return out, nil
}

// Copy copies the object at srcKey, of the given size, to dstKey inside
// the bucket without the bytes passing through the registry. Objects up to
// Config.CopyThreshold take one CopyObject; larger ones a multipart copy
// of parallel UploadPartCopy calls, since CopyObject stops at 5 GiB.
func (s *Store) Copy(ctx context.Context, srcKey, dstKey string, size int64) error {
	if size < 0 {
		return fmt.Errorf("s3store: copy %q: negative size %d", srcKey, size)
	}
	if size <= s.cfg.CopyThreshold {
		return retryDirRace(ctx, func() error { return s.copyObject(ctx, srcKey, dstKey) })
	}
	return s.copyMultipart(ctx, srcKey, dstKey, size)
}

// copySource is the x-amz-copy-source value for key, which S3 wants
// URL-encoded segment by segment.
func (s *Store) copySource(key string) *string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return aws.String(url.PathEscape(s.cfg.Bucket) + "/" + strings.Join(segs, "/"))
}

// copyObject copies with one CopyObject call.
func (s *Store) copyObject(ctx context.Context, srcKey, dstKey string) (err error) {
	defer observe("CopyObject", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.SlowResponseTimeout)
	defer w.release()
	_, err = s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:     &s.cfg.Bucket,
		Key:        &dstKey,
		CopySource: s.copySource(srcKey),
	})
	return w.err("CopyObject", srcKey, err)
}

// copyPartSize is the configured part size, grown for objects that would
// otherwise need more than S3's 10,000 parts.
func (s *Store) copyPartSize(size int64) int64 {
	part := s.cfg.CopyPartSize
	if minimum := (size + maxParts - 1) / maxParts; part < minimum {
		part = minimum
	}
	return part
}

// copyMultipart copies in parts of copyPartSize, CopyConcurrency at a time,
// and aborts the upload if any part fails so no parts are left behind.
func (s *Store) copyMultipart(ctx context.Context, srcKey, dstKey string, size int64) (err error) {
	partSize := s.copyPartSize(size)
	count := int((size + partSize - 1) / partSize)
	uploadID, err := s.CreateMultipart(ctx, dstKey)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// The caller's context may be what failed; the abort must
			// still happen.
			abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if abortErr := s.AbortMultipart(abortCtx, dstKey, uploadID); abortErr != nil {
				err = errors.Join(err, abortErr)
			}
		}
	}()
	parts := make([]Part, count)
	err = parallel(ctx, count, s.cfg.CopyConcurrency, func(ctx context.Context, i int) error {
		first := int64(i) * partSize
		last := min(first+partSize, size) - 1
		etag, err := s.uploadPartCopy(ctx, srcKey, dstKey, uploadID, int32(i+1), first, last)
		parts[i] = Part{Number: int32(i + 1), ETag: etag, Size: last - first + 1}
		return err
	})
	if err != nil {
		return err
	}
	return s.CompleteMultipart(ctx, dstKey, uploadID, parts)
}

// uploadPartCopy copies bytes first..last of srcKey as one part.
func (s *Store) uploadPartCopy(ctx context.Context, srcKey, dstKey, uploadID string, number int32, first, last int64) (_ string, err error) {
	defer observe("UploadPartCopy", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.SlowResponseTimeout)
	defer w.release()
	out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
		Bucket:          &s.cfg.Bucket,
		Key:             &dstKey,
		UploadId:        &uploadID,
		PartNumber:      &number,
		CopySource:      s.copySource(srcKey),
		CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
	})
	if err != nil {
		return "", w.err("UploadPartCopy", srcKey, err)
	}
	if out.CopyPartResult == nil {
		return "", fmt.Errorf("s3store: UploadPartCopy %q part %d: no result", srcKey, number)
	}
	return aws.ToString(out.CopyPartResult.ETag), nil
}

// parallel runs fn for 0..n-1 with at most limit calls at once. The first
// error cancels the context of the others and is returned.
func parallel(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, limit)
	)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
