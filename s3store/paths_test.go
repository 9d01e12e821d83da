// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

const (
	sha256Hex = "96443a84ce518ac22acb2e985eda402b58ac19ce6f91980bde63726a79d80b36"
	dgst      = digest.Digest("sha256:" + sha256Hex)
)

var sha512Dgst = digest.SHA512.FromString("hello")

func TestLayoutKeys(t *testing.T) {
	for _, root := range []string{"", "team/prod"} {
		l := Layout{Root: root}
		base := "docker/registry/v2/"
		if root != "" {
			base = root + "/" + base
		}
		tests := []struct {
			name string
			got  string
			want string
			info KeyInfo // zero: not a parseable object key
		}{
			{"blobs prefix", l.BlobsPrefix(), base + "blobs/", KeyInfo{}},
			{"repositories prefix", l.RepositoriesPrefix(), base + "repositories/", KeyInfo{}},
			{"repository prefix", l.RepositoryPrefix("a/b"), base + "repositories/a/b/", KeyInfo{}},
			{
				"blob data", l.BlobData(dgst),
				base + "blobs/sha256/96/" + sha256Hex + "/data",
				KeyInfo{Kind: KeyBlobData, Digest: dgst},
			},
			{
				"blob data sha512", l.BlobData(sha512Dgst),
				base + "blobs/sha512/" + sha512Dgst.Encoded()[:2] + "/" + sha512Dgst.Encoded() + "/data",
				KeyInfo{Kind: KeyBlobData, Digest: sha512Dgst},
			},
			{
				"layer link", l.LayerLink("library/ubuntu", dgst),
				base + "repositories/library/ubuntu/_layers/sha256/" + sha256Hex + "/link",
				KeyInfo{Kind: KeyLayerLink, Repo: "library/ubuntu", Digest: dgst},
			},
			{
				"revision link", l.RevisionLink("a/b/c", dgst),
				base + "repositories/a/b/c/_manifests/revisions/sha256/" + sha256Hex + "/link",
				KeyInfo{Kind: KeyRevisionLink, Repo: "a/b/c", Digest: dgst},
			},
			{
				"tag current link", l.TagCurrentLink("hello-world", "latest"),
				base + "repositories/hello-world/_manifests/tags/latest/current/link",
				KeyInfo{Kind: KeyTagCurrentLink, Repo: "hello-world", Tag: "latest"},
			},
			{
				"tag index link", l.TagIndexLink("a.b/c_d", "v1.0_rc-1", dgst),
				base + "repositories/a.b/c_d/_manifests/tags/v1.0_rc-1/index/sha256/" + sha256Hex + "/link",
				KeyInfo{Kind: KeyTagIndexLink, Repo: "a.b/c_d", Tag: "v1.0_rc-1", Digest: dgst},
			},
			{"tag prefix", l.TagPrefix("r", "t"), base + "repositories/r/_manifests/tags/t/", KeyInfo{}},
			{"tags prefix", l.TagsPrefix("r"), base + "repositories/r/_manifests/tags/", KeyInfo{}},
			{
				"upload data", l.UploadData("x/y", "0b7c5e8e-4a5b"),
				base + "repositories/x/y/_uploads/0b7c5e8e-4a5b/data",
				KeyInfo{Kind: KeyUploadData, Repo: "x/y", UploadID: "0b7c5e8e-4a5b"},
			},
			{"upload prefix", l.UploadPrefix("x/y", "id"), base + "repositories/x/y/_uploads/id/", KeyInfo{}},
		}
		for _, tt := range tests {
			t.Run(root+"/"+tt.name, func(t *testing.T) {
				if tt.got != tt.want {
					t.Errorf("key = %q, want %q", tt.got, tt.want)
				}
				info, ok := l.ParseKey(tt.want)
				if ok != (tt.info.Kind != KeyUnknown) {
					t.Fatalf("ParseKey(%q) ok = %v", tt.want, ok)
				}
				if diff := cmp.Diff(tt.info, info); diff != "" {
					t.Errorf("ParseKey(%q) (-want +got):\n%s", tt.want, diff)
				}
			})
		}
	}
}

func TestLayoutRootSlashes(t *testing.T) {
	// Roots written with stray slashes in the configuration still give the
	// same keys as distribution's rootdirectory does.
	want := Layout{Root: "team/prod"}.BlobData(dgst)
	for _, root := range []string{"/team/prod", "team/prod/", "/team/prod/"} {
		if got := (Layout{Root: root}).BlobData(dgst); got != want {
			t.Errorf("root %q: %q, want %q", root, got, want)
		}
	}
}

func TestParseKeyRejects(t *testing.T) {
	l := Layout{Root: "r"}
	v2 := "r/docker/registry/v2/"
	for _, key := range []string{
		"",
		"docker/registry/v2/blobs/sha256/96/" + sha256Hex + "/data", // outside the root
		"other/docker/registry/v2/blobs/sha256/96/" + sha256Hex + "/data",
		v2 + "blobs/sha256/96/" + sha256Hex,                            // no data
		v2 + "blobs/sha256/97/" + sha256Hex + "/data",                  // wrong fan-out
		v2 + "blobs/sha256/96/" + sha256Hex[:10] + "/data",             // short hex
		v2 + "blobs/sha256/96/" + strings.ToUpper(sha256Hex) + "/data", // not lower hex
		v2 + "blobs/md5/96/" + sha256Hex + "/data",                     // unknown algorithm
		v2 + "repositories/_layers/sha256/" + sha256Hex + "/link",      // no repository
		v2 + "repositories/a//b/_layers/sha256/" + sha256Hex + "/link", // empty component
		v2 + "repositories/a/_layers/sha256/" + sha256Hex,              // no link
		v2 + "repositories/a/_layers//" + sha256Hex + "/link",          // no algorithm
		v2 + "repositories/a/_manifests/revisions/sha256/" + sha256Hex, // no link
		v2 + "repositories/a/_manifests/tags/t/current",                // no link
		v2 + "repositories/a/_manifests/tags//current/link",            // no tag
		v2 + "repositories/a/_manifests/tags/t/index/sha256/abc/link",  // bad digest
		v2 + "repositories/a/_uploads/id/startedat",                    // distribution only
		v2 + "repositories/a/_uploads/id/hashstates/sha256/0",          // distribution only
		v2 + "repositories/a/_uploads//data",                           // no id
		v2 + "repositories/a/_deleted/sha256/" + sha256Hex + "/link",   // unknown
		v2 + "repositories/a/b",                                        // no kind
		v2 + "repositories/a/_manifests/revisions/sha256/" + sha256Hex + "/signatures/sha256/" + sha256Hex + "/link",
	} {
		if info, ok := l.ParseKey(key); ok {
			t.Errorf("ParseKey(%q) = %+v, want rejection", key, info)
		}
	}
}
