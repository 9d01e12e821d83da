// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/scan"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	oci "github.com/ha-registry/ha-registry/registry"
)

// scannerFlags are what registry scan and serve's periodic scans share.
func scannerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "osv-scanner", Value: "osv-scanner", EnvVars: []string{"REGISTRY_OSV_SCANNER"},
			Usage: "the osv-scanner program"},
		&cli.StringFlag{Name: "scan-db", EnvVars: []string{"REGISTRY_SCAN_DB"},
			Usage: "scan offline against the OSV databases in this directory (osv-scalibr/<Ecosystem>/all.zip); default: ask osv.dev"},
		&cli.StringFlag{Name: "scan-max-size", Value: "2GiB", EnvVars: []string{"REGISTRY_SCAN_MAX_SIZE"},
			Usage: "larger images (by their layers) are marked unscannable instead of scanned"},
		&cli.IntFlag{Name: "scan-concurrency", Value: 2, EnvVars: []string{"REGISTRY_SCAN_CONCURRENCY"},
			Usage: "scans a process runs at once"},
	}
}

// newWorker builds the scan worker from the flags.
func newWorker(c *cli.Context, st *store.Store, log zerolog.Logger) (*scan.Worker, error) {
	max, err := policy.ParseSize(c.String("scan-max-size"))
	if err != nil {
		return nil, fmt.Errorf("--scan-max-size: %w", err)
	}
	if c.Int("scan-concurrency") < 1 {
		return nil, fmt.Errorf("--scan-concurrency must be at least 1")
	}
	return &scan.Worker{Store: st, Scanner: &scan.OSV{Binary: c.String("osv-scanner"), DBPath: c.String("scan-db")},
		MaxSize: max, Concurrency: c.Int("scan-concurrency"), Log: log}, nil
}

func scanCommand() *cli.Command {
	flags := storeJobFlags(append([]cli.Flag{
		&cli.BoolFlag{Name: "report", Usage: "print the findings of IMAGE's last scan instead of scanning"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON for machines instead of a table"},
	}, scannerFlags()...)...)
	return &cli.Command{
		Name:      "scan",
		Usage:     "scan images for known vulnerabilities: every image not scanned with the current database, or IMAGE now",
		ArgsUsage: "[REPOSITORY:TAG | REPOSITORY@DIGEST]",
		Description: "Without IMAGE, scans every image never scanned or scanned with other vulnerability data, and exits " +
			"(serve --scan-interval does the same periodically). With IMAGE, scans it (every platform of an index) at once. " +
			"With --report, prints IMAGE's findings. Results are kept in the index and, as OCI artifacts, in the bucket (docs/scan.md).",
		Flags:  flags,
		Action: runScan,
	}
}

func runScan(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	if c.NArg() > 1 {
		return fmt.Errorf("give at most one image")
	}
	st, pool, err := openStore(c.Context, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	if c.Bool("report") {
		if c.NArg() != 1 {
			return fmt.Errorf("--report needs an image")
		}
		return printReport(c, st, c.Args().First())
	}
	w, err := newWorker(c, st, log)
	if err != nil {
		return err
	}
	var outcomes []scan.Outcome
	if c.NArg() == 1 {
		repo, tag, d, err := parseImage(c.Args().First())
		if err != nil {
			return err
		}
		outcomes, err = w.ScanNow(c.Context, repo, tag, d)
		if err != nil {
			return err
		}
	} else if outcomes, err = w.RunOnce(c.Context); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, outcomes)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSTATUS\tCRITICAL\tHIGH\tMEDIUM\tLOW\tUNKNOWN\tNOTE")
	for _, o := range outcomes {
		r := o.Result
		fmt.Fprintf(tw, "%s@%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", o.Repository, o.Digest, r.Status, r.Critical, r.High, r.Medium, r.Low, r.Unknown, r.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "scanned %d images\n", len(outcomes))
	return nil
}

// printReport prints the findings of an image's last scan (every image of
// an index).
func printReport(c *cli.Context, st *store.Store, ref string) error {
	repo, tag, d, err := parseImage(ref)
	if err != nil {
		return err
	}
	m, err := st.GetManifest(c.Context, repo, tag, d)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	type entry struct {
		Digest   string              `json:"digest"`
		Scan     *store.ScanResult   `json:"scan"`
		Findings []store.ScanFinding `json:"findings"`
	}
	var entries []entry
	for _, td := range imagesOf(m) {
		res, ok, err := st.ScanOf(c.Context, repo, td)
		if err != nil {
			return err
		}
		e := entry{Digest: td.String(), Findings: []store.ScanFinding{}}
		if ok {
			e.Scan = &res
			if e.Findings, err = st.ScanFindings(c.Context, repo, td); err != nil {
				return err
			}
		}
		entries = append(entries, e)
	}
	w := c.App.Writer
	if c.Bool("json") {
		return printJSON(w, entries)
	}
	for _, e := range entries {
		if e.Scan == nil {
			fmt.Fprintf(w, "%s@%s: never scanned\n", repo, e.Digest)
			continue
		}
		fmt.Fprintf(w, "%s@%s: %s by %s (database %s) at %s\n", repo, e.Digest, e.Scan.Status, e.Scan.Scanner, e.Scan.DBVersion,
			e.Scan.ScannedAt.UTC().Format(time.RFC3339))
		if len(e.Findings) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tSEVERITY\tSCORE\tPACKAGE\tVERSION\tECOSYSTEM\tALIASES")
		for _, f := range e.Findings {
			fmt.Fprintf(tw, "  %s\t%s\t%.1f\t%s\t%s\t%s\t%v\n", f.ID, f.Severity, f.Score, f.Package, f.Version, f.Ecosystem, f.Aliases)
		}
		tw.Flush()
	}
	return nil
}

// startScans scans what is queued every interval, one pass at a time per
// replica; replicas share the queue through leases.
func startScans(ctx context.Context, c *cli.Context, pool *pgxpool.Pool, st *store.Store, log zerolog.Logger) (func(), error) {
	interval := c.Duration("scan-interval")
	if interval < 0 {
		return nil, fmt.Errorf("--scan-interval may not be negative, not %s", interval)
	}
	if interval == 0 {
		return func() {}, nil
	}
	w, err := newWorker(c, st, log)
	if err != nil {
		return nil, err
	}
	log.Info().Dur("interval", interval).Str("db", c.String("scan-db")).Msg("periodic vulnerability scans on")
	return runEvery(ctx, interval, func(ctx context.Context) {
		if _, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("scan pass failed")
		}
	}), nil
}

// imagesOf lists the images of m: itself, or an index's.
func imagesOf(m oci.StoredManifest) []digest.Digest {
	parsed, err := oci.ParseManifest(m.MediaType, m.Content)
	if err != nil || len(parsed.Children) == 0 {
		return []digest.Digest{m.Digest}
	}
	var ds []digest.Digest
	for _, c := range parsed.Children {
		ds = append(ds, c.Digest)
	}
	return ds
}
