// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/gc"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/s3store"
)

// uploadFlags are serve's limits on upload sessions.
func uploadFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "max-upload-sessions-per-repository", Value: store.DefaultMaxUploadsPerRepository,
			EnvVars: []string{"REGISTRY_MAX_UPLOAD_SESSIONS_PER_REPOSITORY"},
			Usage:   "upload sessions open at once in one repository, across replicas; beyond it a new one is refused with 429 (0: no cap)"},
		&cli.IntFlag{Name: "max-upload-sessions-per-client", Value: store.DefaultMaxUploadsPerClient,
			EnvVars: []string{"REGISTRY_MAX_UPLOAD_SESSIONS_PER_CLIENT"},
			Usage:   "upload sessions open at once by one user or robot (anonymous callers: one address), across replicas; beyond it a new one is refused with 429 (0: no cap)"},
		&cli.Int64Flag{Name: "max-staged-bytes", Value: store.DefaultMaxStagedBytes, EnvVars: []string{"REGISTRY_MAX_STAGED_BYTES"},
			Usage: "bytes below one S3 part that all upload sessions together keep in PostgreSQL; a chunk that would pass it is refused with 429 (0: no ceiling)"},
		&cli.DurationFlag{Name: "upload-ttl", Value: gc.DefaultUploadTTL, EnvVars: []string{"REGISTRY_UPLOAD_TTL"},
			Usage: "end upload sessions idle this long (their staged bytes and S3 multipart uploads too), and abort multipart uploads no session owns this old, whether or not gc passes run (0: never); longer than any one upload request"},
	}
}

// uploadLimits reads the caps into cfg.
func uploadLimits(c *cli.Context, cfg *store.Config) error {
	cfg.MaxUploadsPerRepository = c.Int("max-upload-sessions-per-repository")
	cfg.MaxUploadsPerClient = c.Int("max-upload-sessions-per-client")
	cfg.MaxStagedBytes = c.Int64("max-staged-bytes")
	if cfg.MaxUploadsPerRepository < 0 || cfg.MaxUploadsPerClient < 0 || cfg.MaxStagedBytes < 0 {
		return fmt.Errorf("--max-upload-sessions-per-repository, --max-upload-sessions-per-client and --max-staged-bytes may not be negative")
	}
	return nil
}

// uploadExpiryInterval is how often a replica looks for expired uploads:
// a tenth of the TTL, so that a session outlives it by at most a tenth,
// between one second and ten minutes.
func uploadExpiryInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/10, time.Second), 10*time.Minute)
}

// startUploadExpiry ends the upload sessions idle for longer than
// --upload-ttl, periodically, until ctx ends or the returned function is
// called. Every replica ticks; the expiry's lock lets one run at a time.
func startUploadExpiry(ctx context.Context, c *cli.Context, pool *pgxpool.Pool, s3 *s3store.Store, log zerolog.Logger) (func(), error) {
	ttl := c.Duration("upload-ttl")
	if ttl < 0 {
		return nil, fmt.Errorf("--upload-ttl may not be negative, not %s", ttl)
	}
	if ttl == 0 {
		log.Warn().Msg("upload sessions never expire (--upload-ttl 0): abandoned ones keep their staged bytes and S3 multipart uploads")
		return func() {}, nil
	}
	opts := gc.Options{DB: pool, S3: s3, UploadTTL: ttl, Logger: log}
	interval := uploadExpiryInterval(ttl)
	log.Info().Dur("upload_ttl", ttl).Dur("interval", interval).Msg("upload expiry on")
	return runEvery(ctx, interval, func(ctx context.Context) {
		s, err := gc.ExpireUploads(ctx, opts)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			log.Error().Err(err).Int("removed", len(s.Removed)).Msg("expiring upload sessions failed")
		case s.Skipped != "":
			log.Debug().Msg("upload expiry: another replica is running it")
		case len(s.Removed) > 0:
			for _, it := range s.Removed {
				log.Info().Str("kind", string(it.Kind)).Str("repository", it.Repo).Str("id", it.ID).
					Int64("bytes", it.Bytes).Msg("expired an idle upload")
			}
		}
	}), nil
}
