// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
)

// benchPaths are the paths the hot requests take, by what they ask.
var benchPaths = []struct{ name, path string }{
	{"manifest-tag", "/v2/library/nginx/manifests/latest"},
	{"manifest-digest", "/v2/team/project/app/manifests/sha256:" + strings.Repeat("a", 64)},
	{"blob", "/v2/team/project/app/blobs/sha256:" + strings.Repeat("b", 64)},
	{"upload", "/v2/team/app/blobs/uploads/0123456789abcdef0123456789abcdef"},
	{"tags", "/v2/team/app/tags/list"},
	{"referrers", "/v2/team/app/referrers/sha256:" + strings.Repeat("c", 64)},
}

func BenchmarkParsePath(b *testing.B) {
	for _, p := range benchPaths {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parsePath(p.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServeHTTP measures the HTTP layer alone, routing, parsing,
// metrics and logging included, over the in-memory fake store.
func BenchmarkServeHTTP(b *testing.B) {
	st := newFakeStore()
	layerD := st.link("foo/bar", digest.SHA256, []byte("layer bytes"))
	configD := st.link("foo/bar", digest.SHA256, []byte(`{"architecture":"amd64","os":"linux"}`))
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + configD.String() + `","size":37},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + layerD.String() + `","size":11}]}`
	manifestD := digest.FromString(manifest)
	s := New(Options{Store: st, Logger: zerolog.Nop()})
	put := httptest.NewRequest(http.MethodPut, "/v2/foo/bar/manifests/latest", strings.NewReader(manifest))
	put.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, put)
	if rec.Code != http.StatusCreated {
		b.Fatalf("pushing the manifest: %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct{ name, method, path string }{
		{"get-manifest-tag", http.MethodGet, "/v2/foo/bar/manifests/latest"},
		{"head-manifest-digest", http.MethodHead, "/v2/foo/bar/manifests/" + manifestD.String()},
		{"head-blob", http.MethodHead, "/v2/foo/bar/blobs/" + layerD.String()},
		{"tags-list", http.MethodGet, "/v2/foo/bar/tags/list"},
		{"not-found", http.MethodGet, "/v2/foo/bar/manifests/missing"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(c.method, c.path, nil)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			for b.Loop() {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code >= 500 {
					b.Fatalf("%s %s: %d", c.method, c.path, rec.Code)
				}
			}
		})
	}
}
