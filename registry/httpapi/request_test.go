// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

const (
	d256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	d512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want request
		err  error
	}{
		{"/v2/", request{kind: kindBase}, nil},
		{"/v2", request{kind: kindBase}, nil},
		{"/v2/_catalog", request{kind: kindCatalog}, nil},
		{"/v2/foo/blobs/" + d256, request{kind: kindBlob, repo: "foo", digest: d256}, nil},
		{"/v2/a/b/c/blobs/" + d512, request{kind: kindBlob, repo: "a/b/c", digest: d512}, nil},
		{"/v2/foo/blobs/blobs/" + d256, request{kind: kindBlob, repo: "foo/blobs", digest: d256}, nil},
		{"/v2/blobs/blobs/" + d256, request{kind: kindBlob, repo: "blobs", digest: d256}, nil},
		{"/v2/foo/blobs/" + strings.Replace(d256, ":", "%3a", 1), request{kind: kindBlob, repo: "foo", digest: d256}, nil},
		{"/v2/foo/blobs/uploads/", request{kind: kindUploads, repo: "foo"}, nil},
		{"/v2/foo/blobs/uploads", request{kind: kindUploads, repo: "foo"}, nil},
		{"/v2/foo/blobs/blobs/uploads/", request{kind: kindUploads, repo: "foo/blobs"}, nil},
		{"/v2/blobs/uploads/blobs/uploads/", request{kind: kindUploads, repo: "blobs/uploads"}, nil},
		{"/v2/foo/blobs/uploads/abc-123", request{kind: kindUpload, repo: "foo", uploadID: "abc-123"}, nil},
		{"/v2/foo/blobs/blobs/uploads/abc", request{kind: kindUpload, repo: "foo/blobs", uploadID: "abc"}, nil},
		{"/v2/a/b/c/manifests/x", request{kind: kindManifest, repo: "a/b/c", tag: "x"}, nil},
		{"/v2/manifests/manifests/latest", request{kind: kindManifest, repo: "manifests", tag: "latest"}, nil},
		{"/v2/foo/manifests/" + d256, request{kind: kindManifest, repo: "foo", digest: d256}, nil},
		{"/v2/foo/tags/list", request{kind: kindTags, repo: "foo"}, nil},
		{"/v2/tags/tags/list", request{kind: kindTags, repo: "tags"}, nil},
		{"/v2/foo/referrers/" + d256, request{kind: kindReferrers, repo: "foo", digest: d256}, nil},

		{"/v2/foo/manifests/sha256:abc", request{kind: kindManifest, repo: "foo"}, registry.ErrDigestInvalid},
		{"/v2/foo/manifests/.tag", request{kind: kindManifest, repo: "foo"}, registry.ErrManifestInvalid},
		{"/v2/foo/blobs/latest", request{kind: kindBlob, repo: "foo"}, registry.ErrDigestInvalid},
		{"/v2/foo/referrers/latest", request{kind: kindReferrers, repo: "foo"}, registry.ErrDigestInvalid},
		{"/v2/foo/blobs/uploads/a%2Fb", request{}, registry.ErrNameInvalid},
		{"/v2/foo/blobs/uploads/a!b", request{kind: kindUpload, repo: "foo"}, registry.ErrBlobUploadUnknown},
		{"/v2/Foo/tags/list", request{kind: kindTags}, registry.ErrNameInvalid},
		{"/v2/foo/../bar/tags/list", request{}, registry.ErrNameInvalid},
		{"/v2/foo/./bar/tags/list", request{}, registry.ErrNameInvalid},
		{"/v2/foo/%2e%2e/bar/tags/list", request{}, registry.ErrNameInvalid},
		{"/v2/foo/%2E%2E/bar/tags/list", request{}, registry.ErrNameInvalid},
		{"/v2/foo%2Fbar/tags/list", request{}, registry.ErrNameInvalid},
		{"/v2/foo/%252e%252e/tags/list", request{}, registry.ErrNameInvalid},
		{"/v2/foo/..%2F..%2Fetc/tags/list", request{}, registry.ErrNameInvalid},
		{"/v2/..", request{}, registry.ErrNameInvalid},
		{"/v2/foo/bar/manifests/..", request{}, registry.ErrNameInvalid},
		{"/v2//tags/list", request{kind: kindTags}, registry.ErrNameInvalid},
		{"/v2/foo//bar/tags/list", request{kind: kindTags}, registry.ErrNameInvalid},
		{"/v2/foo/bar/tags/list/", request{}, errNoRoute},
		{"/v2/foo/tags/all", request{}, errNoRoute},
		{"/v2/foo", request{}, errNoRoute},
		{"/v2/foo/bar", request{}, errNoRoute},
		{"/v2/foo/manifests/", request{}, errNoRoute},
		{"/v2/blobs/uploads/x", request{}, errNoRoute},
		{"/v3/foo/tags/list", request{}, errNoRoute},
		{"/v2x/foo/tags/list", request{}, errNoRoute},
	}
	for _, tt := range tests {
		got, err := parsePath(tt.path)
		if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("parsePath(%q) error = %v, want %v", tt.path, err, tt.err)
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(request{})); diff != "" {
			t.Errorf("parsePath(%q) (-want +got):\n%s", tt.path, diff)
		}
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		header        string
		size          int64
		start, length int64
		partial       bool
		err           bool
	}{
		{"", 100, 0, 0, false, false},
		{"bytes=0-9", 100, 0, 10, true, false},
		{"bytes=90-", 100, 90, 10, true, false},
		{"bytes=-10", 100, 90, 10, true, false},
		{"bytes=-1000", 100, 0, 100, true, false},
		{"bytes=50-5000", 100, 50, 50, true, false},
		{"bytes=99-99", 100, 99, 1, true, false},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=10-5", 100, 0, 0, false, true},
		{"bytes=-0", 100, 0, 0, false, true},
		{"bytes=0-", 0, 0, 0, false, true},
		{"bytes=0-1,5-6", 100, 0, 0, false, false},
		{"bytes=a-b", 100, 0, 0, false, false},
		{"bytes=+1-2", 100, 0, 0, false, false},
		{"pages=1-2", 100, 0, 0, false, false},
	}
	for _, tt := range tests {
		start, length, partial, err := parseRange(tt.header, tt.size)
		if start != tt.start || length != tt.length || partial != tt.partial || (err != nil) != tt.err {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v, error %v",
				tt.header, tt.size, start, length, partial, err, tt.start, tt.length, tt.partial, tt.err)
		}
		if err != nil && registry.AsError(err).HTTPStatus() != 416 {
			t.Errorf("parseRange(%q): status %d, want 416", tt.header, registry.AsError(err).HTTPStatus())
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		header      string
		first, last int64
		status      int // 0: no error
	}{
		{"0-0", 0, 0, 0},
		{"3-5", 3, 5, 0},
		{"bytes=3-5", 3, 5, 0},
		{"bytes 3-5/100", 3, 5, 0},
		{"bytes 3-5/*", 3, 5, 0},
		{" 3-5 ", 3, 5, 0},
		{"5-3", 0, 0, 416},
		{"3-", 0, 0, 400},
		{"-5", 0, 0, 400},
		{"a-b", 0, 0, 400},
		{"3", 0, 0, 400},
		{"-1-5", 0, 0, 400},
	}
	for _, tt := range tests {
		first, last, err := parseContentRange(tt.header)
		status := 0
		if err != nil {
			status = registry.AsError(err).HTTPStatus()
		}
		if first != tt.first || last != tt.last || status != tt.status {
			t.Errorf("parseContentRange(%q) = %d, %d, status %d; want %d, %d, %d", tt.header, first, last, status, tt.first, tt.last, tt.status)
		}
	}
}

