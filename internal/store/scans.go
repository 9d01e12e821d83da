// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// ScanTarget is an image manifest claimed for a scan.
type ScanTarget struct {
	RepoID     int64
	Repository string
	Digest     digest.Digest
}

// ScanResult is a manifest's last scan.
type ScanResult struct {
	Status       string    `json:"status"` // queued, scanning, done, unscannable, failed
	Scanner      string    `json:"scanner"`
	DBVersion    string    `json:"dbVersion"`
	Critical     int       `json:"critical"`
	High         int       `json:"high"`
	Medium       int       `json:"medium"`
	Low          int       `json:"low"`
	Unknown      int       `json:"unknown"`
	ReportDigest string    `json:"reportDigest,omitempty"`
	Error        string    `json:"error,omitempty"`
	ScannedAt    time.Time `json:"scannedAt"`
}

// ScanFinding is one finding as the index keeps it.
type ScanFinding struct {
	ID        string   `json:"id"`
	Aliases   []string `json:"aliases,omitempty"`
	Severity  string   `json:"severity"`
	Score     float64  `json:"score,omitempty"`
	Package   string   `json:"package"`
	Version   string   `json:"version"`
	Ecosystem string   `json:"ecosystem"`
	Summary   string   `json:"summary,omitempty"`
}

// imageTypes are the manifests scans look at: images, not indexes (their
// images are scanned one by one) nor artifacts such as signatures and
// scan reports.
var (
	imageManifestTypes = []string{registry.MediaTypeOCIManifest, registry.MediaTypeDockerManifest}
	imageConfigTypes   = []string{"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)

// QueueScans queues every image manifest never scanned, and requeues
// those scanned (or failed) with other vulnerability data than dbVersion.
func (s *Store) QueueScans(ctx context.Context, dbVersion string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO scans (repository_id, digest, status)
			SELECT repository_id, digest, 'queued' FROM manifests
			WHERE media_type = ANY($1) AND artifact_type = ANY($2) ON CONFLICT DO NOTHING`, imageManifestTypes, imageConfigTypes)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `UPDATE scans SET status = 'queued' WHERE status IN ('done', 'failed') AND db_version <> $1`, dbVersion)
		n += tag.RowsAffected()
		return err
	})
	return n, err
}

// QueueScan queues one manifest of repo, whatever its last scan.
// Errors: registry.ErrManifestUnknown.
func (s *Store) QueueScan(ctx context.Context, repo string, d digest.Digest) error {
	tag, err := s.db.Exec(ctx, `INSERT INTO scans (repository_id, digest, status)
		SELECT m.repository_id, m.digest, 'queued' FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE r.name = $1 AND m.digest = $2
		ON CONFLICT (repository_id, digest) DO UPDATE SET status = 'queued', lease_until = NULL
		WHERE scans.status <> 'scanning' OR scans.lease_until < now()`, repo, d.String())
	if err != nil {
		return dbErr(err)
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM scans s JOIN repositories r ON r.id = s.repository_id
			WHERE r.name = $1 AND s.digest = $2)`, repo, d.String()).Scan(&exists)
		if !exists {
			return registry.ErrManifestUnknown
		}
	}
	return nil
}

// ClaimScan takes the next queued scan (or one whose lease ran out: its
// replica died) for owner until lease has passed; ok is false when none
// is waiting. Replicas claim with SKIP LOCKED, so each scan runs once.
func (s *Store) ClaimScan(ctx context.Context, owner string, lease time.Duration) (ScanTarget, bool, error) {
	var t ScanTarget
	var d string
	err := s.db.QueryRow(ctx, `WITH c AS (
			SELECT repository_id, digest FROM scans
			WHERE status = 'queued' OR (status = 'scanning' AND lease_until < now())
			ORDER BY lease_until NULLS FIRST LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE scans s SET status = 'scanning', lease_owner = $1, lease_until = now() + $2::bigint * interval '1 microsecond'
		FROM c, repositories r
		WHERE s.repository_id = c.repository_id AND s.digest = c.digest AND r.id = s.repository_id
		RETURNING s.repository_id, r.name, s.digest`, owner, lease.Microseconds()).Scan(&t.RepoID, &t.Repository, &d)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	t.Digest = digest.Digest(d)
	return t, err == nil, dbErr(err)
}

