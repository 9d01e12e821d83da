// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// maxGetBytes bounds [Store.GetBytes]: links are tens of bytes and
// manifests a few MiB; anything larger is a blob and must be streamed.
const maxGetBytes = 32 << 20

// deleteBatchSize is S3's limit of keys per DeleteObjects request.
const deleteBatchSize = 1000

// singleDeleteConcurrency bounds the DeleteObject calls in flight when a
// server refuses batch deletes.
const singleDeleteConcurrency = 8

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// PutObject stores size bytes read from body at key, replacing any object
// there. The body is streamed, never buffered, so it may be a network
// stream; size 0 stores an empty object. A body that is an io.Seeker is
// retried on transient errors; any other body cannot be replayed once bytes
// went out, so its failures are returned as they come.
func (s *Store) PutObject(ctx context.Context, key string, body io.Reader, size int64) (err error) {
	defer observe("PutObject", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	if size < 0 {
		return fmt.Errorf("s3store: put %q: negative size %d", key, size)
	}
	// The wrappers hide Close (the caller owns the body) and, for streams,
	// anything that might make the SDK think it can rewind.
	var r io.Reader
	switch b := body.(type) {
	case io.ReadSeeker:
		r = struct{ io.ReadSeeker }{b}
	default:
		r = struct{ io.Reader }{b}
	}
	if size == 0 {
		r = bytes.NewReader(nil)
	}
	r = watchSend(r, w)
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.cfg.Bucket,
		Key:           &key,
		Body:          r,
		ContentLength: aws.Int64(size),
	}, unsignedPayload)
	return w.err("PutObject", key, err)
}

// PutBytes stores b at key, replacing any object there.
func (s *Store) PutBytes(ctx context.Context, key string, b []byte) error {
	return retryDirRace(ctx, func() error { return s.PutObject(ctx, key, bytes.NewReader(b), int64(len(b))) })
}

// GetObject opens the object at key for reading from offset, length bytes
// or, with length -1, to the end. The caller must close the stream. It
// returns [ErrNotFound] for a missing key and [ErrInvalidRange] for an
// offset past the end.
func (s *Store) GetObject(ctx context.Context, key string, offset, length int64) (_ io.ReadCloser, err error) {
	if offset < 0 || length < -1 {
		return nil, fmt.Errorf("s3store: get %q: invalid range offset %d length %d", key, offset, length)
	}
	if length == 0 {
		// HTTP ranges cannot express zero bytes; answer from a HEAD.
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if offset > info.Size {
			return nil, fmt.Errorf("%w: %s", ErrInvalidRange, key)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	defer observe("GetObject", time.Now(), &err)
	in := &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		w.release()
		return nil, w.err("GetObject", key, err)
	}
	w.disarm()
	if in.Range != nil && out.ContentRange == nil {
		// A server that ignores Range sends the whole object; passing that
		// on as the requested range would corrupt the caller's response.
		out.Body.Close()
		w.release()
		return nil, fmt.Errorf("s3store: GetObject %q: server ignored range %s", key, *in.Range)
	}
	return &recvWatch{body: out.Body, w: w, op: "GetObject", key: key}, nil
}

// GetBytes reads the whole object at key, which must be small (a link or a
// manifest, at most 32 MiB). It returns [ErrNotFound] for a missing key.
func (s *Store) GetBytes(ctx context.Context, key string) ([]byte, error) {
	body, err := s.GetObject(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxGetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("s3store: read %q: %w", key, err)
	}
	if len(b) > maxGetBytes {
		return nil, fmt.Errorf("s3store: read %q: object exceeds %d bytes", key, maxGetBytes)
	}
	return b, nil
}

// Stat describes the object at key, or returns [ErrNotFound].
func (s *Store) Stat(ctx context.Context, key string) (_ ObjectInfo, err error) {
	defer observe("HeadObject", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return ObjectInfo{}, w.err("HeadObject", key, err)
	}
	return ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		LastModified: aws.ToTime(out.LastModified),
	}, nil
}

// Delete removes the object at key; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) (err error) {
	defer observe("DeleteObject", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err = w.err("DeleteObject", key, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// DeletePrefix removes every object whose key starts with prefix, in
// batches of 1,000, falling back to one request per key on servers that
// refuse DeleteObjects. The empty prefix is refused: it would empty the
// bucket.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	if prefix == "" {
		return errors.New("s3store: refusing to delete the empty prefix")
	}
	batch := make([]string, 0, deleteBatchSize)
	err := s.List(ctx, prefix, func(o ObjectInfo) error {
		batch = append(batch, o.Key)
		if len(batch) < deleteBatchSize {
			return nil
		}
		err := s.deleteKeys(ctx, batch)
		batch = batch[:0]
		return err
	})
	if err != nil {
		return err
	}
	if len(batch) > 0 {
		return s.deleteKeys(ctx, batch)
	}
	return nil
}

