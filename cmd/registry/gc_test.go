// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/gc"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	oci "github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/s3store"
)

// gcFixture pushes, through the store, a tagged image, an untagged one
// and a blob no manifest uses into the database and bucket of dbURL and
// s3cfg under prefix.
func gcFixture(t *testing.T, dbURL string, s3cfg testenv.S3Config, prefix string) {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s3, err := s3store.New(ctx, s3store.Config{Endpoint: s3cfg.Endpoint, Region: s3cfg.Region, Bucket: s3cfg.Bucket,
		PathStyle: true, AccessKey: s3cfg.AccessKey, SecretKey: s3cfg.SecretKey, Root: prefix})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(db, s3, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	blob := func(content string) ocispec.Descriptor {
		d := digest.FromString(content)
		if _, err := st.PutBlob(ctx, "cli/gc", d, int64(len(content)), strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: d, Size: int64(len(content))}
	}
	image := func(seed string, tags ...string) {
		content, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: blob(`{"seed":"` + seed + `"}`), Layers: []ocispec.Descriptor{}})
		if _, err := st.PutManifest(ctx, oci.ManifestPut{Repo: "cli/gc", MediaType: ocispec.MediaTypeImageManifest,
			Content: content, Digest: digest.FromBytes(content), Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	image("kept", "v1")
	image("untagged")
	blob("a blob no manifest uses")
}

// TestGCCommand: registry gc as an operator runs it. --dry-run lists
// exactly what the pass then removes, the flags' environment variables
// work, a second pass finds nothing, and a pass while another holds the
// lock says so and exits 0.
func TestGCCommand(t *testing.T) {
	s3cfg := testenv.S3(t)
	dbURL := testenv.Postgres(t)
	e := envFor(dbURL, s3cfg, "gc/prefix")
	e = migrateSplit(t, e)
	gcFixture(t, dbURL, s3cfg, "gc/prefix")

	dry := mustRegistry(t, e, "gc", "--dry-run", "--grace", "0s", "--delete-untagged")
	real := mustRegistry(t, append(e, "REGISTRY_GC_GRACE=0s", "REGISTRY_GC_DELETE_UNTAGGED=true"), "gc")
	wouldRemove, removed := removals(dry, "would remove "), removals(real, "removed ")
	// The untagged manifest, its config's link and blob, its own blob,
	// and the unused blob's link and blob.
	if len(removed) != 6 {
		t.Fatalf("the pass removed %d items, want 6:\n%s", len(removed), real)
	}
	if !slices.Equal(wouldRemove, removed) {
		t.Errorf("--dry-run listed:\n%s\nthe pass removed:\n%s", strings.Join(wouldRemove, "\n"), strings.Join(removed, "\n"))
	}
	for _, out := range []string{dry, real} {
		if !strings.Contains(out, "1 manifest, 2 blob-link, 3 blob, 0 upload, 0 multipart-upload, 0 unknown-object: 6 bucket objects") {
			t.Errorf("the totals line is missing or wrong:\n%s", out)
		}
	}
	if again := mustRegistry(t, e, "gc", "--grace", "0s", "--delete-untagged"); len(removals(again, "removed ")) != 0 {
		t.Errorf("a second pass removed something:\n%s", again)
	}

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, gc.LockKey); err != nil {
		t.Fatal(err)
	}
	if out := mustRegistry(t, e, "gc"); !strings.Contains(out, "gc: skipped: another garbage collection pass is running") {
		t.Errorf("gc while the lock is held:\n%s", out)
	}
}

// removals returns the lines of out that start with verb, without it.
func removals(out, verb string) []string {
	var items []string
	for _, l := range strings.Split(out, "\n") {
		if item, ok := strings.CutPrefix(l, verb); ok {
			items = append(items, item)
		}
	}
	slices.Sort(items)
	return items
}

// TestServeRunsGC: two serve processes with --gc-interval both tick; while
// another runner holds the lock both log that they skipped, and once it is
// free one of them removes the garbage and says so in its log and metrics.
func TestServeRunsGC(t *testing.T) {
	s3cfg := testenv.S3(t)
	dbURL := testenv.Postgres(t)
	e := envFor(dbURL, s3cfg, "gc/serve")
	e = migrateSplit(t, e)
	gcFixture(t, dbURL, s3cfg, "gc/serve")
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, gc.LockKey); err != nil {
		t.Fatal(err)
	}

	type replica struct {
		addr string
		logs *syncBuffer
	}
	var replicas []replica
	for range 2 {
		addr := testenv.FreeAddr(t)
		cmd := exec.Command(binary, "serve", "--listen", addr, "--gc-interval", "200ms")
		cmd.Env = append(e, "REGISTRY_GC_GRACE=0s", "REGISTRY_GC_DELETE_UNTAGGED=true")
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		replicas = append(replicas, replica{addr, logs})
	}
	waitLog := func(r replica, want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(r.logs.String(), want); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never logged %q; logs:\n%s", r.addr, want, r.logs.String())
			}
		}
	}
	for _, r := range replicas {
		waitLog(r, `"reason":"another garbage collection pass is running"`)
	}
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, gc.LockKey); err != nil {
		t.Fatal(err)
	}
	removedBy := ""
	for deadline := time.Now().Add(20 * time.Second); removedBy == ""; time.Sleep(50 * time.Millisecond) {
		for _, r := range replicas {
			if strings.Contains(r.logs.String(), `"removed":{"manifest":1,"blob-link":2,"blob":3`) {
				removedBy = r.addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replica removed the garbage; logs:\n%s\n%s", replicas[0].logs.String(), replicas[1].logs.String())
		}
	}
	_, metrics := get(t, "http://"+removedBy+"/metrics")
	for _, want := range []string{`registry_gc_passes_total{result="completed"}`, `registry_gc_passes_total{result="skipped"}`,
		`registry_gc_removed_total{kind="blob"} 3`, `registry_gc_removed_bytes_total{kind="blob"}`, "registry_gc_pass_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics of %s lacks %s", removedBy, want)
		}
	}
}
