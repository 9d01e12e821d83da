// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/s3store"
)

// uploadRow is an upload session as stored, loaded under its row lock.
type uploadRow struct {
	id          string
	repoID      int64
	size        int64
	multipartID string
	parts       []s3store.Part
	staged      []byte
	hash        *uploadHash
}

// newUploadID returns a random UUID (version 4), the session's public id.
func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// validUploadID reports whether id has the UUID shape, so that a made-up
// id is an unknown upload rather than a database error.
func validUploadID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case (c < '0' || c > '9') && (c < 'a' || c > 'f'):
			return false
		}
	}
	return true
}

// StartUpload opens a session. Nothing touches S3 until bytes arrive.
func (s *Store) StartUpload(ctx context.Context, repo string) (registry.UploadSession, error) {
	state, err := newUploadHash().marshal()
	if err != nil {
		return registry.UploadSession{}, err
	}
	if err := s.checkUploadQuota(ctx, repo); err != nil {
		return registry.UploadSession{}, err
	}
	id := newUploadID()
	client := clientOf(ctx)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		repoID, err := ensureRepository(ctx, tx, repo)
		if err != nil {
			return err
		}
		if err := s.checkSessionCaps(ctx, tx, repo, repoID, client); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO uploads (id, repository_id, hash_state, client) VALUES ($1, $2, $3, $4)`, id, repoID, state, client)
		return err
	})
	if err != nil {
		return registry.UploadSession{}, err
	}
	return registry.UploadSession{ID: id, Repo: repo}, nil
}

// UploadStatus reads a session without locking it.
func (s *Store) UploadStatus(ctx context.Context, repo, id string) (registry.UploadSession, error) {
	if !validUploadID(id) {
		return registry.UploadSession{}, registry.ErrBlobUploadUnknown
	}
	var size int64
	err := s.db.QueryRow(ctx, `SELECT u.size FROM uploads u JOIN repositories r ON r.id = u.repository_id
		WHERE u.id = $1 AND r.name = $2`, id, repo).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return registry.UploadSession{}, registry.ErrBlobUploadUnknown
	}
	if err != nil {
		return registry.UploadSession{}, dbErr(err)
	}
	return registry.UploadSession{ID: id, Repo: repo, Offset: size}, nil
}

// lockUpload loads a session under its row lock. A second request on the
// same session waits here until the first commits, then sees its offset.
// It waits at most Config.SessionLockTimeout: the holder may be a replica
// that hangs (frozen, or its host gone) with its transaction open, and a
// client's retry must not hang behind it. Such a wait is answered 429 with
// Retry-After: the client asks where the session stands and retries.
func (s *Store) lockUpload(ctx context.Context, tx pgx.Tx, repo, id string) (*uploadRow, error) {
	if !validUploadID(id) {
		return nil, registry.ErrBlobUploadUnknown
	}
	u := &uploadRow{id: id}
	var mp *string
	var parts []byte
	var state []byte
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`,
		strconv.FormatInt(s.sessionLockTimeout().Milliseconds(), 10)); err != nil {
		return nil, err
	}
	err := tx.QueryRow(ctx, `SELECT u.repository_id, u.size, u.multipart_id, u.parts, u.staged, u.hash_state
		FROM uploads u JOIN repositories r ON r.id = u.repository_id
		WHERE u.id = $1 AND r.name = $2 FOR UPDATE OF u`, id, repo).
		Scan(&u.repoID, &u.size, &mp, &parts, &u.staged, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registry.ErrBlobUploadUnknown
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
		return nil, registry.ErrTooManyRequests.WithMessage(
			"upload %s is busy with another request; GET its status and retry from there", id).WithRetryAfter(time.Second)
	}
	if err != nil {
		return nil, err
	}
	// The rest of the transaction waits as long as it must.
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout TO DEFAULT`); err != nil {
		return nil, err
	}
	if mp != nil {
		u.multipartID = *mp
	}
	if err := json.Unmarshal(parts, &u.parts); err != nil {
		return nil, fmt.Errorf("upload %s: parts: %w", id, err)
	}
	if u.hash, err = unmarshalUploadHash(state); err != nil {
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	return u, nil
}

// saveUpload writes the session back; the caller's transaction commits it.
func saveUpload(ctx context.Context, tx pgx.Tx, u *uploadRow) error {
	state, err := u.hash.marshal()
	if err != nil {
		return err
	}
	parts, err := json.Marshal(u.parts)
	if err != nil {
		return err
	}
	var mp *string
	if u.multipartID != "" {
		mp = &u.multipartID
	}
	_, err = tx.Exec(ctx, `UPDATE uploads SET size = $2, multipart_id = $3, parts = $4, staged = $5,
		hash_state = $6, updated_at = now() WHERE id = $1`, u.id, u.size, mp, parts, u.staged, state)
	return err
}

// AppendUpload streams body into the session. It is refused while the
// repository's byte quota is used up, as a new upload would be, and when
// the bytes it leaves staged would pass [Config.MaxStagedBytes].
func (s *Store) AppendUpload(ctx context.Context, repo, id string, start int64, body io.Reader) (registry.UploadSession, error) {
	var out registry.UploadSession
	if err := s.checkUploadQuota(ctx, repo); err != nil {
		return out, err
	}
	err := s.inStreamTx(ctx, func(tx pgx.Tx) (err error) {
		u, err := s.lockUpload(ctx, tx, repo, id)
		if err != nil {
			return err
		}
		if start >= 0 && start != u.size {
			return registry.ErrRangeInvalid.WithMessage("chunk starts at %d, upload is at %d", start, u.size)
		}
		key := s.layout.UploadData(repo, id)
		defer func(had bool) {
			if err != nil {
				s.abandon(ctx, key, u, had)
			}
		}(u.multipartID != "")
		staged := len(u.staged)
		if err := s.appendBody(ctx, key, u, body, -1); err != nil {
			return err
		}
		if err := s.checkStaged(ctx, tx, id, staged, len(u.staged)); err != nil {
			return err
		}
		if err := saveUpload(ctx, tx, u); err != nil {
			return err
		}
		out = registry.UploadSession{ID: id, Repo: repo, Offset: u.size}
		return nil
	})
	s.releaseWhenFull(ctx, repo, id, err)
	return out, err
}

// releaseWhenFull ends the upload session of a request that S3 refused for
// want of room, aborting its multipart upload: the parts it holds take
// the space every push is missing, and the client's retry cannot succeed
// before an operator acts anyway; it starts the upload again then.
func (s *Store) releaseWhenFull(ctx context.Context, repo, id string, err error) {
	if !errors.Is(err, s3store.ErrStorageFull) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// A failure leaves the session to expire with the upload TTL.
	_ = s.CancelUpload(ctx, repo, id)
}

// appendBody reads body into u: full parts go to S3 as they fill, the rest
// stays staged. limit, when not -1, is how many bytes body must hold. On
// failure u is not to be saved, and the caller abandons what it began (see
// [Store.abandon]). A body that breaks off (the client went away, a proxy
// timed out) is a failure, never a shorter chunk: the client cannot know
// how much of it arrived.
func (s *Store) appendBody(ctx context.Context, key string, u *uploadRow, body io.Reader, limit int64) error {
	buf := make([]byte, len(u.staged), s.partSize)
	copy(buf, u.staged)
	var read int64
	for eof := false; !eof; {
		n, rerr := fill(body, buf[len(buf):cap(buf)])
		u.hash.Write(buf[len(buf) : len(buf)+n])
		buf = buf[:len(buf)+n]
		read += int64(n)
		if limit >= 0 && read > limit {
			return registry.ErrSizeInvalid.WithMessage("body is longer than its declared length %d", limit)
		}
		switch {
		case rerr == io.EOF:
			eof = true
		case rerr != nil:
			var re *registry.Error
			if errors.As(rerr, &re) {
				return rerr
			}
			return fmt.Errorf("%w: %w", registry.ErrBlobUploadInvalid.WithMessage("reading the request body failed"), rerr)
		}
		if len(buf) == cap(buf) {
			if u.multipartID == "" {
				id, err := s.s3.CreateMultipart(ctx, key)
				if err != nil {
					return err
				}
				u.multipartID = id
			}
			num := int32(len(u.parts) + 1)
			etag, err := s.s3.UploadPart(ctx, key, u.multipartID, num, buf)
			if err != nil {
				return err
			}
			u.parts = append(u.parts, s3store.Part{Number: num, ETag: etag, Size: int64(len(buf))})
			buf = buf[:0]
		}
	}
	if limit >= 0 && read != limit {
		return registry.ErrSizeInvalid.WithMessage("body has %d bytes, its declared length is %d", read, limit)
	}
	u.size += read
	u.staged = buf
	return nil
}

// fill reads into p until it is full or r fails. Unlike io.ReadFull it
// keeps io.EOF (the body ended) apart from io.ErrUnexpectedEOF (the body
// was cut short).
func fill(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// abandon aborts the multipart upload a failed request began, so that it
// does not linger. It is called only when the request's transaction did
// not commit, so no session knows that upload: it can never destroy one a
// retry or another replica goes on with. An upload the session already
// had is left alone.
func (s *Store) abandon(ctx context.Context, key string, u *uploadRow, hadMultipart bool) {
	if hadMultipart || u.multipartID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// A failure is counted in the S3 error metrics, and garbage
	// collection removes multipart uploads that no session owns.
	_ = s.s3.AbortMultipart(ctx, key, u.multipartID)
}

// CommitUpload appends the final body and finishes the upload as blob d.
// It is refused while the repository's byte quota is used up, and when
// the blob would take the quota past its limit (see checkCommitQuota).
func (s *Store) CommitUpload(ctx context.Context, repo, id string, start int64, body io.Reader, d digest.Digest) (registry.BlobInfo, error) {
	var info registry.BlobInfo
	if err := s.checkUploadQuota(ctx, repo); err != nil {
		return info, err
	}
	err := s.inStreamTx(ctx, func(tx pgx.Tx) (err error) {
		u, err := s.lockUpload(ctx, tx, repo, id)
		if err != nil {
			return err
		}
		if start >= 0 && start != u.size {
			return registry.ErrRangeInvalid.WithMessage("chunk starts at %d, upload is at %d", start, u.size)
		}
		key := s.layout.UploadData(repo, id)
		if u.size == 0 {
			// The whole blob comes in this request under a digest known
			// from its start: write it straight to its address.
			key = s.layout.BlobData(d)
		}
		defer func(had bool) {
			if err != nil {
				s.abandon(ctx, key, u, had)
			}
		}(u.multipartID != "")
		u.hash.keepOnly(d.Algorithm())
		if err := s.appendBody(ctx, key, u, body, -1); err != nil {
			return err
		}
		if got := u.hash.digest(d.Algorithm()); got != d {
			return registry.ErrDigestInvalid.WithMessage("upload has digest %s, not %s", got, d)
		}
		if err := s.checkCommitQuota(ctx, tx, repo, d, u.size); err != nil {
			return err
		}
		if err := s.commitBlob(ctx, tx, repo, key, u, d); err != nil {
			return err
		}
		// Deleting the row is what makes the upload finished: a late or
		// retried request on it now finds no session and touches nothing.
		if _, err := tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id); err != nil {
			return err
		}
		info = registry.BlobInfo{Digest: d, Size: u.size}
		return nil
	})
	s.releaseWhenFull(ctx, repo, id, err)
	return info, err
}

// commitBlob moves a verified upload to its content address and links it
// into repo, under the digest's lock so a concurrent commit or deletion of
// the same digest cannot interleave.
//
// key is where the upload's multipart upload was begun: the session's
// data key, or the blob's own address when one request carried the whole
// blob with its digest. In the second case completing the multipart
// upload is the only write: a multipart upload is invisible until it is
// completed, and it is completed only here, once the bytes are verified
// and the digest's lock is held, so no reader and no garbage collection
// pass ever sees a part of it. It saves the copy and the delete, which
// cost an S3 server as much as the upload itself.
func (s *Store) commitBlob(ctx context.Context, tx pgx.Tx, repo, key string, u *uploadRow, d digest.Digest) error {
	if err := lockDigest(ctx, tx, d); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = $1)`, d.String()).Scan(&exists); err != nil {
		return err
	}
	dst := s.layout.BlobData(d)
	if !exists && u.multipartID != "" {
		// A commit whose S3 writes landed but whose transaction did not
		// (a lost connection, a killed replica) leaves the bytes at their
		// address with the session still open. They are content-addressed
		// and this upload's hash matched, so the retry adopts them instead
		// of failing on a multipart upload that no longer exists. The
		// digest lock keeps garbage collection from deleting them under us.
		// A blob smaller than a part is simply written again: the same
		// bytes, in the round trip a look would cost.
		info, err := s.s3.Stat(ctx, dst)
		switch {
		case err == nil:
			exists = info.Size == u.size
		case !errors.Is(err, s3store.ErrNotFound):
			return err
		}
	}
	// The bytes and the repository's link to them at once: a link to
	// bytes a failed commit did not store is left out by rebuild-db and
	// removed by garbage collection.
	err := together(ctx,
		func(ctx context.Context) error { return s.storeBlobData(ctx, key, dst, u, exists) },
		func(ctx context.Context) error {
			return s.s3.PutBytes(ctx, s.layout.LayerLink(repo, d), []byte(d.String()))
		})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING`, d.String(), u.size); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO repository_blobs (repository_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING`, u.repoID, d.String())
	return err
}

