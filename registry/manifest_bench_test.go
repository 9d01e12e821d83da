// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func BenchmarkParseManifest(b *testing.B) {
	desc := func(mediaType string, i int) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromString(fmt.Sprint(i)), Size: int64(1000 + i)}
	}
	var layers []ocispec.Descriptor
	for i := range 10 {
		layers = append(layers, desc(ocispec.MediaTypeImageLayerGzip, i))
	}
	image, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(ocispec.MediaTypeImageConfig, 100), Layers: layers})
	var platforms []ocispec.Descriptor
	for i := range 6 {
		d := desc(ocispec.MediaTypeImageManifest, 200+i)
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: fmt.Sprint("arch", i)}
		platforms = append(platforms, d)
	}
	index, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: platforms})
	for _, c := range []struct {
		name, mediaType string
		content         []byte
	}{
		{"image-10-layers", ocispec.MediaTypeImageManifest, image},
		{"index-6-platforms", ocispec.MediaTypeImageIndex, index},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.content)))
			for b.Loop() {
				if _, err := ParseManifest(c.mediaType, c.content); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkManifestDigest is the digest a manifest push verifies its body
// against.
func BenchmarkManifestDigest(b *testing.B) {
	content := make([]byte, 4<<10)
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		b.Run(string(alg), func(b *testing.B) {
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				alg.FromBytes(content)
			}
		})
	}
}
