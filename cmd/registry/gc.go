// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/gc"
	"github.com/ha-registry/ha-registry/s3store"
)

// gcPolicyFlags are what registry gc and serve's periodic passes share;
// prefix is "" for the first and "gc-" for the second. One environment
// variable sets both, so the cron job and the replicas agree.
func gcPolicyFlags(prefix string) []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: prefix + "grace", Value: gc.DefaultGrace, EnvVars: []string{"REGISTRY_GC_GRACE"},
			Usage: "how long a manifest, blob link or unknown bucket object must have been unreferenced before it is removed"},
		&cli.DurationFlag{Name: prefix + "upload-ttl", Value: gc.DefaultUploadTTL, EnvVars: []string{"REGISTRY_GC_UPLOAD_TTL"},
			Usage: "how long an upload session may be idle, and an S3 multipart upload no session owns may exist, before it is removed; longer than any one upload request"},
		&cli.BoolFlag{Name: prefix + "delete-untagged", EnvVars: []string{"REGISTRY_GC_DELETE_UNTAGGED"},
			Usage: "also remove manifests no tag reaches (through an index or as a referrer of a reached subject)"},
		&cli.Float64Flag{Name: prefix + "duty-cycle", Value: gc.DefaultDutyCycle, EnvVars: []string{"REGISTRY_GC_DUTY_CYCLE"},
			Usage: "share of its time a pass works, above 0 and at most 1; it sleeps the rest so that pushes keep their latency"},
	}
}

// gcOptions reads the policy flags.
func gcOptions(c *cli.Context, prefix string, pool *pgxpool.Pool, s3 *s3store.Store, log zerolog.Logger) gc.Options {
	return gc.Options{DB: pool, S3: s3, Logger: log,
		Grace: c.Duration(prefix + "grace"), UploadTTL: c.Duration(prefix + "upload-ttl"),
		DeleteUntagged: c.Bool(prefix + "delete-untagged"), DutyCycle: c.Float64(prefix + "duty-cycle")}
}

func gcCommand() *cli.Command {
	flags := append(gcPolicyFlags(""),
		&cli.BoolFlag{Name: "dry-run", EnvVars: []string{"REGISTRY_GC_DRY_RUN"},
			Usage: "remove nothing; list what a pass would remove, and the bytes"})
	flags = append(flags, databaseFlags()...)
	flags = append(flags, s3Flags()...)
	return &cli.Command{
		Name:  "gc",
		Usage: "make one garbage collection pass, or list what it would remove with --dry-run",
		Description: "Removes what nothing references any more: blob links no manifest uses, blobs no repository links, " +
			"with --delete-untagged manifests no tag reaches, upload sessions and S3 multipart uploads past --upload-ttl, " +
			"and bucket objects the index does not know (found by two passes). Safe while replicas serve: see docs/gc.md. " +
			"Prints each removal and the totals. One pass at a time per database: another one skips, says so and exits 0.",
		Flags:  flags,
		Action: collectGarbage,
	}
}

func collectGarbage(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	pool, err := openMigrated(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	s3, err := openS3(ctx, c)
	if err != nil {
		return err
	}
	opts := gcOptions(c, "", pool, s3, log)
	opts.DryRun = c.Bool("dry-run")
	s, err := gc.Run(ctx, opts)
	// What a failed pass removed before it stopped is printed too.
	s.Print(c.App.Writer)
	if err != nil {
		return err
	}
	s.Log(log)
	if s.RebuildRequired != "" {
		return fmt.Errorf("gc: deleted nothing by the index: %s; run `registry rebuild-db`", s.RebuildRequired)
	}
	return nil
}

// gcServeFlags are serve's: the interval, and the policy.
func gcServeFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.DurationFlag{Name: "gc-interval", EnvVars: []string{"REGISTRY_GC_INTERVAL"},
			Usage: "run a garbage collection pass this often (0: never); one replica at a time runs it, the others skip"},
	}, gcPolicyFlags("gc-")...)
}

// startGC runs a pass every --gc-interval until ctx ends or the returned
// function is called, which also waits for the pass in progress to stop.
// Every replica ticks; the pass's lock lets one run and the others log
// that they skipped.
func startGC(ctx context.Context, c *cli.Context, pool *pgxpool.Pool, s3 *s3store.Store, log zerolog.Logger) (func(), error) {
	interval := c.Duration("gc-interval")
	if interval < 0 {
		return nil, fmt.Errorf("--gc-interval may not be negative, not %s", interval)
	}
	if interval == 0 {
		return func() {}, nil
	}
	opts := gcOptions(c, "gc-", pool, s3, log)
	if opts.Grace < 0 || opts.UploadTTL < 0 {
		return nil, fmt.Errorf("--gc-grace and --gc-upload-ttl may not be negative")
	}
	if !(opts.DutyCycle > 0 && opts.DutyCycle <= 1) {
		return nil, fmt.Errorf("--gc-duty-cycle must be above 0 and at most 1, not %v", opts.DutyCycle)
	}
	stop := runEvery(ctx, interval, func(ctx context.Context) {
		s, err := gc.Run(ctx, opts)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			log.Error().Err(err).Int("removed", len(s.Removed)).Msg("garbage collection pass failed")
		default:
			s.Log(log)
		}
	})
	log.Info().Dur("interval", interval).Dur("grace", opts.Grace).Dur("upload_ttl", opts.UploadTTL).
		Bool("delete_untagged", opts.DeleteUntagged).Msg("periodic garbage collection on")
	return stop, nil
}