// storeBlobData puts an upload's verified bytes at their address dst, or
// with exists drops them for the copy already there.
func (s *Store) storeBlobData(ctx context.Context, key, dst string, u *uploadRow, exists bool) error {
	switch {
	case exists:
		// The bytes are already there: keep them, drop ours. Either may
		// be gone already after a half-finished earlier attempt.
		if u.multipartID == "" {
			return nil
		}
		if err := s.s3.AbortMultipart(ctx, key, u.multipartID); err != nil {
			return err
		}
		if key != dst {
			if err := s.s3.Delete(ctx, key); err != nil && !errors.Is(err, s3store.ErrNotFound) {
				return err
			}
		}
		return nil
	case u.multipartID == "":
		// Smaller than one part: the bytes are all here, write them
		// straight to their address with no copy.
		return s.s3.PutBytes(ctx, dst, u.staged)
	}
	parts := u.parts
	if len(u.staged) > 0 {
		num := int32(len(parts) + 1)
		etag, err := s.s3.UploadPart(ctx, key, u.multipartID, num, u.staged)
		if err != nil {
			return err
		}
		parts = append(parts, s3store.Part{Number: num, ETag: etag, Size: int64(len(u.staged))})
	}
	if err := s.s3.CompleteMultipart(ctx, key, u.multipartID, parts); err != nil {
		return err
	}
	if key == dst {
		return nil
	}
	if err := s.s3.Copy(ctx, key, dst, u.size); err != nil {
		return err
	}
	return s.s3.Delete(ctx, key)
}

