// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

// The bucket layout is CNCF distribution's, key for key, so that a bucket
// written by distribution's S3 driver can be adopted and the other way round.
// rebuild-db and garbage collection read the bucket through [Layout.ParseKey],
// so every key this package writes must also parse back.
//
//	<root>/docker/registry/v2/
//	├── blobs/
//	│   └── <algorithm>/<first two hex>/<hex>/
//	│       └── data                                   the blob's bytes
//	└── repositories/
//	    └── <name>/                                    may contain "/"
//	        ├── _layers/
//	        │   └── <algorithm>/<hex>/link             "sha256:…": blob is in the repository
//	        ├── _manifests/
//	        │   ├── revisions/
//	        │   │   └── <algorithm>/<hex>/link         "sha256:…": manifest is in the repository
//	        │   └── tags/
//	        │       └── <tag>/
//	        │           ├── current/link               "sha256:…": what the tag points at now
//	        │           └── index/
//	        │               └── <algorithm>/<hex>/link every manifest the tag has pointed at
//	        └── _uploads/
//	            └── <id>/
//	                ├── data                           bytes received so far
//	                ├── startedat                      distribution only; never written here
//	                └── hashstates/<algorithm>/<offset> distribution only; never written here
//
// <root> is the configured prefix; with none, keys begin "docker/registry/v2/".
// Repository-level directory names begin with "_" because a repository path
// component never can (distribution reference grammar), which is what lets
// [Layout.ParseKey] find where the repository name ends.

import (
	_ "crypto/sha256" // digest.Digest.Validate reports algorithms without a linked hash as unavailable.
	_ "crypto/sha512"
	"strings"

	"github.com/opencontainers/go-digest"
)

// v2Dir is distribution's fixed path below the root directory.
const v2Dir = "docker/registry/v2/"

// Layout builds bucket keys. Root is the optional prefix ("" or e.g.
// "team/prod"), without leading or trailing slash.
//
// Methods taking a repository name, tag, upload id or digest expect values the
// caller has already validated (the OCI name and tag grammars, a valid
// digest); they do no checking of their own.
type Layout struct{ Root string }

// base returns the key prefix every other key starts with.
func (l Layout) base() string {
	root := strings.Trim(l.Root, "/")
	if root == "" {
		return v2Dir
	}
	return root + "/" + v2Dir
}

// digestDirs is distribution's digestPathComponents: "<algorithm>/<hex>",
// with the first two hex characters as an extra level when fanOut is set,
// which only the blob store uses.
func digestDirs(d digest.Digest, fanOut bool) string {
	alg := string(d.Algorithm())
	hex := d.Encoded()
	if fanOut && len(hex) >= 2 {
		return alg + "/" + hex[:2] + "/" + hex
	}
	return alg + "/" + hex
}

// BlobsPrefix is the prefix of every blob in the shared blob store.
func (l Layout) BlobsPrefix() string { return l.base() + "blobs/" }

// BlobData is the key holding the bytes of the blob d.
func (l Layout) BlobData(d digest.Digest) string {
	return l.BlobsPrefix() + digestDirs(d, true) + "/data"
}

// RepositoriesPrefix is the prefix of every repository's keys.
func (l Layout) RepositoriesPrefix() string { return l.base() + "repositories/" }

// RepositoryPrefix is the prefix of all keys of one repository.
func (l Layout) RepositoryPrefix(repo string) string {
	return l.RepositoriesPrefix() + repo + "/"
}

// LayersPrefix is the prefix of the repository's blob links.
func (l Layout) LayersPrefix(repo string) string { return l.RepositoryPrefix(repo) + "_layers/" }

// LayerLink is the key whose existence puts blob d into the repository.
func (l Layout) LayerLink(repo string, d digest.Digest) string {
	return l.LayersPrefix(repo) + digestDirs(d, false) + "/link"
}

// RevisionsPrefix is the prefix of the repository's manifest links.
func (l Layout) RevisionsPrefix(repo string) string {
	return l.RepositoryPrefix(repo) + "_manifests/revisions/"
}

// RevisionLink is the key whose existence puts manifest d into the repository.
func (l Layout) RevisionLink(repo string, d digest.Digest) string {
	return l.RevisionsPrefix(repo) + digestDirs(d, false) + "/link"
}

// TagsPrefix is the prefix of all tags of the repository.
func (l Layout) TagsPrefix(repo string) string {
	return l.RepositoryPrefix(repo) + "_manifests/tags/"
}

// TagPrefix is the prefix of everything stored for one tag; deleting it
// deletes the tag.
func (l Layout) TagPrefix(repo, tag string) string { return l.TagsPrefix(repo) + tag + "/" }

// TagCurrentLink is the key holding the digest the tag points at.
func (l Layout) TagCurrentLink(repo, tag string) string {
	return l.TagPrefix(repo, tag) + "current/link"
}

// TagIndexLink is the key recording that the tag has pointed at manifest d.
func (l Layout) TagIndexLink(repo, tag string, d digest.Digest) string {
	return l.TagPrefix(repo, tag) + "index/" + digestDirs(d, false) + "/link"
}

// UploadsPrefix is the prefix of the repository's upload sessions.
func (l Layout) UploadsPrefix(repo string) string { return l.RepositoryPrefix(repo) + "_uploads/" }

