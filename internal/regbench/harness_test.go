// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/chain"
	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry/httpapi"
	"github.com/ha-registry/ha-registry/s3store"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// registries serves one database and bucket twice in process: streaming
// blobs, and redirecting blob GETs to presigned S3 URLs.
func registries(t *testing.T) (streamed, redirected string, s3 *s3store.Store) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := schema.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.S3(t)
	s3, err = s3store.New(ctx, s3store.Config{Endpoint: cfg.Endpoint, Region: cfg.Region, Bucket: cfg.Bucket,
		PathStyle: true, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(redirect bool) string {
		st, err := store.New(pool, s3, store.Config{AutoMount: true, Redirect: redirect})
		if err != nil {
			t.Fatal(err)
		}
		empty := &policy.Policy{}
		api, _ := chain.New(chain.Config{Index: st, Policy: func() *policy.Policy { return empty }, Log: zerolog.Nop()})
		srv := httptest.NewServer(httpapi.New(httpapi.Options{Store: api, Logger: zerolog.Nop(), AutoMount: true}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	return serve(false), serve(true), s3
}

// TestHarness runs every workload briefly against a real registry and S3
// server and checks that the harness reports sane figures and no errors.
// It proves the harness works; it measures nothing.
func TestHarness(t *testing.T) {
	streamed, redirected, s3 := registries(t)
	ctx := t.Context()
	cfg := Config{BlobSize: 6<<20 + 3, Tags: 3, Referrers: 2, Repositories: 2, S3PartSize: 5 << 20}
	pid := os.Getpid()
	fx, err := Prepare(ctx, NewTarget("ours", streamed, pid), s3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fxRedirect := fx.WithTarget(NewTarget("ours-redirect", redirected, pid))
	for _, w := range Workloads {
		t.Run(w.Name, func(t *testing.T) {
			f := fx
			if w.Name == "pull-redirected" {
				f = fxRedirect
			}
			r := Run(ctx, w.Op(f), RunOptions{Clients: 2, Duration: 100 * time.Millisecond, MinOps: 1, MaxOps: 20, PID: pid})
			if r.Errors > 0 || r.Ops < 2 {
				t.Fatalf("%d operations, %d errors, first: %s", r.Ops, r.Errors, r.FirstError)
			}
			if r.P50 <= 0 || r.P99 < r.P50 || r.OpsPerSec() <= 0 || r.PeakRSS <= 0 {
				t.Errorf("figures: p50 %v, p99 %v, %.1f op/s, rss %d", r.P50, r.P99, r.OpsPerSec(), r.PeakRSS)
			}
			if w.Blob && r.Bytes != int64(r.Ops)*cfg.BlobSize {
				t.Errorf("%d bytes for %d operations of %d bytes", r.Bytes, r.Ops, cfg.BlobSize)
			}
			switch w.Name {
			case "pull-redirected":
				if r.RegistryBytes >= int64(r.Ops)*1024 {
					t.Errorf("the registry sent %d bytes for %d redirected pulls", r.RegistryBytes, r.Ops)
				}
			case "pull-streamed":
				if r.RegistryBytes != r.Bytes {
					t.Errorf("streamed %d bytes, but %d through the registry", r.Bytes, r.RegistryBytes)
				}
			}
			s := Summarize([]Result{r, r, r})
			if s.OpsPerSec != r.OpsPerSec() || s.P99 != r.P99 || s.Runs != 3 {
				t.Errorf("summary of three equal runs: %+v", s)
			}
		})
	}
}

func TestBlobSource(t *testing.T) {
	src, err := newBlobSource(1000, 7)
	if err != nil {
		t.Fatal(err)
	}
	a, b := src.blob(1), src.blob(2)
	if a.digest == b.digest {
		t.Fatal("two blobs with one digest")
	}
	all := make([]byte, a.Size())
	if n, err := a.ReadAt(all, 0); n != len(all) || err != nil {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if got := digest.FromBytes(all); got != a.digest {
		t.Errorf("digest %s, content hashes to %s", a.digest, got)
	}
	// Sections across the boundary read the same bytes.
	part := a.bytesOf(990, 10)
	if string(part) != string(all[990:]) {
		t.Errorf("bytesOf(990, 10) = %x, want %x", part, all[990:])
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	if p := Percentile(ds, 50); p != 50 {
		t.Errorf("p50 = %v", p)
	}
	if p := Percentile(ds, 99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := Percentile(ds[:1], 99); p != 1 {
		t.Errorf("p99 of one = %v", p)
	}
}
