// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/s3store"
)

// The benchmark bucket: benchRepos repositories of benchImages tagged
// images each. An image is a config and a layer of its own plus a layer
// its repository shares, so 8 objects an image (config, layer and
// manifest data with their links, a tag's current and index links) and 2
// a repository: 100,250 objects.
const (
	benchRepos  = 125
	benchImages = 100
)

var (
	benchOnce    sync.Once
	benchBucket  *bucket
	benchObjects int64
)

// largeBucket writes the benchmark bucket once per process, in parallel,
// straight through s3store.
func largeBucket(b *testing.B) *bucket {
	benchOnce.Do(func() {
		bk := newBucket(b)
		start := time.Now()
		var written atomic.Int64
		put := func(key string, content []byte) {
			if err := bk.s3.PutBytes(context.Background(), key, content); err != nil {
				b.Error(err)
			}
			written.Add(1)
		}
		jobs := make(chan [2]int)
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for j := range jobs {
					writeBenchImage(bk, put, j[0], j[1])
				}
			})
		}
		for r := range benchRepos {
			for i := range benchImages {
				jobs <- [2]int{r, i}
			}
		}
		close(jobs)
		wg.Wait()
		benchBucket, benchObjects = bk, written.Load()
		b.Logf("wrote %d objects in %s", benchObjects, time.Since(start).Round(time.Second))
	})
	if benchBucket == nil {
		b.Fatal("the benchmark bucket could not be written")
	}
	return benchBucket
}

// writeBenchImage writes image i of repository r (and, for the first,
// the repository's shared layer).
func writeBenchImage(bk *bucket, put func(string, []byte), r, i int) {
	repo := fmt.Sprintf("bench/repo-%03d", r)
	blob := func(content []byte, mediaType string) ocispec.Descriptor {
		d := digest.FromBytes(content)
		put(bk.l.BlobData(d), content)
		put(bk.l.LayerLink(repo, d), []byte(d))
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
	}
	sharedContent := []byte("shared layer of " + repo)
	shared := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(sharedContent), Size: int64(len(sharedContent))}
	if i == 0 {
		blob(sharedContent, ocispec.MediaTypeImageLayer)
	}
	config := blob([]byte(fmt.Sprintf(`{"os":"linux","architecture":"amd64","image":"%s/%d"}`, repo, i)), ocispec.MediaTypeImageConfig)
	layer := blob([]byte(fmt.Sprintf("layer %d of %s", i, repo)), ocispec.MediaTypeImageLayer)
	content := mustJSON(bk.t, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config, Layers: []ocispec.Descriptor{shared, layer}})
	d := digest.FromBytes(content)
	put(bk.l.BlobData(d), content)
	put(bk.l.RevisionLink(repo, d), []byte(d))
	tag := fmt.Sprintf("v%d", i)
	put(bk.l.TagIndexLink(repo, tag, d), []byte(d))
	put(bk.l.TagCurrentLink(repo, tag), []byte(d))
}

// BenchmarkRebuild rebuilds an index of 100,250 objects into an empty
// database, next to what only the bucket's side costs: the same parallel
// listing alone, and with every manifest read.
//
//	go test -run '^$' -bench Rebuild -benchtime 3x ./rebuild
func BenchmarkRebuild(b *testing.B) {
	bk := largeBucket(b)
	ctx := context.Background()
	var floor, rebuilt time.Duration

	b.Run("list", func(b *testing.B) {
		for range b.N {
			bareWalk(b, bk, false)
		}
		b.ReportMetric(float64(benchObjects)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	})
	b.Run("list+manifests", func(b *testing.B) {
		for range b.N {
			bareWalk(b, bk, true)
		}
		floor = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(benchObjects)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	})
	b.Run("rebuild", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			db := newIndex(b)
			b.StartTimer()
			s, err := Run(ctx, Options{DB: db, S3: bk.s3, Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			if s.ObjectsListed != benchObjects || s.Manifests != benchRepos*benchImages || s.Problems() != 0 {
				b.Fatalf("rebuilt %d objects, %d manifests, %d problems", s.ObjectsListed, s.Manifests, s.Problems())
			}
		}
		rebuilt = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(benchObjects)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	})
	if floor > 0 && rebuilt > 0 {
		b.Logf("%d objects: listing plus manifest reads %s, rebuild %s, ratio %.2f",
			benchObjects, floor.Round(time.Millisecond), rebuilt.Round(time.Millisecond), rebuilt.Seconds()/floor.Seconds())
	}
}

// bareWalk lists the bucket with rebuild-db's parallel walk and, with
// reads, fetches every manifest once with as many readers: the S3 work a
// rebuild cannot avoid, without parsing, tag reads or PostgreSQL.
func bareWalk(b *testing.B, bk *bucket, reads bool) {
	ctx := context.Background()
	var listed atomic.Int64
	var seen sync.Map
	jobs := make(chan digest.Digest, 4*DefaultConcurrency)
	var readers sync.WaitGroup
	for range DefaultConcurrency {
		readers.Go(func() {
			for d := range jobs {
				if _, err := bk.s3.GetBytes(ctx, bk.l.BlobData(d)); err != nil {
					b.Error(err)
				}
			}
		})
	}
	w := &walker{s3: bk.s3, workers: DefaultConcurrency, emit: func(ctx context.Context, o s3store.ObjectInfo) error {
		listed.Add(1)
		info, ok := bk.l.ParseKey(o.Key)
		if reads && ok && info.Kind == s3store.KeyRevisionLink {
			if _, dup := seen.LoadOrStore(info.Digest, true); !dup {
				jobs <- info.Digest
			}
		}
		return nil
	}}
	err := w.walk(ctx, bk.l)
	close(jobs)
	readers.Wait()
	if err != nil {
		b.Fatal(err)
	}
	if listed.Load() != benchObjects {
		b.Fatalf("listed %d objects of %d", listed.Load(), benchObjects)
	}
}
