// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// BenchmarkQuotaPush measures what a namespace quota costs manifest
// pushes: parallel PUTs of new manifests into eight repositories of one
// namespace holding 400 images, with no quota and then with one (whose
// lock serializes the PUTs under it). docs/policy.md has the figures.
func BenchmarkQuotaPush(b *testing.B) {
	ctx := context.Background()
	cur := policy.NewCurrent(nil)
	st := StartWith(b, store.Config{AutoMount: true, Quotas: cur.QuotasFor}).Store
	blob := func(repo string, content []byte, mediaType string) ocispec.Descriptor {
		d := digest.FromBytes(content)
		if _, err := st.PutBlob(ctx, repo, d, int64(len(content)), bytes.NewReader(content)); err != nil {
			b.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
	}
	var seq atomic.Int64
	push := func(repo string, config, layer ocispec.Descriptor) {
		content, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: config, Layers: []ocispec.Descriptor{layer}, Annotations: map[string]string{"seq": fmt.Sprint(seq.Add(1))}})
		if _, err := st.PutManifest(ctx, registry.ManifestPut{Repo: repo, MediaType: ocispec.MediaTypeImageManifest,
			Content: content, Digest: digest.FromBytes(content), Tags: []string{fmt.Sprintf("t%d", seq.Load())}}); err != nil {
			b.Fatal(err)
		}
	}
	type repoBlobs struct {
		name          string
		config, layer ocispec.Descriptor
	}
	var repos []repoBlobs
	for i := range 8 {
		name := fmt.Sprintf("bench/app-%d", i)
		r := repoBlobs{name: name,
			config: blob(name, []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","n":%d}`, i)), ocispec.MediaTypeImageConfig),
			layer:  blob(name, bytes.Repeat([]byte{byte(i)}, 4096), ocispec.MediaTypeImageLayer)}
		repos = append(repos, r)
		for range 50 {
			push(r.name, r.config, r.layer)
		}
	}
	for _, c := range []struct{ name, policy string }{
		{"no-quota", ""},
		{"quota", "quotas:\n  - match: bench/\n    maxBytes: 1TiB\n    maxTags: 1000000\n"},
	} {
		p, err := policy.Parse([]byte(c.policy))
		if err != nil {
			b.Fatal(err)
		}
		cur.Set(p)
		b.Run(c.name, func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := repos[next.Add(1)%int64(len(repos))]
					push(r.name, r.config, r.layer)
				}
			})
		})
	}
}