// CancelUpload aborts a session. It touches storage only while it holds
// the session's row, so it can never destroy an upload a racing request
// has finished.
func (s *Store) CancelUpload(ctx context.Context, repo, id string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		u, err := s.lockUpload(ctx, tx, repo, id)
		if err != nil {
			return err
		}
		if u.multipartID != "" {
			if err := s.s3.AbortMultipart(ctx, s.layout.UploadData(repo, id), u.multipartID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id)
		return err
	})
}

// PutBlob stores a whole blob sent in one request. It runs the upload path
// without persisting a session: the bytes are verified before anything is
// written at the blob's address.
func (s *Store) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader) (registry.BlobInfo, error) {
	if err := s.checkUploadQuota(ctx, repo); err != nil {
		return registry.BlobInfo{}, err
	}
	id := newUploadID()
	key := s.layout.BlobData(d) // see commitBlob
	u := &uploadRow{id: id, hash: newUploadHash()}
	u.hash.keepOnly(d.Algorithm())
	var info registry.BlobInfo
	err := s.inStreamTx(ctx, func(tx pgx.Tx) (err error) {
		defer func() {
			if err != nil {
				s.abandon(ctx, key, u, false)
			}
		}()
		if err := s.appendBody(ctx, key, u, body, size); err != nil {
			return err
		}
		if got := u.hash.digest(d.Algorithm()); got != d {
			return registry.ErrDigestInvalid.WithMessage("body has digest %s, not %s", got, d)
		}
		// Only now: ensureRepository locks the repository's row until the
		// transaction ends, and taken before the body it would hold every
		// other upload into the repository behind a slow client.
		repoID, err := ensureRepository(ctx, tx, repo)
		if err != nil {
			return err
		}
		u.repoID = repoID
		if err := s.commitBlob(ctx, tx, repo, key, u, d); err != nil {
			return err
		}
		info = registry.BlobInfo{Digest: d, Size: u.size}
		return nil
	})
	return info, err
}

