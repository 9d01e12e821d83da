// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is everything the HTTP layer serves from. Every method validates
// nothing the HTTP layer already parsed (names, digests, tags are valid when
// they arrive) and returns the package's *Error values for what the client
// got wrong; any other error is an internal failure.
type Store interface {
	BlobReader
	BlobWriter
	BlobDeleter
	ManifestReader
	ManifestWriter
	ManifestDeleter
	Lister
	// Ready reports whether this replica can serve (for /readyz): nil
	// when every dependency answers, a [*DegradedError] when it serves
	// with one away (what needs it fails fast with UNAVAILABLE), any
	// other error when it cannot serve at all.
	Ready(ctx context.Context) error
}

// DegradedError is [Store.Ready]'s answer for a store that serves with a
// dependency away: a balancer keeps the replica in, since every replica
// is in the same state and reads of the index still work.
type DegradedError struct {
	// Dependency names what is away, such as "s3"; no internals.
	Dependency string
	// Err is why, for the log only.
	Err error
}

// Error implements error.
func (e *DegradedError) Error() string { return "degraded: " + e.Dependency + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *DegradedError) Unwrap() error { return e.Err }

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Digest digest.Digest
	Size   int64
}

// BlobReader reads blobs of a repository.
type BlobReader interface {
	// StatBlob returns the blob linked into repo.
	// Errors: ErrBlobUnknown.
	StatBlob(ctx context.Context, repo string, d digest.Digest) (BlobInfo, error)
	// OpenBlob streams length bytes of the blob from offset (length -1: to
	// the end). The caller checked the range against StatBlob's size.
	// Errors: ErrBlobUnknown.
	OpenBlob(ctx context.Context, repo string, d digest.Digest, offset, length int64) (io.ReadCloser, error)
}

// BlobRedirector is an optional ability of a [BlobReader]: a URL where the
// client can fetch the blob itself (a presigned S3 GET), so the replica
// carries no blob bytes. ok is false when redirects are off.
type BlobRedirector interface {
	BlobURL(ctx context.Context, repo string, d digest.Digest) (url string, ok bool, err error)
}

// UploadSession is the state of a blob upload that any replica can
// continue.
type UploadSession struct {
	ID     string
	Repo   string
	Offset int64 // bytes received so far
}

// BlobWriter receives blobs: uploads in one or many requests, and mounts.
type BlobWriter interface {
	// StartUpload opens an upload session in repo.
	StartUpload(ctx context.Context, repo string) (UploadSession, error)
	// UploadStatus returns the session.
	// Errors: ErrBlobUploadUnknown.
	UploadStatus(ctx context.Context, repo, id string) (UploadSession, error)
	// AppendUpload appends body to the session. start is where the client
	// says the chunk begins (from Content-Range), or -1 when it did not
	// say; a start other than the session's offset changes nothing.
	// Errors: ErrBlobUploadUnknown, ErrRangeInvalid.
	AppendUpload(ctx context.Context, repo, id string, start int64, body io.Reader) (UploadSession, error)
	// CommitUpload appends body (which may be empty) and finishes the
	// upload as blob d. On a digest mismatch nothing is stored.
	// Errors: ErrBlobUploadUnknown, ErrRangeInvalid, ErrDigestInvalid.
	CommitUpload(ctx context.Context, repo, id string, start int64, body io.Reader, d digest.Digest) (BlobInfo, error)
	// CancelUpload aborts the session and deletes what it staged.
	// Errors: ErrBlobUploadUnknown.
	CancelUpload(ctx context.Context, repo, id string) error
	// PutBlob stores a whole blob in one call (a monolithic upload). size
	// is the body's length, or -1 when unknown.
	// Errors: ErrDigestInvalid, ErrSizeInvalid.
	PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader) (BlobInfo, error)
	// MountBlob links blob d into repo from repository from, or from any
	// repository holding it when from is "". ok is false when there is no
	// such blob to mount, and the client should upload instead.
	MountBlob(ctx context.Context, repo, from string, d digest.Digest) (info BlobInfo, ok bool, err error)
}

// BlobDeleter removes blob links.
type BlobDeleter interface {
	// DeleteBlob unlinks blob d from repo; the bytes go with GC.
	// Errors: ErrBlobUnknown, ErrDenied (a manifest still references it).
	DeleteBlob(ctx context.Context, repo string, d digest.Digest) error
}

// StoredManifest is a manifest with its bytes.
type StoredManifest struct {
	Digest    digest.Digest
	MediaType string
	Content   []byte
}

// ManifestReader reads manifests.
type ManifestReader interface {
	// GetManifest returns the manifest of repo by digest, or by tag when
	// d is "".
	// Errors: ErrManifestUnknown.
	GetManifest(ctx context.Context, repo, tag string, d digest.Digest) (StoredManifest, error)
}

// ManifestPut is a manifest push: the bytes and where to put them.
type ManifestPut struct {
	Repo      string
	MediaType string // the request's Content-Type
	Content   []byte
	// Digest is the manifest's digest, computed by the caller in the
	// algorithm the client asked for (sha256 when pushed by tag).
	Digest digest.Digest
	// Tags are set to point at the manifest (the tag of a PUT by tag,
	// or the tag parameters of a PUT by digest).
	Tags []string
}

// ManifestWriter stores manifests.
type ManifestWriter interface {
	// PutManifest validates, stores and tags a manifest, returning its
	// parsed form (for the OCI-Subject header).
	// Errors: ErrManifestInvalid, ErrManifestBlobUnknown.
	PutManifest(ctx context.Context, p ManifestPut) (*Manifest, error)
}

// ManifestDeleter removes manifests and tags.
type ManifestDeleter interface {
	// DeleteManifest removes the manifest and every tag pointing at it.
	// Errors: ErrManifestUnknown.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	// DeleteTag removes a tag, leaving its manifest.
	// Errors: ErrManifestUnknown.
	DeleteTag(ctx context.Context, repo, tag string) error
}

// Lister answers the listing endpoints. Pagination is by the last name
// returned; n <= 0 means the server's default page size.
type Lister interface {
	// Tags lists repo's tags in lexical order after last.
	// Errors: ErrNameUnknown.
	Tags(ctx context.Context, repo, last string, n int) (tags []string, more bool, err error)
	// Catalog lists repository names in lexical order after last.
	Catalog(ctx context.Context, last string, n int) (repos []string, more bool, err error)
	// Referrers lists the manifests of repo whose subject is d, filtered
	// by artifactType unless it is "".
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error)
}
