// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ha-registry/ha-registry/pglock"
	"github.com/ha-registry/ha-registry/s3store"
)

// uploadRef is an upload session row.
type uploadRef struct {
	id, repo string
}

// sweepUploads ends the sessions idle for longer than the upload TTL.
func (p *pass) sweepUploads(ctx context.Context) error {
	rows, err := p.conn.Query(ctx, `SELECT u.id::text, r.name FROM uploads u JOIN repositories r ON r.id = u.repository_id
		WHERE u.updated_at <= $1 ORDER BY u.updated_at, u.id`, p.uploadCutoff)
	if err != nil {
		return fmt.Errorf("choosing candidates: %w", err)
	}
	cands, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (uploadRef, error) {
		var u uploadRef
		err := row.Scan(&u.id, &u.repo)
		return u, err
	})
	if err != nil {
		return fmt.Errorf("choosing candidates: %w", err)
	}
	for _, c := range cands {
		item, ok, err := p.removeUpload(ctx, c)
		if err != nil {
			return fmt.Errorf("upload %s: %w", c.id, err)
		}
		if ok {
			p.sum.Removed = append(p.sum.Removed, item)
		} else {
			p.sum.Kept++
		}
	}
	return nil
}

// errDry rolls back a dry run's transaction.
var errDry = errors.New("dry run")

// removeUpload ends one session while it holds the session's row lock,
// as a client's cancel does: a request still running on the session holds
// that lock and the session is left to it (SKIP LOCKED), and a request
// coming later finds no session. Storage is touched only under the lock,
// so this can never abort an upload that a request has just finished.
func (p *pass) removeUpload(ctx context.Context, c uploadRef) (Item, bool, error) {
	item := Item{Kind: KindUpload, Repo: c.repo, ID: c.id}
	found := false
	err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		var multipart string
		err := tx.QueryRow(ctx, `SELECT coalesce(multipart_id, ''), size FROM uploads
			WHERE id = $1 AND updated_at <= $2 FOR UPDATE SKIP LOCKED`, c.id, p.uploadCutoff).Scan(&multipart, &item.Bytes)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // in use, resumed, or finished since
		}
		if err != nil {
			return err
		}
		found = true
		// A commit that completed the multipart upload and then failed
		// left the bytes assembled at the session's key.
		key := p.layout.UploadData(c.repo, c.id)
		switch _, err := p.s3.Stat(ctx, key); {
		case err == nil:
			item.Objects = []string{key}
		case !errors.Is(err, s3store.ErrNotFound):
			return err
		}
		if p.opts.DryRun {
			return errDry
		}
		if multipart != "" {
			if err := p.s3.AbortMultipart(ctx, key, multipart); err != nil {
				return err
			}
		}
		if err := p.s3.DeleteKeys(ctx, item.Objects); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, c.id)
		return err
	})
	if errors.Is(err, errDry) {
		err = nil
	}
	return item, found && err == nil, err
}

// uuidRE is the shape of a session id; other upload keys name no session.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// sweepMultipart aborts the S3 multipart uploads older than the upload
// TTL that no session owns: those of requests whose replica died before
// it could abort them (including whole-blob requests, which write at the
// blob's own address), of sessions that are gone, and of blob copies
// (above 5 GiB) that died half-way. Only age tells a whole-blob request
// in flight from a dead one: one that streams for longer than the TTL
// loses its upload and fails, so the TTL must exceed the longest push.
// It runs after sweepUploads, whose aborted uploads are then no longer
// listed.
func (p *pass) sweepMultipart(ctx context.Context) error {
	var cands []s3store.UploadInfo
	for _, prefix := range []string{p.layout.BlobsPrefix(), p.layout.RepositoriesPrefix()} {
		err := p.s3.ListUploads(ctx, prefix, func(u s3store.UploadInfo) error {
			if !u.Initiated.After(p.uploadCutoff) {
				cands = append(cands, u)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, u := range cands {
		item := Item{Kind: KindMultipart, Key: u.Key, ID: u.UploadID}
		info, _ := p.layout.ParseKey(u.Key)
		item.Repo = info.Repo
		ok, err := p.abortUnowned(ctx, u, info)
		if err != nil {
			return fmt.Errorf("multipart upload %s of %s: %w", u.UploadID, u.Key, err)
		}
		if ok {
			p.sum.Removed = append(p.sum.Removed, item)
		} else {
			p.sum.Kept++
		}
	}
	return nil
}

// abortUnowned aborts u unless a session owns it. When its key names a
// session that exists, the check holds that session's row lock (NOWAIT:
// a request running on the session might be about to record u as its
// own, so the upload is left to a later pass).
func (p *pass) abortUnowned(ctx context.Context, u s3store.UploadInfo, info s3store.KeyInfo) (bool, error) {
	owned := false
	err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		if info.Kind == s3store.KeyUploadData && uuidRE.MatchString(info.UploadID) {
			var mine bool
			err := tx.QueryRow(ctx, `SELECT multipart_id IS NOT DISTINCT FROM $2 FROM uploads WHERE id = $1 FOR UPDATE NOWAIT`,
				info.UploadID, u.UploadID).Scan(&mine)
			var pe *pgconn.PgError
			switch {
			case errors.As(err, &pe) && pe.Code == "55P03": // lock_not_available
				owned = true
				return nil
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			case mine:
				owned = true // the session's own: sweepUploads ends it with the session
				return nil
			}
		}
		if p.opts.DryRun {
			return nil
		}
		return p.s3.AbortMultipart(ctx, u.Key, u.UploadID)
	})
	return !owned && err == nil, err
}

// ExpiryLockKey is held, exclusively, by whoever runs [ExpireUploads]:
// one at a time across the cluster, so that replicas do not list the
// bucket's multipart uploads side by side for nothing.
var ExpiryLockKey = pglock.Key(pglock.NamespaceJobs, "upload-expiry")

// ExpireUploads runs the upload stages of a pass alone: it ends the
// sessions idle for longer than opts.UploadTTL (their rows, the bytes
// they staged in PostgreSQL and their S3 multipart uploads) and aborts the
// multipart uploads older than it that no session owns. serve runs it
// whether or not garbage collection passes are configured; only
// opts.DB, S3, UploadTTL, Now and Logger matter.
//
// It takes [ExpiryLockKey], not [LockKey], so that it never makes a
// pass skip; it is safe alongside one, as both remove a session only
// under its row lock and an abort of a multipart upload already aborted
// succeeds. Like a pass, it skips while registry rebuild-db runs. Its
// removals are counted in the gc metrics' removed figures, not as a pass.
func ExpireUploads(ctx context.Context, opts Options) (Summary, error) {
	if opts.DB == nil || opts.S3 == nil {
		return Summary{}, errors.New("gc: a database and a bucket are required")
	}
	if opts.UploadTTL < 0 {
		return Summary{}, errors.New("gc: the upload TTL may not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.DryRun, opts.DutyCycle = false, 1
	started := time.Now()
	s, err := run(ctx, opts, Summary{Start: opts.Now()}, ExpiryLockKey, (*pass).uploadStages)
	s.Duration = time.Since(started)
	if s.Skipped == "" {
		recordRemovals(s)
	}
	return s, err
}