// FuzzParsePath checks that no path panics the parser and that no accepted
// repository name is invalid or can climb out of its place.
func FuzzParsePath(f *testing.F) {
	for _, p := range []string{
		"/v2/", "/v2", "/v2/_catalog",
		"/v2/foo/blobs/" + d256,
		"/v2/a/b/c/manifests/x",
		"/v2/foo/blobs/blobs/" + d512,
		"/v2/foo/blobs/uploads/",
		"/v2/foo/blobs/uploads/abc",
		"/v2/foo/tags/list",
		"/v2/foo/referrers/" + d256,
		"/v2/foo/manifests/" + strings.Replace(d256, ":", "%3A", 1),
		"/v2/../etc/passwd",
		"/v2/foo/%2e%2e/bar/tags/list",
		"/v2/foo%2f..%2f..%2fbar/manifests/x",
		"/v2/foo/%252e%252e/manifests/x",
		"/v2/foo/.%2e/manifests/x",
		"/v2/foo/..;/manifests/x",
		"/v2/foo\\..\\bar/manifests/x",
		"/v2/%3A/blobs/uploads/",
		"/v2/foo/blobs/uploads/..",
		"/v2//blobs/" + d256,
		"/v2/" + strings.Repeat("a/", 200) + "tags/list",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req, err := parsePath(path)
		if err != nil {
			if s := registry.AsError(err).HTTPStatus(); s >= 500 {
				t.Fatalf("parsePath(%q): status %d for a bad path", path, s)
			}
			return
		}
		switch req.kind {
		case kindBase, kindCatalog:
			if req.repo != "" {
				t.Fatalf("parsePath(%q): %v has a repo %q", path, req.kind, req.repo)
			}
			return
		case kindUnknown:
			t.Fatalf("parsePath(%q): accepted without a kind", path)
		}
		if err := registry.ValidateName(req.repo); err != nil {
			t.Fatalf("parsePath(%q): accepted invalid name %q: %v", path, req.repo, err)
		}
		for _, s := range []string{req.repo, req.tag, req.uploadID, string(req.digest)} {
			if strings.Contains(s, "..") || strings.Contains(s, "%") {
				t.Fatalf("parsePath(%q): accepted %q", path, s)
			}
		}
		if req.digest != "" {
			if _, err := digest.Parse(string(req.digest)); err != nil {
				t.Fatalf("parsePath(%q): accepted digest %q: %v", path, req.digest, err)
			}
		}
	})
}
