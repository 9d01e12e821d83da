// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkUploadHash is the digest verification of a blob upload: both
// algorithms while the digest is unknown (PATCH), one once the client has
// named it (the PUT that carries the body).
func BenchmarkUploadHash(b *testing.B) {
	chunk := make([]byte, 1<<20)
	for _, c := range []struct {
		name string
		only digest.Algorithm
	}{{"both", ""}, {"sha256-only", digest.SHA256}, {"sha512-only", digest.SHA512}} {
		b.Run(c.name, func(b *testing.B) {
			h := newUploadHash()
			if c.only != "" {
				h.keepOnly(c.only)
			}
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				h.Write(chunk)
			}
		})
	}
}

func TestKeepOnly(t *testing.T) {
	content := []byte("some blob content")
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		h := newUploadHash()
		h.keepOnly(alg)
		h.Write(content)
		if got, want := h.digest(alg), alg.FromBytes(content); got != want {
			t.Errorf("%s: digest %s, want %s", alg, got, want)
		}
	}
}
