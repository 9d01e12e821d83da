// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Command regbench measures an OCI registry, and the S3 server under it
// as the physical baseline: blob pushes (monolithic, chunked) and pulls
// (streamed, redirected), manifest GET and HEAD by tag and digest, tags
// list, referrers and catalog, at several concurrency levels, reporting
// throughput, p50/p99 latency and, with -pid, the registry's peak RSS.
//
//	regbench -registry http://127.0.0.1:5000 -clients 1,8,32 -duration 5s
//	AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... regbench \
//	    -s3-endpoint http://127.0.0.1:7070 -s3-bucket b -workloads s3-get,s3-multipart
//
// See docs/performance.md for `make bench-compare`, which runs it against
// this registry and CNCF distribution side by side.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/ha-registry/ha-registry/internal/regbench"
	"github.com/ha-registry/ha-registry/s3store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := regbench.DefaultConfig
	var (
		registryURL = flag.String("registry", "", "registry base URL, e.g. http://127.0.0.1:5000")
		name        = flag.String("name", "registry", "label of the registry in the results")
		pid         = flag.Int("pid", 0, "local process of the registry, whose peak RSS to record")
		s3Endpoint  = flag.String("s3-endpoint", "", "S3 endpoint for the s3-* baselines (credentials from AWS_* variables)")
		s3Bucket    = flag.String("s3-bucket", "", "bucket for the s3-* baselines")
		s3Region    = flag.String("s3-region", "us-east-1", "S3 region")
		workloads   = flag.String("workloads", "all", "comma-separated workloads, or all (the s3-* ones need -s3-endpoint)")
		clients     = flag.String("clients", "1,8,32", "comma-separated concurrency levels")
		duration    = flag.Duration("duration", 5*time.Second, "how long each workload runs at each level")
		blobSize    = flag.String("blob-size", "64MiB", "size of pushed and pulled blobs (bytes, or with KiB/MiB/GiB)")
		asJSON      = flag.Bool("json", false, "print one JSON object per result")
	)
	flag.IntVar(&cfg.Tags, "tags", cfg.Tags, "tags the tags list answers")
	flag.IntVar(&cfg.Referrers, "referrers", cfg.Referrers, "artifacts referring to the image")
	flag.IntVar(&cfg.Repositories, "repositories", cfg.Repositories, "repositories the catalog lists")
	flag.Parse()

	size, err := parseSize(*blobSize)
	if err != nil {
		return fmt.Errorf("-blob-size: %w", err)
	}
	cfg.BlobSize = size
	levels, err := parseInts(*clients)
	if err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	ws, err := selectWorkloads(*workloads, *registryURL != "", *s3Endpoint != "")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var target *regbench.Target
	if *registryURL != "" {
		target = regbench.NewTarget(*name, *registryURL, *pid)
	}
	var s3 *s3store.Store
	if *s3Endpoint != "" {
		if *s3Bucket == "" {
			return errors.New("-s3-endpoint needs -s3-bucket")
		}
		s3, err = s3store.New(ctx, s3store.Config{Endpoint: *s3Endpoint, Region: *s3Region, Bucket: *s3Bucket, PathStyle: true})
		if err != nil {
			return err
		}
	}
	fx, err := regbench.Prepare(ctx, target, s3, cfg)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	failed := false
	for _, w := range ws {
		for _, c := range levels {
			r := regbench.Run(ctx, w.Op(fx), regbench.RunOptions{Clients: c, Duration: *duration, PID: *pid})
			r.Workload, r.Target = w.Name, *name
			if w.S3 {
				r.Target, r.PeakRSS = "s3", 0
			}
			if *asJSON {
				enc.Encode(r)
			} else {
				regbench.WriteResult(os.Stdout, r)
			}
			failed = failed || r.Errors > 0
		}
	}
	if failed {
		return errors.New("some operations failed")
	}
	return ctx.Err()
}

// selectWorkloads resolves the -workloads list.
func selectWorkloads(list string, registry, s3 bool) ([]regbench.Workload, error) {
	if !registry && !s3 {
		return nil, errors.New("nothing to measure: give -registry, -s3-endpoint or both")
	}
	var out []regbench.Workload
	if list == "all" {
		for _, w := range regbench.Workloads {
			if (w.S3 && s3) || (!w.S3 && registry) {
				out = append(out, w)
			}
		}
		return out, nil
	}
	for _, n := range strings.Split(list, ",") {
		w, ok := regbench.WorkloadByName(strings.TrimSpace(n))
		if !ok {
			return nil, fmt.Errorf("-workloads: no workload %q", n)
		}
		if w.S3 && !s3 || !w.S3 && !registry {
			return nil, fmt.Errorf("-workloads: %s needs %s", w.Name, map[bool]string{true: "-s3-endpoint", false: "-registry"}[w.S3])
		}
		out = append(out, w)
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = n, m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}