// FinishScan records a claimed scan's result and findings, if owner still
// holds its lease (the manifest may have been deleted, or the lease taken
// over); ok is false when it was not recorded.
func (s *Store) FinishScan(ctx context.Context, t ScanTarget, owner string, r ScanResult, findings []ScanFinding) (bool, error) {
	ok := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE scans SET status = $4, lease_until = NULL, scanner = $5, db_version = $6,
				critical = $7, high = $8, medium = $9, low = $10, unknown = $11, report_digest = $12, error = $13, scanned_at = now()
			WHERE repository_id = $1 AND digest = $2 AND lease_owner = $3 AND status = 'scanning'`,
			t.RepoID, t.Digest.String(), owner, r.Status, r.Scanner, r.DBVersion,
			r.Critical, r.High, r.Medium, r.Low, r.Unknown, r.ReportDigest, r.Error)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ok = true
		if _, err := tx.Exec(ctx, `DELETE FROM scan_findings WHERE repository_id = $1 AND digest = $2`, t.RepoID, t.Digest.String()); err != nil {
			return err
		}
		for _, f := range findings {
			if _, err := tx.Exec(ctx, `INSERT INTO scan_findings (repository_id, digest, id, aliases, severity, score, package, version, ecosystem, summary)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
				t.RepoID, t.Digest.String(), f.ID, f.Aliases, f.Severity, f.Score, f.Package, f.Version, f.Ecosystem, f.Summary); err != nil {
				return err
			}
		}
		return nil
	})
	return ok, err
}

// ScanOf returns the last scan of repo's manifest d; ok is false when it
// was never queued.
func (s *Store) ScanOf(ctx context.Context, repo string, d digest.Digest) (ScanResult, bool, error) {
	var r ScanResult
	var at *time.Time
	err := s.db.QueryRow(ctx, `SELECT s.status, s.scanner, s.db_version, s.critical, s.high, s.medium, s.low, s.unknown,
			s.report_digest, s.error, s.scanned_at
		FROM scans s JOIN repositories r ON r.id = s.repository_id WHERE r.name = $1 AND s.digest = $2`, repo, d.String()).
		Scan(&r.Status, &r.Scanner, &r.DBVersion, &r.Critical, &r.High, &r.Medium, &r.Low, &r.Unknown, &r.ReportDigest, &r.Error, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	if at != nil {
		r.ScannedAt = *at
	}
	return r, err == nil, dbErr(err)
}

// ScanFindings returns the findings of repo's manifest d's last scan, the
// most severe first.
func (s *Store) ScanFindings(ctx context.Context, repo string, d digest.Digest) ([]ScanFinding, error) {
	rows, err := s.db.Query(ctx, `SELECT f.id, f.aliases, f.severity, coalesce(f.score, 0), f.package, f.version, f.ecosystem, f.summary
		FROM scan_findings f JOIN repositories r ON r.id = f.repository_id WHERE r.name = $1 AND f.digest = $2
		ORDER BY f.score DESC NULLS LAST, f.id, f.package`, repo, d.String())
	if err != nil {
		return nil, dbErr(err)
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ScanFinding, error) {
		var f ScanFinding
		var score float32
		err := r.Scan(&f.ID, &f.Aliases, &f.Severity, &score, &f.Package, &f.Version, &f.Ecosystem, &f.Summary)
		f.Score = float64(score)
		return f, err
	})
	return fs, dbErr(err)
}

// ClaimScanOf claims the queued scan of repo's manifest d for owner.
func (s *Store) ClaimScanOf(ctx context.Context, repo string, d digest.Digest, owner string, lease time.Duration) (ScanTarget, bool, error) {
	t := ScanTarget{Repository: repo, Digest: d}
	err := s.db.QueryRow(ctx, `UPDATE scans s SET status = 'scanning', lease_owner = $3, lease_until = now() + $4::bigint * interval '1 microsecond'
		FROM repositories r WHERE r.id = s.repository_id AND r.name = $1 AND s.digest = $2
			AND (s.status = 'queued' OR (s.status = 'scanning' AND s.lease_until < now()))
		RETURNING s.repository_id`, repo, d.String(), owner, lease.Microseconds()).Scan(&t.RepoID)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	return t, err == nil, dbErr(err)
}
