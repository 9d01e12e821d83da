// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/registry"
)

// BenchmarkIndex measures the index queries the read endpoints make,
// through internal/store against the real test PostgreSQL: one image with
// 100 tags and 10 referrers, in a catalog of 50 repositories. They are
// the part of a manifest or listing request the registry waits on.
func BenchmarkIndex(b *testing.B) {
	ctx := context.Background()
	st := Start(b).Store
	push := func(repo string, content []byte) ocispec.Descriptor {
		d := digest.FromBytes(content)
		if _, err := st.PutBlob(ctx, repo, d, int64(len(content)), bytes.NewReader(content)); err != nil {
			b.Fatal(err)
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(content))}
	}
	manifest := func(repo string, config, layer ocispec.Descriptor, subject *ocispec.Descriptor, artifactType string, tags ...string) ocispec.Descriptor {
		content, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			ArtifactType: artifactType, Config: config, Layers: []ocispec.Descriptor{layer}, Subject: subject})
		d := digest.FromBytes(content)
		if _, err := st.PutManifest(ctx, registry.ManifestPut{Repo: repo, MediaType: ocispec.MediaTypeImageManifest,
			Content: content, Digest: d, Tags: tags}); err != nil {
			b.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(content))}
	}
	const repo = "bench/app"
	config := push(repo, []byte(`{"architecture":"amd64","os":"linux"}`))
	config.MediaType = ocispec.MediaTypeImageConfig
	layer := push(repo, []byte("layer bytes"))
	layer.MediaType = ocispec.MediaTypeImageLayer
	empty := push(repo, []byte("{}"))
	empty.MediaType = ocispec.MediaTypeEmptyJSON
	var tags []string
	for i := range 100 {
		tags = append(tags, fmt.Sprintf("v%d", i))
	}
	image := manifest(repo, config, layer, nil, "", tags...)
	for i := range 10 {
		manifest(repo, empty, empty, &image, fmt.Sprintf("application/vnd.bench.%d", i))
	}
	for i := range 50 {
		other := fmt.Sprintf("bench/repo-%02d", i)
		for _, d := range []digest.Digest{config.Digest, layer.Digest} {
			if _, _, err := st.MountBlob(ctx, other, repo, d); err != nil {
				b.Fatal(err)
			}
		}
		manifest(other, config, layer, nil, "", "latest")
	}

	for _, q := range []struct {
		name string
		run  func() error
	}{
		{"manifest-by-tag", func() error { _, err := st.GetManifest(ctx, repo, "v42", ""); return err }},
		{"manifest-by-digest", func() error { _, err := st.GetManifest(ctx, repo, "", image.Digest); return err }},
		{"stat-blob", func() error { _, err := st.StatBlob(ctx, repo, layer.Digest); return err }},
		{"tags-100", func() error { _, _, err := st.Tags(ctx, repo, "", 0); return err }},
		{"referrers-10", func() error { _, err := st.Referrers(ctx, repo, image.Digest, ""); return err }},
		{"catalog-51", func() error { _, _, err := st.Catalog(ctx, "", 0); return err }},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(q.name+"-parallel", func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.run(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
