// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzParseManifest checks that no document panics the manifest parser and
// that every descriptor of an accepted manifest has a digest that parses,
// since the index and GC key rows by these digests.
func FuzzParseManifest(f *testing.F) {
	const (
		cfg   = `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}`
		layer = `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e","size":0}`
		child = `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":2,"platform":{"os":"linux","architecture":"amd64"}}`
	)
	seeds := []struct{ contentType, body string }{
		{MediaTypeOCIManifest, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + cfg + `,"layers":[` + layer + `]}`},
		{"", `{"schemaVersion":2,"config":` + cfg + `,"layers":[]}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"artifactType":"application/x","config":` + cfg + `,"layers":[` + layer + `],"subject":` + child + `}`},
		{MediaTypeOCIIndex, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + child + `]}`},
		{MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":` + cfg + `,"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:abc","size":1}]}`},
		{MediaTypeDockerList, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`},
		{MediaTypeDockerSchema1Signed, `{"schemaVersion":1,"fsLayers":[]}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":-1}}`},
		{MediaTypeOCIManifest, `{"schemaVersion":2} {}`},
		{"", `null`},
		{"", `{"schemaVersion":3}`},
		{"", ``},
	}
	for _, s := range seeds {
		f.Add(s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		m, err := ParseManifest(contentType, body)
		if err != nil {
			if AsError(err) == ErrUnknown {
				t.Fatalf("ParseManifest error %v is not a registry error", err)
			}
			return
		}
		check := func(what string, d digest.Digest) {
			if _, err := digest.Parse(string(d)); err != nil {
				t.Fatalf("accepted manifest has a %s digest %q that does not parse: %v", what, d, err)
			}
		}
		for _, b := range m.Blobs {
			check("blob", b.Digest)
		}
		for _, c := range m.Children {
			check("child", c.Digest)
		}
		if m.Subject != nil {
			check("subject", m.Subject.Digest)
		}
	})
}
