// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/s3store"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// bucket writes registry content straight into a bucket, as pushes (ours
// or distribution's) leave it, damage included when a test asks.
type bucket struct {
	t  testing.TB
	s3 *s3store.Store
	l  s3store.Layout
}

// newBucket returns an empty bucket with the layout under a root prefix.
func newBucket(t testing.TB) *bucket {
	t.Helper()
	cfg := testenv.S3(t)
	s3, err := s3store.New(context.Background(), s3store.Config{Endpoint: cfg.Endpoint, Region: cfg.Region,
		Bucket: cfg.Bucket, PathStyle: true, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Root: "team/registry"})
	if err != nil {
		t.Fatal(err)
	}
	return &bucket{t: t, s3: s3, l: s3.Layout()}
}

func (b *bucket) put(key string, content []byte) {
	b.t.Helper()
	if err := b.s3.PutBytes(context.Background(), key, content); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bucket) del(key string) {
	b.t.Helper()
	if err := b.s3.Delete(context.Background(), key); err != nil {
		b.t.Fatal(err)
	}
}

// blob stores content in the blob store and links it into repo.
func (b *bucket) blob(repo string, content []byte) ocispec.Descriptor {
	b.t.Helper()
	d := digest.FromBytes(content)
	b.put(b.l.BlobData(d), content)
	b.put(b.l.LayerLink(repo, d), []byte(d))
	return ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: d, Size: int64(len(content))}
}

// manifest stores content as a manifest of repo (blob data and revision
// link) and returns its descriptor.
func (b *bucket) manifest(repo, mediaType string, content []byte) ocispec.Descriptor {
	b.t.Helper()
	d := digest.FromBytes(content)
	b.put(b.l.BlobData(d), content)
	b.put(b.l.RevisionLink(repo, d), []byte(d))
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
}

// image stores an image manifest of repo over a config and layers.
func (b *bucket) image(repo string, config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
	b.t.Helper()
	return b.manifest(repo, ocispec.MediaTypeImageManifest, mustJSON(b.t, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers}))
}

// index stores an image index of repo listing children.
func (b *bucket) index(repo string, children ...ocispec.Descriptor) ocispec.Descriptor {
	b.t.Helper()
	return b.manifest(repo, ocispec.MediaTypeImageIndex, mustJSON(b.t, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children}))
}

// tag points tag of repo at d, with the history link distribution writes.
func (b *bucket) tag(repo, tag string, d digest.Digest) {
	b.t.Helper()
	b.put(b.l.TagIndexLink(repo, tag, d), []byte(d))
	b.put(b.l.TagCurrentLink(repo, tag), []byte(d))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// config returns a config blob of repo, unique to seed.
func (b *bucket) config(repo, seed string) ocispec.Descriptor {
	d := b.blob(repo, []byte(`{"architecture":"amd64","os":"linux","seed":"`+seed+`"}`))
	d.MediaType = ocispec.MediaTypeImageConfig
	return d
}

// newIndex returns a migrated, empty database.
func newIndex(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := schema.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}

// logBuffer collects a run's log lines.
type logBuffer struct{ strings.Builder }

// run runs rebuild-db and fails the test if it could not finish.
func run(t testing.TB, db *pgxpool.Pool, b *bucket, mode Mode) (Summary, string) {
	t.Helper()
	var logs logBuffer
	s, err := Run(context.Background(), Options{DB: db, S3: b.s3, Mode: mode, Concurrency: 8,
		Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatalf("rebuild-db %s: %v\n%s", mode, err, logs.String())
	}
	return s, logs.String()
}

// dump is the index in canonical form.
func dump(t testing.TB, db *pgxpool.Pool) string {
	t.Helper()
	d, err := Dump(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// findings returns the counts of kinds that occurred, for comparison.
func findings(s Summary) map[Kind]int64 {
	out := map[Kind]int64{}
	for k, n := range s.Findings {
		if n > 0 {
			out[k] = n
		}
	}
	return out
}
