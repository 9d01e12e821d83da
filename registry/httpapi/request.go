// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	// Digests in sha256 and sha512 need their hashes linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"net/http"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// kind is the resource a /v2 request addresses.
type kind int

// The resources of the distribution API. The endpoint ids (end-N) are the
// spec's endpoint table.
const (
	kindUnknown kind = iota
	// end-1: /v2/
	kindBase
	// /v2/_catalog (not in the OCI spec; Docker's listing of repositories)
	kindCatalog
	// end-2, end-10: /v2/<name>/blobs/<digest>
	kindBlob
	// end-4a, end-4b, end-11: /v2/<name>/blobs/uploads/
	kindUploads
	// end-5, end-6, end-13, DELETE: /v2/<name>/blobs/uploads/<id>
	kindUpload
	// end-3, end-7, end-9: /v2/<name>/manifests/<reference>
	kindManifest
	// end-8a, end-8b: /v2/<name>/tags/list
	kindTags
	// end-12a, end-12b: /v2/<name>/referrers/<digest>
	kindReferrers
)

// route is the kind's metrics and log label: a fixed word, never the raw
// path, so a label's cardinality stays bounded.
func (k kind) route() string {
	switch k {
	case kindBase:
		return "base"
	case kindCatalog:
		return "catalog"
	case kindBlob:
		return "blob"
	case kindUploads, kindUpload:
		return "upload"
	case kindManifest:
		return "manifest"
	case kindTags:
		return "tags"
	case kindReferrers:
		return "referrers"
	}
	return "unknown"
}

// request is a /v2 request path parsed once, with every part validated.
type request struct {
	kind kind
	// repo is the repository name (all kinds but base and catalog).
	repo string
	// digest is the blob's (kindBlob), the referrers' subject
	// (kindReferrers) or the manifest's when addressed by digest.
	digest digest.Digest
	// tag is the manifest's when addressed by tag.
	tag string
	// uploadID is the upload session (kindUpload).
	uploadID string
}

// errNoRoute answers a /v2 path that names no endpoint. The spec has no code
// for it; UNSUPPORTED with 404 says "nothing here" without claiming that a
// repository or manifest is unknown.
var errNoRoute = &registry.Error{Code: registry.CodeUnsupported, Message: "no such endpoint", Status: http.StatusNotFound}

// uploadIDRE is what an upload id may be: URL-unreserved characters only,
// so that it travels in a Location header without escaping and comes back
// byte for byte.
var uploadIDRE = regexp.MustCompile(`^[A-Za-z0-9._~=-]{1,512}$`)

// validUploadID reports whether id can name an upload session; ".." is
// refused too, so that no id can be mistaken for a path step by whatever
// builds keys from it.
func validUploadID(id string) bool {
	return uploadIDRE.MatchString(id) && !strings.Contains(id, "..")
}

// parsePath parses the escaped (raw, as sent) path of a request. It works
// from the end of the path because repository names contain slashes; a
// repository may even be named "blobs" or "manifests".
//
// It never decodes or cleans the path: the only escape accepted is "%3A"
// (":", which some clients escape in digests); any other "%" and any "." or
// ".." segment is NAME_INVALID, whatever it would decode to.
func parsePath(escaped string) (request, error) {
	if escaped == "/v2" || escaped == "/v2/" {
		return request{kind: kindBase}, nil
	}
	rest, ok := strings.CutPrefix(escaped, "/v2/")
	if !ok {
		return request{}, errNoRoute
	}
	if strings.Contains(rest, "%") {
		rest = strings.ReplaceAll(strings.ReplaceAll(rest, "%3A", ":"), "%3a", ":")
		if strings.Contains(rest, "%") {
			return request{}, registry.ErrNameInvalid.WithMessage("percent-encoded characters are not allowed in the path")
		}
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "." || seg == ".." {
			return request{}, registry.ErrNameInvalid.WithMessage("dot segments are not allowed in the path")
		}
	}
	if rest == "_catalog" {
		return request{kind: kindCatalog}, nil
	}

	// POST /v2/<name>/blobs/uploads/ (the trailing slash is optional).
	for _, suffix := range []string{"/blobs/uploads/", "/blobs/uploads"} {
		if repo, ok := strings.CutSuffix(rest, suffix); ok {
			return withRepo(request{kind: kindUploads}, repo)
		}
	}

	head, last, ok := cutLast(rest)
	if !ok || last == "" {
		return request{}, errNoRoute
	}
	repo, lastButOne, ok := cutLast(head)
	if !ok {
		return request{}, errNoRoute
	}
	switch lastButOne {
	case "blobs":
		req, err := withRepo(request{kind: kindBlob}, repo)
		if err != nil {
			return req, err
		}
		req.digest, err = registry.ParseDigest(last)
		return req, err

	case "uploads":
		repo, ok := strings.CutSuffix(repo, "/blobs")
		if !ok {
			return request{}, errNoRoute
		}
		req, err := withRepo(request{kind: kindUpload}, repo)
		if err != nil {
			return req, err
		}
		if !validUploadID(last) {
			// No session can have this id.
			return req, registry.ErrBlobUploadUnknown
		}
		req.uploadID = last
		return req, nil

	case "manifests":
		req, err := withRepo(request{kind: kindManifest}, repo)
		if err != nil {
			return req, err
		}
		if strings.Contains(last, ":") {
			req.digest, err = registry.ParseDigest(last)
			return req, err
		}
		if !registry.ValidTag(last) {
			return req, errTagInvalid(last)
		}
		req.tag = last
		return req, nil

	case "tags":
		if last != "list" {
			return request{}, errNoRoute
		}
		return withRepo(request{kind: kindTags}, repo)

	case "referrers":
		req, err := withRepo(request{kind: kindReferrers}, repo)
		if err != nil {
			return req, err
		}
		req.digest, err = registry.ParseDigest(last)
		return req, err
	}
	return request{}, errNoRoute
}

// withRepo validates repo and sets it on req. On error the kind is kept so
// that the failure is still counted under its route.
func withRepo(req request, repo string) (request, error) {
	if err := registry.ValidateName(repo); err != nil {
		return request{kind: req.kind}, err
	}
	req.repo = repo
	return req, nil
}

// errTagInvalid answers a tag outside the spec's grammar. The spec has no
// TAG_INVALID code; MANIFEST_INVALID is its code for a refused manifest
// push, and the status is 400 for every method, because such a tag can
// never name anything.
func errTagInvalid(tag string) error {
	return registry.ErrManifestInvalid.WithMessage("invalid tag %q: a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", tag)
}

// cutLast splits s around its last "/".
func cutLast(s string) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return "", s, false
}