// DeleteKeys removes the objects at keys, 1,000 per DeleteObjects request
// (one by one on servers that refuse it); missing keys are not an error.
// On an error some of the keys may be gone and others not.
func (s *Store) DeleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), deleteBatchSize)
		if err := s.deleteKeys(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// deleteKeys removes keys with one DeleteObjects, or one by one once the
// server has refused the batch call.
func (s *Store) deleteKeys(ctx context.Context, keys []string) error {
	if !s.batchDeleteRefused.Load() {
		err := s.deleteObjects(ctx, keys)
		if !refusesBatch(err) {
			return err
		}
		s.batchDeleteRefused.Store(true)
	}
	return parallel(ctx, len(keys), singleDeleteConcurrency, func(ctx context.Context, i int) error {
		return s.Delete(ctx, keys[i])
	})
}

// deleteObjects removes keys with one DeleteObjects request.
func (s *Store) deleteObjects(ctx context.Context, keys []string) (err error) {
	defer observe("DeleteObjects", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	ids := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		ids[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &s.cfg.Bucket,
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if cut := w.cut("DeleteObjects", keys[0], err); cut != nil {
		return cut
	}
	if err != nil {
		return fmt.Errorf("s3store: DeleteObjects (%d keys from %q): %w", len(keys), keys[0], err)
	}
	for _, e := range out.Errors {
		if code := aws.ToString(e.Code); code != "NoSuchKey" {
			return fmt.Errorf("s3store: DeleteObjects %q: %s: %s (%d keys failed)",
				aws.ToString(e.Key), code, aws.ToString(e.Message), len(out.Errors))
		}
	}
	return nil
}

// refusesBatch reports whether the server answered DeleteObjects with a
// refusal of the call itself (not implemented, or a demand such as
// Content-MD5 the SDK does not meet) rather than a transient failure.
func refusesBatch(err error) bool {
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) {
		return false
	}
	switch respErr.HTTPStatusCode() {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return false
}

// List calls fn for every object whose key starts with prefix, in key
// order, fetching pages as fn consumes them. An error from fn stops the
// listing and is returned.
func (s *Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	return s.listPages(ctx, prefix, "", func(page *s3.ListObjectsV2Output) error {
		for _, o := range page.Contents {
			err := fn(ObjectInfo{
				Key:          aws.ToString(o.Key),
				Size:         aws.ToInt64(o.Size),
				LastModified: aws.ToTime(o.LastModified),
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// ListPrefixes returns the distinct key prefixes one level below prefix,
// each ending in "/": the "subdirectories" of prefix, which should itself
// end in "/".
func (s *Store) ListPrefixes(ctx context.Context, prefix string) ([]string, error) {
	var prefixes []string
	err := s.listPages(ctx, prefix, "/", func(page *s3.ListObjectsV2Output) error {
		for _, p := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(p.Prefix))
		}
		return nil
	})
	return prefixes, err
}

// listPages walks ListObjectsV2 pages. It paginates by hand rather than
// with the SDK's paginator so that a server repeating a continuation token
// is an error instead of an endless loop or a silently short listing.
func (s *Store) listPages(ctx context.Context, prefix, delimiter string, fn func(*s3.ListObjectsV2Output) error) error {
	in := &s3.ListObjectsV2Input{
		Bucket:  &s.cfg.Bucket,
		Prefix:  &prefix,
		MaxKeys: aws.Int32(s.cfg.ListPageSize),
	}
	if delimiter != "" {
		in.Delimiter = &delimiter
	}
	for {
		page, err := s.listPage(ctx, in)
		if err != nil {
			return err
		}
		if err := fn(page); err != nil {
			return err
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		next := aws.ToString(page.NextContinuationToken)
		if next == "" || next == aws.ToString(in.ContinuationToken) {
			return fmt.Errorf("s3store: list %q: server sent a truncated page without a new continuation token", prefix)
		}
		in.ContinuationToken = &next
	}
}

// listPage fetches one page, instrumented.
func (s *Store) listPage(ctx context.Context, in *s3.ListObjectsV2Input) (_ *s3.ListObjectsV2Output, err error) {
	defer observe("ListObjectsV2", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	page, err := s.client.ListObjectsV2(ctx, in)
	if cut := w.cut("ListObjectsV2", aws.ToString(in.Prefix), err); cut != nil {
		return nil, cut
	}
	if err != nil {
		return nil, fmt.Errorf("s3store: ListObjectsV2 %q: %w", aws.ToString(in.Prefix), err)
	}
	return page, nil
}