// UploadPrefix is the prefix of everything stored for one upload session.
func (l Layout) UploadPrefix(repo, id string) string { return l.UploadsPrefix(repo) + id + "/" }

// UploadData is the key an upload session's bytes are assembled at.
func (l Layout) UploadData(repo, id string) string { return l.UploadPrefix(repo, id) + "data" }

// KeyKind says what a bucket key holds; see [Layout.ParseKey].
type KeyKind int

// The kinds of key [Layout.ParseKey] recognises.
const (
	KeyUnknown        KeyKind = iota // not one of the kinds below
	KeyBlobData                      // [Layout.BlobData]
	KeyLayerLink                     // [Layout.LayerLink]
	KeyRevisionLink                  // [Layout.RevisionLink]
	KeyTagCurrentLink                // [Layout.TagCurrentLink]
	KeyTagIndexLink                  // [Layout.TagIndexLink]
	KeyUploadData                    // [Layout.UploadData]
)

var keyKindNames = [...]string{
	KeyUnknown:        "unknown",
	KeyBlobData:       "blob-data",
	KeyLayerLink:      "layer-link",
	KeyRevisionLink:   "revision-link",
	KeyTagCurrentLink: "tag-current-link",
	KeyTagIndexLink:   "tag-index-link",
	KeyUploadData:     "upload-data",
}

// String names the kind for logs.
func (k KeyKind) String() string {
	if k < 0 || int(k) >= len(keyKindNames) {
		return "unknown"
	}
	return keyKindNames[k]
}

// KeyInfo is what a key says about itself. Only the fields its Kind implies
// are set: Digest for blobs and links, Repo for everything below
// repositories/, Tag for tag links, UploadID for upload data.
type KeyInfo struct {
	Kind     KeyKind
	Repo     string
	Tag      string
	Digest   digest.Digest
	UploadID string
}

// ParseKey classifies a key built by this Layout (or written by distribution
// under the same root). It reports false for keys outside the root, keys of
// kinds it does not know (distribution's startedat and hashstates, manifest
// signatures), and keys whose digest is malformed or of an algorithm not
// linked into the binary.
func (l Layout) ParseKey(key string) (KeyInfo, bool) {
	rest, ok := strings.CutPrefix(key, l.base())
	if !ok {
		return KeyInfo{}, false
	}
	if rest, ok := strings.CutPrefix(rest, "blobs/"); ok {
		return parseBlobKey(rest)
	}
	if rest, ok := strings.CutPrefix(rest, "repositories/"); ok {
		return parseRepositoryKey(rest)
	}
	return KeyInfo{}, false
}

// parseBlobKey parses "<algorithm>/<first two hex>/<hex>/data".
func parseBlobKey(rest string) (KeyInfo, bool) {
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[3] != "data" || !strings.HasPrefix(parts[2], parts[1]) || len(parts[1]) != 2 {
		return KeyInfo{}, false
	}
	d, ok := parseDigestDirs(parts[0], parts[2])
	if !ok {
		return KeyInfo{}, false
	}
	return KeyInfo{Kind: KeyBlobData, Digest: d}, true
}

// parseRepositoryKey parses everything below "repositories/".
func parseRepositoryKey(rest string) (KeyInfo, bool) {
	parts := strings.Split(rest, "/")
	// The repository name ends before the first component starting with "_",
	// since the name grammar forbids that in a name component.
	i := 0
	for i < len(parts) && !strings.HasPrefix(parts[i], "_") {
		if parts[i] == "" {
			return KeyInfo{}, false
		}
		i++
	}
	if i == 0 || i == len(parts) {
		return KeyInfo{}, false
	}
	repo := strings.Join(parts[:i], "/")
	p := parts[i:]
	var info KeyInfo
	alg := -1 // index in p of the digest's algorithm directory, if the kind has one
	switch {
	case p[0] == "_layers" && len(p) == 4 && p[3] == "link":
		info, alg = KeyInfo{Kind: KeyLayerLink}, 1
	case p[0] == "_manifests" && len(p) == 5 && p[1] == "revisions" && p[4] == "link":
		info, alg = KeyInfo{Kind: KeyRevisionLink}, 2
	case p[0] == "_manifests" && len(p) == 5 && p[1] == "tags" && p[2] != "" && p[3] == "current" && p[4] == "link":
		info = KeyInfo{Kind: KeyTagCurrentLink, Tag: p[2]}
	case p[0] == "_manifests" && len(p) == 7 && p[1] == "tags" && p[2] != "" && p[3] == "index" && p[6] == "link":
		info, alg = KeyInfo{Kind: KeyTagIndexLink, Tag: p[2]}, 4
	case p[0] == "_uploads" && len(p) == 3 && p[1] != "" && p[2] == "data":
		info = KeyInfo{Kind: KeyUploadData, UploadID: p[1]}
	default:
		return KeyInfo{}, false
	}
	info.Repo = repo
	if alg >= 0 {
		d, ok := parseDigestDirs(p[alg], p[alg+1])
		if !ok {
			return KeyInfo{}, false
		}
		info.Digest = d
	}
	return info, true
}

// parseDigestDirs turns the "<algorithm>/<hex>" directories back into a
// validated digest.
func parseDigestDirs(alg, hex string) (digest.Digest, bool) {
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}