// MountBlob links an existing blob into repo.
func (s *Store) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (registry.BlobInfo, bool, error) {
	if from == "" && !s.cfg.AutoMount {
		return registry.BlobInfo{}, false, nil
	}
	if err := s.checkUploadQuota(ctx, repo); err != nil {
		return registry.BlobInfo{}, false, err
	}
	var info registry.BlobInfo
	found := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockDigest(ctx, tx, d); err != nil {
			return err
		}
		q := `SELECT b.size FROM blobs b WHERE b.digest = $1 AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)`
		args := []any{d.String()}
		if from != "" {
			q = `SELECT b.size FROM blobs b JOIN repository_blobs rb ON rb.digest = b.digest
				JOIN repositories r ON r.id = rb.repository_id WHERE b.digest = $1 AND r.name = $2`
			args = append(args, from)
		}
		// FOR SHARE keeps the blob row from being deleted until the link
		// below is committed.
		err := tx.QueryRow(ctx, q+` FOR SHARE OF b`, args...).Scan(&info.Size)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		repoID, err := ensureRepository(ctx, tx, repo)
		if err != nil {
			return err
		}
		if err := s.s3.PutBytes(ctx, s.layout.LayerLink(repo, d), []byte(d.String())); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO repository_blobs (repository_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING`, repoID, d.String()); err != nil {
			return err
		}
		info.Digest = d
		found = true
		return nil
	})
	return info, found, err
}
