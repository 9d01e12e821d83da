// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/registry"
)

// fixture is what every call in TestCalls starts from.
type fixture struct {
	store *fakeStore
	// blob contents and digests
	layer, config, blob512            []byte
	layerD, configD, blob512D, emptyD digest.Digest
	// the image manifest, tagged latest, v1, v2 in foo/bar
	manifest  []byte
	manifestD digest.Digest
	// two referrers of manifestD, a signature and an SBOM
	sigD, sbomD digest.Digest
}

const (
	sigType  = "application/vnd.example.signature"
	sbomType = "application/vnd.example.sbom"
)

// ociManifest builds an image manifest JSON.
func ociManifest(t *testing.T, artifactType string, config, layer ocispec.Descriptor, subject *ocispec.Descriptor) []byte {
	t.Helper()
	m := ocispec.Manifest{
		MediaType:    registry.MediaTypeOCIManifest,
		ArtifactType: artifactType,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
		Subject:      subject,
	}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := newFakeStore()
	fx := &fixture{
		store:   s,
		layer:   []byte("layer bytes 0123456789"),
		config:  []byte(`{"architecture":"amd64","os":"linux"}`),
		blob512: []byte("a blob addressed by sha512"),
	}
	fx.layerD = s.link("foo/bar", digest.SHA256, fx.layer)
	fx.configD = s.link("foo/bar", digest.SHA256, fx.config)
	fx.blob512D = s.link("foo/bar", digest.SHA512, fx.blob512)
	fx.emptyD = s.link("foo/bar", digest.SHA256, []byte("{}"))
	s.link("foo/blobs", digest.SHA256, fx.layer)
	s.link("manifests", digest.SHA256, fx.layer)

	configDesc := ocispec.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: fx.configD, Size: int64(len(fx.config))}
	layerDesc := ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: fx.layerD, Size: int64(len(fx.layer))}
	fx.manifest = ociManifest(t, "", configDesc, layerDesc, nil)
	fx.manifestD = digest.SHA256.FromBytes(fx.manifest)
	mustPut(t, s, "foo/bar", fx.manifest, "latest", "v1", "v2")

	subject := &ocispec.Descriptor{MediaType: registry.MediaTypeOCIManifest, Digest: fx.manifestD, Size: int64(len(fx.manifest))}
	empty := ocispec.Descriptor{MediaType: registry.MediaTypeEmptyJSON, Digest: fx.emptyD, Size: 2}
	sig := ociManifest(t, sigType, empty, layerDesc, subject)
	fx.sigD = mustPut(t, s, "foo/bar", sig)
	sbom := ociManifest(t, sbomType, empty, layerDesc, subject)
	fx.sbomD = mustPut(t, s, "foo/bar", sbom)

	s.uploads["up-empty"] = &fakeUpload{repo: "foo/bar"}
	s.uploads["up-abc"] = &fakeUpload{repo: "foo/bar", data: []byte("abc")}
	return fx
}

