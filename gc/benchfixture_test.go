// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/s3store"
)

// The benchmark's registry is written straight into the database (COPY)
// and the bucket (parallel puts), as pushes would leave it: benchRepos
// repositories of benchImages tagged images, each a config and
// benchLayers layers of its own. Each round adds garbage, two days old:
// blobs linked into a repository that no manifest uses, and blobs no
// repository links.
const (
	benchRepos         = 100
	benchImages        = 100
	benchLayers        = 7
	benchGarbageLinked = 10_000
	benchGarbageBare   = 10_000
)

// benchRegistry is the benchmark's database and bucket.
type benchRegistry struct {
	db      *pgxpool.Pool
	s3      *s3store.Store
	repoIDs []int64
	blobs   int // blob rows written so far, garbage included
	objects int // bucket objects written so far
}

var (
	benchOnce sync.Once
	benchReg  *benchRegistry
)

// largeRegistry writes the benchmark's registry once per process.
func largeRegistry(b *testing.B) *benchRegistry {
	benchOnce.Do(func() {
		ctx := context.Background()
		cfg, err := pgxpool.ParseConfig(testenv.Postgres(b))
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns = 10 // as a replica's main pool
		db, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := schema.Migrate(ctx, db); err != nil {
			b.Fatal(err)
		}
		s3cfg := testenv.S3(b)
		s3, err := s3store.New(ctx, s3store.Config{Endpoint: s3cfg.Endpoint, Region: s3cfg.Region, Bucket: s3cfg.Bucket,
			PathStyle: true, AccessKey: s3cfg.AccessKey, SecretKey: s3cfg.SecretKey, Root: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		r := &benchRegistry{db: db, s3: s3}
		start := time.Now()
		if err := r.writeImages(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("wrote %d blobs, %d objects in %s", r.blobs, r.objects, time.Since(start).Round(time.Second))
		benchReg = r
	})
	if benchReg == nil {
		b.Fatal("the benchmark registry could not be written")
	}
	return benchReg
}

// rows collects the rows of one table for COPY.
type rows struct {
	table string
	cols  []string
	vals  [][]any
}

func (t *rows) add(vals ...any) { t.vals = append(t.vals, vals) }

// copyRows copies tables in order, in one transaction.
func copyRows(ctx context.Context, db *pgxpool.Pool, tables ...*rows) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, t := range tables {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, pgx.CopyFromRows(t.vals)); err != nil {
				return fmt.Errorf("copying %s: %w", t.table, err)
			}
		}
		return nil
	})
}

// putAll writes objects with 64 requests in flight.
func (r *benchRegistry) putAll(ctx context.Context, objects map[string][]byte) error {
	jobs := make(chan [2]any)
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for j := range jobs {
				if err := r.s3.PutBytes(ctx, j[0].(string), j[1].([]byte)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for k, v := range objects {
		jobs <- [2]any{k, v}
	}
	close(jobs)
	wg.Wait()
	r.objects += len(objects)
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// writeImages writes the live part: repositories, images, tags.
func (r *benchRegistry) writeImages(ctx context.Context) error {
	for i := range benchRepos {
		var id int64
		if err := r.db.QueryRow(ctx, `INSERT INTO repositories (name) VALUES ($1) RETURNING id`,
			fmt.Sprintf("bench/repo-%03d", i)).Scan(&id); err != nil {
			return err
		}
		r.repoIDs = append(r.repoIDs, id)
	}
	l := r.s3.Layout()
	for rep, repoID := range r.repoIDs {
		repo := fmt.Sprintf("bench/repo-%03d", rep)
		blobs := &rows{table: "blobs", cols: []string{"digest", "size"}}
		links := &rows{table: "repository_blobs", cols: []string{"repository_id", "digest"}}
		manifests := &rows{table: "manifests", cols: []string{"repository_id", "digest", "media_type", "content"}}
		refs := &rows{table: "manifest_blobs", cols: []string{"repository_id", "manifest_digest", "blob_digest"}}
		tags := &rows{table: "tags", cols: []string{"repository_id", "name", "manifest_digest"}}
		objects := map[string][]byte{}
		for img := range benchImages {
			var descs []ocispec.Descriptor
			for j := range benchLayers + 1 {
				content := []byte(fmt.Sprintf("bench blob %d/%d/%d", rep, img, j))
				d := digest.FromBytes(content)
				blobs.add(d.String(), int64(len(content)))
				links.add(repoID, d.String())
				objects[l.BlobData(d)], objects[l.LayerLink(repo, d)] = content, []byte(d)
				descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(content))})
			}
			descs[0].MediaType = ocispec.MediaTypeImageConfig
			content, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
				MediaType: ocispec.MediaTypeImageManifest, Config: descs[0], Layers: descs[1:]})
			if err != nil {
				return err
			}
			md := digest.FromBytes(content)
			blobs.add(md.String(), int64(len(content)))
			manifests.add(repoID, md.String(), ocispec.MediaTypeImageManifest, content)
			for _, desc := range descs {
				refs.add(repoID, md.String(), desc.Digest.String())
			}
			tag := fmt.Sprintf("v%d", img)
			tags.add(repoID, tag, md.String())
			objects[l.BlobData(md)], objects[l.RevisionLink(repo, md)] = content, []byte(md)
			objects[l.TagCurrentLink(repo, tag)], objects[l.TagIndexLink(repo, tag, md)] = []byte(md), []byte(md)
		}
		if err := r.putAll(ctx, objects); err != nil {
			return err
		}
		if err := copyRows(ctx, r.db, blobs, links, manifests, refs, tags); err != nil {
			return err
		}
		r.blobs += len(blobs.vals)
	}
	_, err := r.db.Exec(ctx, `ANALYZE`)
	return err
}

// addGarbage writes a round's garbage: links no manifest uses (with the
// mark a pass two days ago left, so they are due under the default grace)
// and their blobs, and blobs no repository links.
func (r *benchRegistry) addGarbage(ctx context.Context, round int) error {
	l := r.s3.Layout()
	old := time.Now().Add(-48 * time.Hour)
	blobs := &rows{table: "blobs", cols: []string{"digest", "size", "created_at"}}
	links := &rows{table: "repository_blobs", cols: []string{"repository_id", "digest", "created_at"}}
	marks := &rows{table: "gc_unreferenced", cols: []string{"kind", "repository_id", "digest", "since"}}
	objects := map[string][]byte{}
	for i := range benchGarbageLinked + benchGarbageBare {
		content := []byte(fmt.Sprintf("bench garbage %d/%d", round, i))
		d := digest.FromBytes(content)
		blobs.add(d.String(), int64(len(content)), old)
		objects[l.BlobData(d)] = content
		if i < benchGarbageLinked {
			rep := i % len(r.repoIDs)
			links.add(r.repoIDs[rep], d.String(), old)
			marks.add("blob-link", r.repoIDs[rep], d.String(), old)
			objects[l.LayerLink(fmt.Sprintf("bench/repo-%03d", rep), d)] = []byte(d)
		}
	}
	if err := r.putAll(ctx, objects); err != nil {
		return err
	}
	if err := copyRows(ctx, r.db, blobs, links, marks); err != nil {
		return err
	}
	r.blobs += len(blobs.vals)
	_, err := r.db.Exec(ctx, `ANALYZE`)
	return err
}
