// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestBadInput sends what a careless or hostile client sends and checks
// each answer's status and error code, and that none changed any state.
func TestBadInput(t *testing.T) {
	s := Start(t)
	// Some content to be refused against: a blob, a manifest, an upload.
	layer := []byte("layer bytes")
	ld := digest.FromBytes(layer)
	mustStatus(t, s, "POST", "/v2/bad/repo/blobs/uploads/?digest="+ld.String(), nil, layer, 201)
	config := []byte("{}")
	cd := digest.FromBytes(config)
	mustStatus(t, s, "POST", "/v2/bad/repo/blobs/uploads/?digest="+cd.String(), nil, config, 201)
	resp, _ := call(t, s, "POST", "/v2/bad/repo/blobs/uploads/", nil, nil)
	upload := resp.Header.Get("Location")
	if upload == "" {
		t.Fatal("no upload location")
	}
	mustStatus(t, s, "PATCH", upload, map[string]string{"Content-Range": "0-2"}, []byte("abc"), 202)

	missing := digest.FromString("never pushed")
	manifest := func(layers ...digest.Digest) []byte {
		m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)}}
		var ls []map[string]any
		for _, l := range layers {
			ls = append(ls, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": 11})
		}
		m["layers"] = ls
		b, _ := json.Marshal(m)
		return b
	}
	ociManifest := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
	huge := append(manifest(ld), bytes.Repeat([]byte(" "), 4<<20)...)
	schema1 := []byte(`{"schemaVersion":1,"name":"bad/repo","tag":"v1","fsLayers":[]}`)

	before := snapshot(t, s)
	for _, c := range []struct {
		name, method, path string
		headers            map[string]string
		body               []byte
		status             int
		code               string
	}{
		{"uppercase name", "GET", "/v2/Bad/repo/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"dot-dot", "GET", "/v2/bad/../repo/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"encoded dot-dot", "GET", "/v2/bad/%2e%2e/repo/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"encoded slash", "GET", "/v2/bad%2Frepo/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"double-encoded", "GET", "/v2/bad/%252e%252e/repo/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"push under traversal", "POST", "/v2/bad/%2e%2e/%2e%2e/etc/blobs/uploads/", nil, nil, 400, "NAME_INVALID"},
		{"malformed digest", "GET", "/v2/bad/repo/blobs/sha256:xyz", nil, nil, 400, "DIGEST_INVALID"},
		{"unknown algorithm", "GET", "/v2/bad/repo/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400, "DIGEST_INVALID"},
		{"digest mismatch", "POST", "/v2/bad/repo/blobs/uploads/?digest=" + missing.String(), nil, []byte("other bytes"), 400, "DIGEST_INVALID"},
		{"mismatch on finish", "PUT", upload + "?digest=" + missing.String(), nil, nil, 400, "DIGEST_INVALID"},
		{"wrong content-range", "PATCH", upload, map[string]string{"Content-Range": "10-12"}, []byte("abc"), 416, "BLOB_UPLOAD_INVALID"},
		{"unknown upload", "PATCH", "/v2/bad/repo/blobs/uploads/5b1c2a3e-0000-4000-8000-000000000000", nil, []byte("x"), 404, "BLOB_UPLOAD_UNKNOWN"},
		{"garbage upload id", "PATCH", "/v2/bad/repo/blobs/uploads/nonsense", nil, []byte("x"), 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload of another repo", "GET", strings.Replace(upload, "/bad/repo/", "/bad/other/", 1), nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"manifest too large", "PUT", "/v2/bad/repo/manifests/v1", ociManifest, huge, 413, "MANIFEST_INVALID"},
		{"invalid json", "PUT", "/v2/bad/repo/manifests/v1", ociManifest, []byte(`{"schemaVersion":2,`), 400, "MANIFEST_INVALID"},
		{"schema1", "PUT", "/v2/bad/repo/manifests/v1", map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, schema1, 400, "MANIFEST_INVALID"},
		{"missing blob", "PUT", "/v2/bad/repo/manifests/v1", ociManifest, manifest(ld, missing), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"blob of another repo", "PUT", "/v2/bad/other/manifests/v1", ociManifest, manifest(ld), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"manifest digest mismatch", "PUT", "/v2/bad/repo/manifests/" + missing.String(), ociManifest, manifest(ld), 400, "DIGEST_INVALID"},
		{"invalid tag", "PUT", "/v2/bad/repo/manifests/-tag", ociManifest, manifest(ld), 400, "MANIFEST_INVALID"},
		{"invalid tag parameter", "PUT", "/v2/bad/repo/manifests/" + digest.FromBytes(manifest(ld)).String() + "?tag=.bad", ociManifest, manifest(ld), 400, ""},
		{"unknown manifest", "GET", "/v2/bad/repo/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"unknown blob", "GET", "/v2/bad/repo/blobs/" + missing.String(), nil, nil, 404, "BLOB_UNKNOWN"},
		{"delete unknown blob", "DELETE", "/v2/bad/repo/blobs/" + missing.String(), nil, nil, 404, "BLOB_UNKNOWN"},
		{"unknown repo tags", "GET", "/v2/bad/nothing/tags/list", nil, nil, 404, "NAME_UNKNOWN"},
		// Text PostgreSQL refuses must be a 400, not a 500 (issue 17, item 7).
		{"NUL in catalog last", "GET", "/v2/_catalog?last=%00", nil, nil, 400, "NAME_INVALID"},
		{"invalid UTF-8 in catalog last", "GET", "/v2/_catalog?n=1&last=%ff%fe", nil, nil, 400, "NAME_INVALID"},
		{"invalid UTF-8 in tags last", "GET", "/v2/bad/repo/tags/list?last=%ff%fe", nil, nil, 400, "MANIFEST_INVALID"},
		{"NUL in tags last", "GET", "/v2/bad/repo/tags/list?n=1&last=a%00b", nil, nil, 400, "MANIFEST_INVALID"},
		{"NUL in artifactType", "GET", "/v2/bad/repo/referrers/" + ld.String() + "?artifactType=%00", nil, nil, 400, "MANIFEST_INVALID"},
		{"invalid UTF-8 in artifactType", "GET", "/v2/bad/repo/referrers/" + ld.String() + "?artifactType=%c3%28", nil, nil, 400, "MANIFEST_INVALID"},
		{"NUL in n", "GET", "/v2/_catalog?n=%00", nil, nil, 400, "PAGINATION_NUMBER_INVALID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := call(t, s, c.method, c.path, c.headers, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.status, body)
			}
			var e struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
				t.Fatalf("body is not the spec's error JSON: %s", body)
			}
			if c.code != "" && e.Errors[0].Code != c.code {
				t.Errorf("code %s, want %s (%s)", e.Errors[0].Code, c.code, e.Errors[0].Message)
			}
			if e.Errors[0].Message == "" {
				t.Errorf("error has no message")
			}
		})
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("refused requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func mustStatus(t *testing.T, s *Stack, method, path string, headers map[string]string, body []byte, status int) {
	t.Helper()
	resp, b := call(t, s, method, path, headers, body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, b)
	}
}