func mustPut(t *testing.T, s *fakeStore, repo string, content []byte, tags ...string) digest.Digest {
	t.Helper()
	d := digest.SHA256.FromBytes(content)
	if _, err := s.putManifest(registry.ManifestPut{Repo: repo, MediaType: registry.MediaTypeOCIManifest, Content: content, Digest: d, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	return d
}

// newServer serves store and returns the log buffer.
func newServer(t *testing.T, store registry.Store, o Options) (*Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	o.Store = store
	o.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
	return New(o), &logs
}

// call is one request and what its answer must hold.
type call struct {
	name    string
	method  string
	path    string
	header  map[string]string
	body    string
	status  int
	headers map[string]string // exact values; "" means absent
	inBody  []string          // substrings of the body
	noBody  bool
}

func (c call) run(t *testing.T, h http.Handler) *http.Response {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req := httptest.NewRequest(c.method, c.path, body)
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if v, ok := c.header["Content-Length"]; ok && v == "-1" {
		req.Header.Del("Content-Length")
		req.ContentLength = -1
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != c.status {
		t.Errorf("%s %s: status %d, want %d; body %s", c.method, c.path, resp.StatusCode, c.status, got)
	}
	for k, want := range c.headers {
		if g := resp.Header.Get(k); g != want {
			t.Errorf("%s %s: header %s = %q, want %q", c.method, c.path, k, g, want)
		}
	}
	for _, s := range c.inBody {
		if !bytes.Contains(got, []byte(s)) {
			t.Errorf("%s %s: body %q does not contain %q", c.method, c.path, got, s)
		}
	}
	if c.noBody && len(got) != 0 {
		t.Errorf("%s %s: body %q, want none", c.method, c.path, got)
	}
	resp.Body = io.NopCloser(bytes.NewReader(got))
	return resp
}

func TestCalls(t *testing.T) {
	fx := newFixture(t)
	layerD, manD := fx.layerD.String(), fx.manifestD.String()
	big := strings.Repeat("x", registry.MaxManifestSize+1)
	newBlob := []byte("brand new blob")
	newBlobD := digest.SHA256.FromBytes(newBlob).String()
	newBlob512D := digest.SHA512.FromBytes(newBlob).String()
	abcdefD := digest.SHA256.FromString("abcdef").String()
	const api = "registry/2.0"

	calls := []call{
		// Base and routing.
		{name: "base", method: "GET", path: "/v2/", status: 200, inBody: []string{"{}"},
			headers: map[string]string{"Docker-Distribution-API-Version": api, "Content-Type": "application/json"}},
		{name: "base without slash", method: "GET", path: "/v2", status: 200},
		{name: "base head", method: "HEAD", path: "/v2/", status: 200, noBody: true},
		{name: "base post", method: "POST", path: "/v2/", status: 405, inBody: []string{`"UNSUPPORTED"`},
			headers: map[string]string{"Docker-Distribution-API-Version": api}},
		{name: "unknown endpoint", method: "GET", path: "/v2/foo/bar/nothing/here", status: 404, inBody: []string{`"UNSUPPORTED"`}},
		{name: "outside v2", method: "GET", path: "/v3/", status: 404},
		{name: "unrouted method", method: "OPTIONS", path: "/v2/foo/bar/tags/list", status: 405, inBody: []string{`"UNSUPPORTED"`}},

		// Path traversal and bad names.
		{name: "dot dot", method: "GET", path: "/v2/foo/../bar/manifests/latest", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "encoded dot dot", method: "GET", path: "/v2/foo/%2e%2e/bar/manifests/latest", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "encoded slash", method: "GET", path: "/v2/foo%2Fbar/manifests/latest", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "double encoded", method: "GET", path: "/v2/foo/%252e%252e/bar/tags/list", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "traversal to root", method: "GET", path: "/v2/../../etc/passwd", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "upper case name", method: "GET", path: "/v2/Foo/manifests/latest", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "empty component", method: "GET", path: "/v2/foo//bar/manifests/latest", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "name too long", method: "GET", path: "/v2/" + strings.Repeat("a/", 128) + "b/tags/list", status: 400, inBody: []string{`"NAME_INVALID"`}},

		// Blobs.
		{name: "blob get", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, status: 200, inBody: []string{string(fx.layer)},
			headers: map[string]string{"Docker-Content-Digest": layerD, "Content-Length": fmt.Sprint(len(fx.layer)), "Docker-Distribution-API-Version": api, "ETag": `"` + layerD + `"`}},
		{name: "blob head", method: "HEAD", path: "/v2/foo/bar/blobs/" + layerD, status: 200, noBody: true,
			headers: map[string]string{"Docker-Content-Digest": layerD, "Content-Length": fmt.Sprint(len(fx.layer))}},
		{name: "blob sha512", method: "GET", path: "/v2/foo/bar/blobs/" + fx.blob512D.String(), status: 200, inBody: []string{string(fx.blob512)},
			headers: map[string]string{"Docker-Content-Digest": fx.blob512D.String()}},
		{name: "blob escaped colon", method: "GET", path: "/v2/foo/bar/blobs/" + strings.Replace(layerD, ":", "%3A", 1), status: 200},
		{name: "repo named like a route", method: "GET", path: "/v2/foo/blobs/blobs/" + layerD, status: 200, inBody: []string{string(fx.layer)}},
		{name: "repo named manifests", method: "HEAD", path: "/v2/manifests/blobs/" + layerD, status: 200},
		{name: "blob unknown", method: "GET", path: "/v2/foo/bar/blobs/" + newBlobD, status: 404, inBody: []string{`"BLOB_UNKNOWN"`}},
		{name: "blob head unknown has no body", method: "HEAD", path: "/v2/foo/bar/blobs/" + newBlobD, status: 404, noBody: true},
		{name: "blob bad digest", method: "GET", path: "/v2/foo/bar/blobs/sha256:1234", status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "blob unknown algorithm", method: "GET", path: "/v2/foo/bar/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "blob range", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, header: map[string]string{"Range": "bytes=6-10"}, status: 206,
			headers: map[string]string{"Content-Range": fmt.Sprintf("bytes 6-10/%d", len(fx.layer)), "Content-Length": "5"}, inBody: []string{"bytes"}},
		{name: "blob open range", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, header: map[string]string{"Range": "bytes=12-"}, status: 206,
			headers: map[string]string{"Content-Range": fmt.Sprintf("bytes 12-21/%d", len(fx.layer)), "Content-Length": "10"}, inBody: []string{"0123456789"}},
		{name: "blob suffix range", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, header: map[string]string{"Range": "bytes=-4"}, status: 206,
			headers: map[string]string{"Content-Range": fmt.Sprintf("bytes 18-21/%d", len(fx.layer))}, inBody: []string{"6789"}},
		{name: "blob range past end clamps", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, header: map[string]string{"Range": "bytes=20-5000"}, status: 206,
			headers: map[string]string{"Content-Range": fmt.Sprintf("bytes 20-21/%d", len(fx.layer))}},
		{name: "blob range backwards", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, header: map[string]string{"Range": "bytes=10-0"}, status: 416,
			headers: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", len(fx.layer))}},
		{name: "blob range unsatisfiable", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, header: map[string]string{"Range": "bytes=500-1000"}, status: 416},
		{name: "blob range other unit ignored", method: "GET", path: "/v2/foo/bar/blobs/" + layerD, header: map[string]string{"Range": "items=1-2"}, status: 200},
		{name: "blob delete", method: "DELETE", path: "/v2/foo/bar/blobs/" + layerD, status: 202},
		{name: "blob delete unknown", method: "DELETE", path: "/v2/foo/bar/blobs/" + newBlobD, status: 404, inBody: []string{`"BLOB_UNKNOWN"`}},
		{name: "blob put not allowed", method: "PUT", path: "/v2/foo/bar/blobs/" + layerD, status: 405, inBody: []string{`"UNSUPPORTED"`}},

		// Starting uploads.
		{name: "upload start", method: "POST", path: "/v2/foo/bar/blobs/uploads/", status: 202,
			headers: map[string]string{"Location": "/v2/foo/bar/blobs/uploads/upload-1", "Docker-Upload-UUID": "upload-1", "Range": "0-0"}},
		{name: "upload start without slash", method: "POST", path: "/v2/foo/bar/blobs/uploads", status: 202},
		{name: "upload start for repo named blobs", method: "POST", path: "/v2/blobs/blobs/uploads/", status: 202,
			headers: map[string]string{"Location": "/v2/blobs/blobs/uploads/upload-1"}},
		{name: "upload start bad name", method: "POST", path: "/v2/foo/Bar/blobs/uploads/", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "upload list not allowed", method: "GET", path: "/v2/foo/bar/blobs/uploads/", status: 405},
		{name: "monolithic post", method: "POST", path: "/v2/new/repo/blobs/uploads/?digest=" + newBlobD, body: string(newBlob), status: 201,
			headers: map[string]string{"Location": "/v2/new/repo/blobs/" + newBlobD, "Docker-Content-Digest": newBlobD}},
		{name: "monolithic post sha512", method: "POST", path: "/v2/new/repo/blobs/uploads/?digest=" + newBlob512D, body: string(newBlob), status: 201,
			headers: map[string]string{"Docker-Content-Digest": newBlob512D}},
		{name: "monolithic post streamed", method: "POST", path: "/v2/new/repo/blobs/uploads/?digest=" + newBlobD, body: string(newBlob),
			header: map[string]string{"Content-Length": "-1"}, status: 201},
		{name: "monolithic post wrong digest", method: "POST", path: "/v2/new/repo/blobs/uploads/?digest=" + layerD, body: string(newBlob), status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "monolithic post bad digest", method: "POST", path: "/v2/new/repo/blobs/uploads/?digest=sha256:zz", body: string(newBlob), status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "mount from", method: "POST", path: "/v2/other/blobs/uploads/?mount=" + layerD + "&from=foo/bar", status: 201,
			headers: map[string]string{"Location": "/v2/other/blobs/" + layerD, "Docker-Content-Digest": layerD}},
		{name: "mount missing falls back", method: "POST", path: "/v2/other/blobs/uploads/?mount=" + newBlobD + "&from=foo/bar", status: 202,
			headers: map[string]string{"Location": "/v2/other/blobs/uploads/upload-1"}},
		{name: "mount from elsewhere falls back", method: "POST", path: "/v2/other/blobs/uploads/?mount=" + layerD + "&from=nowhere", status: 202},
		{name: "mount bad from", method: "POST", path: "/v2/other/blobs/uploads/?mount=" + layerD + "&from=../x", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "mount bad digest", method: "POST", path: "/v2/other/blobs/uploads/?mount=sha256:nope&from=foo/bar", status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "mount without from, auto mount off", method: "POST", path: "/v2/other/blobs/uploads/?mount=" + layerD, status: 202},

		// Upload sessions.
		{name: "upload status empty", method: "GET", path: "/v2/foo/bar/blobs/uploads/up-empty", status: 204,
			headers: map[string]string{"Range": "0-0", "Location": "/v2/foo/bar/blobs/uploads/up-empty", "Docker-Upload-UUID": "up-empty"}},
		{name: "upload status", method: "GET", path: "/v2/foo/bar/blobs/uploads/up-abc", status: 204, headers: map[string]string{"Range": "0-2"}},
		{name: "upload status unknown", method: "GET", path: "/v2/foo/bar/blobs/uploads/nope", status: 404, inBody: []string{`"BLOB_UPLOAD_UNKNOWN"`}},
		{name: "upload status wrong repo", method: "GET", path: "/v2/other/blobs/uploads/up-abc", status: 404, inBody: []string{`"BLOB_UPLOAD_UNKNOWN"`}},
		{name: "upload id with odd bytes", method: "GET", path: "/v2/foo/bar/blobs/uploads/a+b", status: 404, inBody: []string{`"BLOB_UPLOAD_UNKNOWN"`}},
		{name: "upload id dot dot", method: "GET", path: "/v2/foo/bar/blobs/uploads/..", status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "patch chunk", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "def",
			header: map[string]string{"Content-Range": "3-5", "Content-Type": "application/octet-stream"}, status: 202,
			headers: map[string]string{"Range": "0-5", "Location": "/v2/foo/bar/blobs/uploads/up-abc", "Docker-Upload-UUID": "up-abc"}},
		{name: "patch chunk bytes= form", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "def",
			header: map[string]string{"Content-Range": "bytes=3-5"}, status: 202, headers: map[string]string{"Range": "0-5"}},
		{name: "patch chunk RFC form", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "def",
			header: map[string]string{"Content-Range": "bytes 3-5/*"}, status: 202, headers: map[string]string{"Range": "0-5"}},
		{name: "patch streamed", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "defgh",
			header: map[string]string{"Content-Length": "-1"}, status: 202, headers: map[string]string{"Range": "0-7"}},
		{name: "patch out of order", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "def",
			header: map[string]string{"Content-Range": "6-8"}, status: 416, inBody: []string{`"BLOB_UPLOAD_INVALID"`},
			headers: map[string]string{"Location": "", "Range": ""}},
		{name: "patch length mismatch", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "defg",
			header: map[string]string{"Content-Range": "3-5"}, status: 400, inBody: []string{`"SIZE_INVALID"`}},
		{name: "patch streamed longer than range", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "defg",
			header: map[string]string{"Content-Range": "3-5", "Content-Length": "-1"}, status: 400, inBody: []string{`"SIZE_INVALID"`}},
		{name: "patch streamed shorter than range", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "de",
			header: map[string]string{"Content-Range": "3-5", "Content-Length": "-1"}, status: 400, inBody: []string{`"SIZE_INVALID"`}},
		{name: "patch malformed range", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "def",
			header: map[string]string{"Content-Range": "three-five"}, status: 400, inBody: []string{`"BLOB_UPLOAD_INVALID"`}},
		{name: "patch range backwards", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/up-abc", body: "def",
			header: map[string]string{"Content-Range": "5-3"}, status: 416},
		{name: "patch unknown upload", method: "PATCH", path: "/v2/foo/bar/blobs/uploads/nope", body: "def", status: 404, inBody: []string{`"BLOB_UPLOAD_UNKNOWN"`}},
		{name: "put closes", method: "PUT", path: "/v2/foo/bar/blobs/uploads/up-abc?digest=" + digest.SHA256.FromString("abc").String(), status: 201,
			headers: map[string]string{"Location": "/v2/foo/bar/blobs/" + digest.SHA256.FromString("abc").String(), "Docker-Content-Digest": digest.SHA256.FromString("abc").String()}},
		{name: "put with last chunk", method: "PUT", path: "/v2/foo/bar/blobs/uploads/up-abc?digest=" + abcdefD, body: "def",
			header: map[string]string{"Content-Range": "3-5"}, status: 201, headers: map[string]string{"Docker-Content-Digest": abcdefD}},
		{name: "put with last chunk, no range", method: "PUT", path: "/v2/foo/bar/blobs/uploads/up-abc?digest=" + abcdefD, body: "def", status: 201},
		{name: "put last chunk out of order", method: "PUT", path: "/v2/foo/bar/blobs/uploads/up-abc?digest=" + abcdefD, body: "def",
			header: map[string]string{"Content-Range": "0-2"}, status: 416},
		{name: "put wrong digest", method: "PUT", path: "/v2/foo/bar/blobs/uploads/up-abc?digest=" + layerD, status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "put without digest", method: "PUT", path: "/v2/foo/bar/blobs/uploads/up-abc", status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "put unknown upload", method: "PUT", path: "/v2/foo/bar/blobs/uploads/nope?digest=" + layerD, status: 404},
		{name: "cancel upload", method: "DELETE", path: "/v2/foo/bar/blobs/uploads/up-abc", status: 204},
		{name: "cancel unknown upload", method: "DELETE", path: "/v2/foo/bar/blobs/uploads/nope", status: 404, inBody: []string{`"BLOB_UPLOAD_UNKNOWN"`}},

		// Manifests.
		{name: "manifest by tag", method: "GET", path: "/v2/foo/bar/manifests/latest", header: map[string]string{"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
			status: 200, inBody: []string{string(fx.manifest)},
			headers: map[string]string{"Content-Type": registry.MediaTypeOCIManifest, "Docker-Content-Digest": manD, "Content-Length": fmt.Sprint(len(fx.manifest)), "ETag": `"` + manD + `"`}},
		{name: "manifest by digest", method: "GET", path: "/v2/foo/bar/manifests/" + manD, status: 200, headers: map[string]string{"Docker-Content-Digest": manD}},
		{name: "manifest head", method: "HEAD", path: "/v2/foo/bar/manifests/latest", status: 200, noBody: true,
			headers: map[string]string{"Content-Length": fmt.Sprint(len(fx.manifest)), "Content-Type": registry.MediaTypeOCIManifest}},
		{name: "manifest unknown tag", method: "GET", path: "/v2/foo/bar/manifests/nope", status: 404, inBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "manifest unknown digest", method: "GET", path: "/v2/foo/bar/manifests/" + newBlobD, status: 404, inBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "manifest bad digest", method: "GET", path: "/v2/foo/bar/manifests/sha256:baddigeststring", status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "manifest bad tag", method: "GET", path: "/v2/foo/bar/manifests/-tag", status: 400, inBody: []string{`"MANIFEST_INVALID"`}},
		{name: "manifest tag too long", method: "GET", path: "/v2/foo/bar/manifests/" + strings.Repeat("t", 129), status: 400},
		{name: "repo named manifests, by tag", method: "GET", path: "/v2/a/manifests/manifests/latest", status: 404, inBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "manifest put by tag", method: "PUT", path: "/v2/foo/bar/manifests/new", body: string(fx.manifest),
			header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 201,
			headers: map[string]string{"Location": "/v2/foo/bar/manifests/" + manD, "Docker-Content-Digest": manD, "OCI-Subject": "", "OCI-Tag": ""}},
		{name: "manifest put by digest", method: "PUT", path: "/v2/foo/bar/manifests/" + manD, body: string(fx.manifest),
			header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest + "; charset=utf-8"}, status: 201,
			headers: map[string]string{"Location": "/v2/foo/bar/manifests/" + manD}},
		{name: "manifest put by sha512 digest", method: "PUT", path: "/v2/foo/bar/manifests/" + digest.SHA512.FromBytes(fx.manifest).String(), body: string(fx.manifest),
			header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 201,
			headers: map[string]string{"Docker-Content-Digest": digest.SHA512.FromBytes(fx.manifest).String()}},
		{name: "manifest put digest mismatch", method: "PUT", path: "/v2/foo/bar/manifests/" + manD, body: string(fx.manifest) + "  ",
			header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "manifest put bad digest", method: "PUT", path: "/v2/foo/bar/manifests/sha256:baddigeststring", body: string(fx.manifest), status: 400, inBody: []string{`"DIGEST_INVALID"`}},
		{name: "manifest put too large", method: "PUT", path: "/v2/foo/bar/manifests/big", body: big, status: 413, inBody: []string{`"MANIFEST_INVALID"`}},
		{name: "manifest put too large, streamed", method: "PUT", path: "/v2/foo/bar/manifests/big", body: big, header: map[string]string{"Content-Length": "-1"}, status: 413},
		{name: "manifest put invalid", method: "PUT", path: "/v2/foo/bar/manifests/bad", body: `{"schemaVersion":2`, status: 400, inBody: []string{`"MANIFEST_INVALID"`}},
		{name: "manifest put unknown blob", method: "PUT", path: "/v2/elsewhere/manifests/x", body: string(fx.manifest),
			header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 400, inBody: []string{`"MANIFEST_BLOB_UNKNOWN"`}},
		{name: "manifest put tag params", method: "PUT", path: "/v2/foo/bar/manifests/" + manD + "?tag=a&tag=b", body: string(fx.manifest),
			header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 201, headers: map[string]string{"OCI-Tag": "a"}},
		{name: "manifest put invalid tag param", method: "PUT", path: "/v2/foo/bar/manifests/" + manD + "?tag=a&tag=-b", body: string(fx.manifest),
			header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 400, inBody: []string{`"MANIFEST_INVALID"`}},
		{name: "manifest delete by digest", method: "DELETE", path: "/v2/foo/bar/manifests/" + manD, status: 202},
		{name: "manifest delete tag", method: "DELETE", path: "/v2/foo/bar/manifests/v1", status: 202},
		{name: "manifest delete unknown", method: "DELETE", path: "/v2/foo/bar/manifests/nope", status: 404, inBody: []string{`"MANIFEST_UNKNOWN"`}},
		{name: "manifest post not allowed", method: "POST", path: "/v2/foo/bar/manifests/latest", status: 405, inBody: []string{`"UNSUPPORTED"`}},

		// Tags.
		{name: "tags", method: "GET", path: "/v2/foo/bar/tags/list", status: 200, inBody: []string{`{"name":"foo/bar","tags":["latest","v1","v2"]}`},
			headers: map[string]string{"Link": "", "Content-Type": "application/json"}},
		{name: "tags page", method: "GET", path: "/v2/foo/bar/tags/list?n=2", status: 200, inBody: []string{`"tags":["latest","v1"]`},
			headers: map[string]string{"Link": `</v2/foo/bar/tags/list?last=v1&n=2>; rel="next"`}},
		{name: "tags last", method: "GET", path: "/v2/foo/bar/tags/list?n=2&last=v1", status: 200, inBody: []string{`"tags":["v2"]`}, headers: map[string]string{"Link": ""}},
		{name: "tags n=0", method: "GET", path: "/v2/foo/bar/tags/list?n=0", status: 200, inBody: []string{`"tags":[]`}, headers: map[string]string{"Link": ""}},
		{name: "tags bad n", method: "GET", path: "/v2/foo/bar/tags/list?n=-1", status: 400, inBody: []string{`"PAGINATION_NUMBER_INVALID"`}},
		{name: "tags unknown repo", method: "GET", path: "/v2/nope/tags/list", status: 404, inBody: []string{`"NAME_UNKNOWN"`}},
		{name: "tags of a repo without tags", method: "GET", path: "/v2/foo/blobs/tags/list", status: 200, inBody: []string{`"tags":[]`}},
		{name: "tags wrong leaf", method: "GET", path: "/v2/foo/bar/tags/all", status: 404},

		// Catalog.
		{name: "catalog", method: "GET", path: "/v2/_catalog", status: 200, inBody: []string{`{"repositories":["foo/bar","foo/blobs","manifests"]}`}},
		{name: "catalog page", method: "GET", path: "/v2/_catalog?n=1&last=foo/bar", status: 200, inBody: []string{`["foo/blobs"]`},
			headers: map[string]string{"Link": `</v2/_catalog?last=foo%2Fblobs&n=1>; rel="next"`}},
		{name: "catalog bad n", method: "GET", path: "/v2/_catalog?n=x", status: 400},

		// Referrers.
		{name: "referrers", method: "GET", path: "/v2/foo/bar/referrers/" + manD, status: 200,
			inBody:  []string{`"schemaVersion":2`, `"mediaType":"application/vnd.oci.image.index.v1+json"`, fx.sigD.String(), fx.sbomD.String(), sigType, sbomType},
			headers: map[string]string{"Content-Type": registry.MediaTypeOCIIndex, "OCI-Filters-Applied": ""}},
		{name: "referrers filtered", method: "GET", path: "/v2/foo/bar/referrers/" + manD + "?artifactType=" + sigType, status: 200,
			inBody: []string{fx.sigD.String()}, headers: map[string]string{"OCI-Filters-Applied": "artifactType"}},
		{name: "referrers unknown subject", method: "GET", path: "/v2/foo/bar/referrers/" + newBlobD, status: 200, inBody: []string{`"manifests":[]`}},
		{name: "referrers unknown repo", method: "GET", path: "/v2/nope/referrers/" + newBlobD, status: 200, inBody: []string{`"manifests":[]`}},
		{name: "referrers bad name", method: "GET", path: "/v2/No/referrers/" + newBlobD, status: 400, inBody: []string{`"NAME_INVALID"`}},
		{name: "referrers bad digest", method: "GET", path: "/v2/foo/bar/referrers/latest", status: 400, inBody: []string{`"DIGEST_INVALID"`}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newServer(t, newFixture(t).store, Options{})
			c.run(t, s)
		})
	}
}

// TestReferrersFilterExcludes checks that a filtered list holds only the
// asked type.
func TestReferrersFilterExcludes(t *testing.T) {
	fx := newFixture(t)
	s, _ := newServer(t, fx.store, Options{})
	resp := call{method: "GET", path: "/v2/foo/bar/referrers/" + fx.manifestD.String() + "?artifactType=" + sbomType, status: 200}.run(t, s)
	var idx ocispec.Index
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != fx.sbomD || idx.Manifests[0].ArtifactType != sbomType {
		t.Errorf("filtered referrers = %+v, want only %s", idx.Manifests, fx.sbomD)
	}
}

func TestManifestPutSubjectHeader(t *testing.T) {
	fx := newFixture(t)
	s, _ := newServer(t, fx.store, Options{})
	sig := fx.store.manifests["foo/bar"][fx.sigD].Content
	call{method: "PUT", path: "/v2/foo/bar/manifests/" + fx.sigD.String(), body: string(sig),
		header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 201,
		headers: map[string]string{"OCI-Subject": fx.manifestD.String()}}.run(t, s)
}

func TestManifestPutTagParamsApplied(t *testing.T) {
	fx := newFixture(t)
	s, _ := newServer(t, fx.store, Options{})
	d := digest.SHA512.FromBytes(fx.manifest)
	resp := call{method: "PUT", path: "/v2/foo/bar/manifests/" + d.String() + "?tag=one&tag=two", body: string(fx.manifest),
		header: map[string]string{"Content-Type": registry.MediaTypeOCIManifest}, status: 201}.run(t, s)
	if got := resp.Header.Values("OCI-Tag"); strings.Join(got, ",") != "one,two" {
		t.Errorf("OCI-Tag = %q, want one, two", got)
	}
	// Pulled by tag, the manifest answers with the digest it was pushed
	// under, in the client's algorithm.
	call{method: "HEAD", path: "/v2/foo/bar/manifests/two", status: 200,
		headers: map[string]string{"Docker-Content-Digest": d.String()}}.run(t, s)
}

func TestAutoMount(t *testing.T) {
	fx := newFixture(t)
	s, _ := newServer(t, fx.store, Options{AutoMount: true})
	call{method: "POST", path: "/v2/other/blobs/uploads/?mount=" + fx.layerD.String(), status: 201,
		headers: map[string]string{"Location": "/v2/other/blobs/" + fx.layerD.String()}}.run(t, s)
	call{method: "GET", path: "/v2/other/blobs/" + fx.layerD.String(), status: 200, inBody: []string{string(fx.layer)}}.run(t, s)
	// Nothing to mount: a new upload instead.
	call{method: "POST", path: "/v2/other/blobs/uploads/?mount=" + digest.SHA256.FromString("none").String(), status: 202}.run(t, s)
}

func TestRedirect(t *testing.T) {
	fx := newFixture(t)
	s, _ := newServer(t, redirectingStore{fakeStore: fx.store, url: "https://s3.example/bucket"}, Options{})
	call{method: "GET", path: "/v2/foo/bar/blobs/" + fx.layerD.String(), status: 307,
		headers: map[string]string{"Location": "https://s3.example/bucket/" + fx.layerD.Encoded(), "Docker-Content-Digest": fx.layerD.String()}}.run(t, s)
	// HEAD is answered here; unknown blobs are still 404.
	call{method: "HEAD", path: "/v2/foo/bar/blobs/" + fx.layerD.String(), status: 200}.run(t, s)
	call{method: "GET", path: "/v2/other/blobs/" + fx.layerD.String(), status: 404}.run(t, s)

	off, _ := newServer(t, redirectingStore{fakeStore: fx.store}, Options{})
	call{method: "GET", path: "/v2/foo/bar/blobs/" + fx.layerD.String(), status: 200}.run(t, off)
}

// TestChunkedUpload pushes a blob the way the conformance suite's
// out-of-order test does: chunks, a refused chunk, a status query to
// recover, the last chunk with the PUT.
func TestChunkedUpload(t *testing.T) {
	s, _ := newServer(t, newFakeStore(), Options{})
	blob := []byte("0123456789abcdefghij")
	d := digest.SHA512.FromBytes(blob)

	resp := call{method: "POST", path: "/v2/r/blobs/uploads/", status: 202}.run(t, s)
	loc := resp.Header.Get("Location")
	call{method: "PATCH", path: loc, body: string(blob[:8]), header: map[string]string{"Content-Range": "0-7"}, status: 202,
		headers: map[string]string{"Range": "0-7"}}.run(t, s)
	call{method: "PATCH", path: loc, body: string(blob[12:16]), header: map[string]string{"Content-Range": "12-15"}, status: 416}.run(t, s)
	call{method: "GET", path: loc, status: 204, headers: map[string]string{"Range": "0-7", "Location": loc}}.run(t, s)
	call{method: "PATCH", path: loc, body: string(blob[8:16]), header: map[string]string{"Content-Range": "8-15"}, status: 202,
		headers: map[string]string{"Range": "0-15"}}.run(t, s)
	call{method: "PUT", path: loc + "?digest=" + d.String(), body: string(blob[16:]), header: map[string]string{"Content-Range": "16-19"}, status: 201,
		headers: map[string]string{"Location": "/v2/r/blobs/" + d.String(), "Docker-Content-Digest": d.String()}}.run(t, s)
	call{method: "GET", path: "/v2/r/blobs/" + d.String(), status: 200, inBody: []string{string(blob)}}.run(t, s)
	call{method: "GET", path: loc, status: 404}.run(t, s)
}

func TestErrorBody(t *testing.T) {
	s, _ := newServer(t, newFixture(t).store, Options{})
	resp := call{method: "GET", path: "/v2/foo/bar/blobs/" + digest.SHA256.FromString("x").String(), status: 404}.run(t, s)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Errors) != 1 || body.Errors[0].Code != "BLOB_UNKNOWN" || body.Errors[0].Message == "" {
		t.Errorf("error body = %+v", body)
	}
}

// TestInternalError checks that a failure the client did not cause is a
// generic UNKNOWN/500 whose detail only the log sees, with the request id.
func TestInternalError(t *testing.T) {
	store := newFixture(t).store
	store.fail = fmt.Errorf("dial tcp 10.0.0.7:5432: password authentication failed for user registry")
	s, logs := newServer(t, store, Options{})
	resp := call{method: "GET", path: "/v2/foo/bar/manifests/latest", header: map[string]string{"X-Request-Id": "req-42"}, status: 500,
		inBody: []string{`"UNKNOWN"`}, headers: map[string]string{"X-Request-Id": "req-42"}}.run(t, s)
	body, _ := io.ReadAll(resp.Body)
	for _, secret := range []string{"10.0.0.7", "password", "dial"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("body %q leaks %q", body, secret)
		}
	}
	var found bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, "password authentication failed") && strings.Contains(line, `"request_id":"req-42"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no error log line with the cause and request id:\n%s", logs)
	}
}

// outageErr plays a backend's outage error, which satisfies
// registry.Outage without the HTTP layer knowing the backend.
type outageErr struct{ cause string }

func (e outageErr) Error() string  { return e.cause }
func (e outageErr) Outage() string { return "blob storage unavailable, try again later" }

// TestOutageIsUnavailable checks that a backend outage is a 503
// UNAVAILABLE with the backend's public message, never a 500, and that its
// cause stays in the log.
func TestOutageIsUnavailable(t *testing.T) {
	store := newFixture(t).store
	store.fail = fmt.Errorf("GetObject: %w", outageErr{"dial tcp 10.0.0.9:9000: connection refused"})
	s, logs := newServer(t, store, Options{})
	resp := call{method: "GET", path: "/v2/foo/bar/manifests/latest", status: 503,
		inBody: []string{`"UNAVAILABLE"`, "blob storage unavailable"}}.run(t, s)
	body, _ := io.ReadAll(resp.Body)
	if bytes.Contains(body, []byte("10.0.0.9")) {
		t.Errorf("body %q leaks the cause", body)
	}
	if !strings.Contains(logs.String(), "connection refused") || strings.Contains(logs.String(), `"level":"error"`) {
		t.Errorf("want the cause logged as a warning, not an internal error:\n%s", logs)
	}
}

func TestPanicIsInternalError(t *testing.T) {
	s, _ := newServer(t, panickingStore{newFakeStore()}, Options{})
	call{method: "GET", path: "/v2/_catalog", status: 500, inBody: []string{`"UNKNOWN"`}}.run(t, s)
}

type panickingStore struct{ *fakeStore }

func (panickingStore) Catalog(context.Context, string, int) ([]string, bool, error) {
	panic("boom")
}
