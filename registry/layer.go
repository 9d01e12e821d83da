// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import (
	"context"
	"io"
	"reflect"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer is a [Store] that wraps another one in the serving chain (the
// pull-through cache, the scan gate): it answers the contract itself and
// names the store it wraps, so that optional abilities can be looked up
// through it with [Ability].
//
// A layer embeds [Undecided], never the store it wraps, and writes each
// contract method it serves: a method it did not write is refused, not
// passed on unseen. A test of the serving chain checks this for every
// layer by reflection.
type Layer interface {
	Store
	// Unwrap returns the store this layer wraps.
	Unwrap() Store
	// Passes reports whether the optional ability (an interface type
	// such as [BlobRedirector]) of the wrapped store may answer through
	// this layer unchanged. A layer says false for an ability it does not
	// know, so that an ability added later is not offered through a
	// layer nobody checked.
	Passes(ability reflect.Type) bool
}

// Ability returns the optional ability T (an interface such as
// [BlobRedirector]) of s: s's own, or, when s is a [Layer] that passes T,
// the ability of the store it wraps, and so on inwards. ok is false when
// no store answers for T or a layer on the way does not pass it.
func Ability[T any](s Store) (ability T, ok bool) {
	want := reflect.TypeFor[T]()
	for s != nil {
		if a, ok := s.(T); ok {
			return a, true
		}
		l, ok := s.(Layer)
		if !ok || !l.Passes(want) {
			break
		}
		s = l.Unwrap()
	}
	return ability, false
}

// Undecided is the base a [Layer] embeds: every method of [Store] refuses
// with UNSUPPORTED, so that a contract method added later is refused by
// every layer until someone decides what the layer does with it (the
// model is cue-labs/oci's ocifilter, whose wrappers embed a base of
// refusing funcs). Layer names the refusing layer in the message.
type Undecided struct {
	Layer string
}

func (u Undecided) refuse(op string) error {
	layer := u.Layer
	if layer == "" {
		layer = "a layer of the serving chain"
	}
	return ErrUnsupported.WithMessage("%s: %s does not serve this operation", op, layer)
}

// StatBlob refuses.
func (u Undecided) StatBlob(context.Context, string, digest.Digest) (BlobInfo, error) {
	return BlobInfo{}, u.refuse("stat blob")
}

// OpenBlob refuses.
func (u Undecided) OpenBlob(context.Context, string, digest.Digest, int64, int64) (io.ReadCloser, error) {
	return nil, u.refuse("read blob")
}

// StartUpload refuses.
func (u Undecided) StartUpload(context.Context, string) (UploadSession, error) {
	return UploadSession{}, u.refuse("start upload")
}

// UploadStatus refuses.
func (u Undecided) UploadStatus(context.Context, string, string) (UploadSession, error) {
	return UploadSession{}, u.refuse("upload status")
}

// AppendUpload refuses.
func (u Undecided) AppendUpload(context.Context, string, string, int64, io.Reader) (UploadSession, error) {
	return UploadSession{}, u.refuse("append to upload")
}

// CommitUpload refuses.
func (u Undecided) CommitUpload(context.Context, string, string, int64, io.Reader, digest.Digest) (BlobInfo, error) {
	return BlobInfo{}, u.refuse("commit upload")
}

// CancelUpload refuses.
func (u Undecided) CancelUpload(context.Context, string, string) error {
	return u.refuse("cancel upload")
}

// PutBlob refuses.
func (u Undecided) PutBlob(context.Context, string, digest.Digest, int64, io.Reader) (BlobInfo, error) {
	return BlobInfo{}, u.refuse("put blob")
}

// MountBlob refuses.
func (u Undecided) MountBlob(context.Context, string, string, digest.Digest) (BlobInfo, bool, error) {
	return BlobInfo{}, false, u.refuse("mount blob")
}

// DeleteBlob refuses.
func (u Undecided) DeleteBlob(context.Context, string, digest.Digest) error {
	return u.refuse("delete blob")
}

// GetManifest refuses.
func (u Undecided) GetManifest(context.Context, string, string, digest.Digest) (StoredManifest, error) {
	return StoredManifest{}, u.refuse("read manifest")
}

// PutManifest refuses.
func (u Undecided) PutManifest(context.Context, ManifestPut) (*Manifest, error) {
	return nil, u.refuse("put manifest")
}

// DeleteManifest refuses.
func (u Undecided) DeleteManifest(context.Context, string, digest.Digest) error {
	return u.refuse("delete manifest")
}

// DeleteTag refuses.
func (u Undecided) DeleteTag(context.Context, string, string) error {
	return u.refuse("delete tag")
}

// Tags refuses.
func (u Undecided) Tags(context.Context, string, string, int) ([]string, bool, error) {
	return nil, false, u.refuse("list tags")
}

// Catalog refuses.
func (u Undecided) Catalog(context.Context, string, int) ([]string, bool, error) {
	return nil, false, u.refuse("list repositories")
}

// Referrers refuses.
func (u Undecided) Referrers(context.Context, string, digest.Digest, string) ([]ocispec.Descriptor, error) {
	return nil, u.refuse("list referrers")
}

// Ready reports the layer unready: a layer that did not decide on
// readiness cannot say it serves.
func (u Undecided) Ready(context.Context) error {
	return u.refuse("readiness")
}

var _ Store = Undecided{}
