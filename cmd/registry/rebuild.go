// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/rebuild"
)

// exitDrift is rebuild-db --verify's exit status when it found anything,
// apart from 1, which means it could not finish.
const exitDrift = 2

func rebuildCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "verify", Usage: "compare the index with the bucket without writing; exit 2 on any difference or damage"},
		&cli.BoolFlag{Name: "repair", Usage: "also delete index rows whose objects are gone from the bucket, each checked again first"},
		&cli.IntFlag{Name: "concurrency", Value: rebuild.DefaultConcurrency, EnvVars: []string{"REGISTRY_REBUILD_CONCURRENCY"},
			Usage: "S3 listing requests in flight, and as many object reads"},
	}
	flags = append(flags, databaseFlags()...)
	flags = append(flags, s3Flags()...)
	return &cli.Command{
		Name:  "rebuild-db",
		Usage: "rebuild the index from the bucket, or --verify it, or --repair it",
		Description: "Walks the bucket and writes into the index every repository, tag, manifest, referrer and blob link " +
			"it holds, skipping (and reporting) damaged content. It never writes to the bucket. Run it into an empty, " +
			"migrated database to recover from losing the database or to adopt a bucket written by CNCF distribution; " +
			"run it on a live index to reconcile it. One run at a time per database.",
		Flags:  flags,
		Action: rebuildDB,
	}
}

func rebuildDB(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	mode := rebuild.ModeRebuild
	switch {
	case c.Bool("verify") && c.Bool("repair"):
		return errors.New("--verify and --repair exclude each other")
	case c.Bool("verify"):
		mode = rebuild.ModeVerify
	case c.Bool("repair"):
		mode = rebuild.ModeRepair
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
	opts := rebuild.Options{DB: pool, S3: s3, Mode: mode, Concurrency: c.Int("concurrency"), Logger: log}
	if isTerminal(os.Stderr) {
		opts.Progress, opts.ProgressInterval = progressLine(os.Stderr), time.Second
	} else {
		opts.Progress, opts.ProgressInterval = progressLog(log), 10*time.Second
	}
	summary, err := rebuild.Run(ctx, opts)
	if err != nil {
		return err
	}
	summary.Log(log)
	summary.Print(c.App.Writer)
	if mode == rebuild.ModeVerify && summary.Problems()+summary.Drift() > 0 {
		return cli.Exit("rebuild-db --verify: the index and the bucket differ, or the bucket holds damaged content", exitDrift)
	}
	return nil
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine redraws one line on the terminal w.
func progressLine(w io.Writer) func(rebuild.Progress) {
	return func(p rebuild.Progress) {
		fmt.Fprintf(w, "\r\033[K%s: %d objects listed, %d manifests parsed, %d tags read, %.0f objects/s, %s",
			p.Phase, p.ObjectsListed, p.ManifestsParsed, p.TagsRead, p.Rate(), p.Elapsed.Round(time.Second))
		if p.Phase == "done" {
			fmt.Fprintln(w)
		}
	}
}

// progressLog logs progress as structured lines, for files and collectors.
func progressLog(log zerolog.Logger) func(rebuild.Progress) {
	return func(p rebuild.Progress) {
		log.Info().Str("phase", p.Phase).Int64("objects_listed", p.ObjectsListed).
			Int64("manifests_parsed", p.ManifestsParsed).Int64("tags_read", p.TagsRead).
			Float64("objects_per_second", p.Rate()).Dur("elapsed", p.Elapsed).Msg("rebuild-db progress")
	}
}
