// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// DefaultLockWait is how long a replica waits for another one fetching
// the same blob from upstream before streaming it itself, uncached.
const DefaultLockWait = 10 * time.Second

// Store serves the registry API over the local store, adding the policy
// file's remotes (pull-through caches) and virtual names: reads of them
// are resolved here, every write refused; every other repository passes
// through untouched. It is a [registry.Layer]: each contract method is
// written here, and one it does not write is refused by
// [registry.Undecided], never passed to the local store unseen.
type Store struct {
	registry.Undecided
	local    *store.Store
	policy   func() *policy.Policy
	log      zerolog.Logger
	lockWait time.Duration
	allowed  Access // nil: every source readable

	mu        sync.Mutex
	upstreams map[string]*Upstream // by remote prefix, URL and credentials variable
	stats     map[string]*[2]int64 // hits, misses by remote prefix, since the last flush
}

var (
	_ registry.Layer          = (*Store)(nil)
	_ registry.BlobRedirector = (*Store)(nil)
)

// New wraps local with the remotes and virtual names of the policy in
// force.
func New(local *store.Store, pol func() *policy.Policy, log zerolog.Logger) *Store {
	return &Store{Undecided: registry.Undecided{Layer: "the pull-through cache"}, local: local, policy: pol, log: log, lockWait: DefaultLockWait,
		upstreams: map[string]*Upstream{}, stats: map[string]*[2]int64{}}
}

// Unwrap returns the local store.
func (s *Store) Unwrap() registry.Store { return s.local }

// Passes passes no optional ability of the local store: the one there is,
// [registry.BlobRedirector], is answered by [Store.BlobURL] itself, since
// a remote's or virtual name's redirect needs the sources resolved and
// the caller's rights checked.
func (s *Store) Passes(reflect.Type) bool { return false }

// Ready is the local store's readiness: upstreams being away leaves
// what is cached servable.
func (s *Store) Ready(ctx context.Context) error { return s.local.Ready(ctx) }

// Catalog lists the local repositories, cached remote ones included;
// virtual names hold nothing of their own, so they are not listed.
func (s *Store) Catalog(ctx context.Context, last string, n int) ([]string, bool, error) {
	return s.local.Catalog(ctx, last, n)
}

// upstream returns the client of remote r, made once per configuration.
func (s *Store) upstream(r *policy.Remote) (*Upstream, error) {
	key := r.Prefix + "\x00" + r.URL + "\x00" + r.CredentialsEnv
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.upstreams[key]; ok {
		return u, nil
	}
	var user, pass string
	if r.CredentialsEnv != "" {
		creds, ok := os.LookupEnv(r.CredentialsEnv)
		if !ok {
			return nil, fmt.Errorf("%w: remote %s: $%s is not set", ErrUpstream, r.Prefix, r.CredentialsEnv)
		}
		user, pass, _ = strings.Cut(creds, ":")
	}
	u, err := NewUpstream(r.URL, user, pass, nil)
	if err != nil {
		return nil, err
	}
	s.upstreams[key] = u
	return u, nil
}

func (s *Store) count(r *policy.Remote, hit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.stats[r.Prefix]
	if c == nil {
		c = new([2]int64)
		s.stats[r.Prefix] = c
	}
	if hit {
		c[0]++
	} else {
		c[1]++
	}
}

// FlushStats adds the hits and misses counted since the last flush to the
// index, for registry proxy.
func (s *Store) FlushStats(ctx context.Context) error {
	s.mu.Lock()
	stats := s.stats
	s.stats = map[string]*[2]int64{}
	s.mu.Unlock()
	for remote, c := range stats {
		if err := s.local.AddProxyStats(ctx, remote, c[0], c[1]); err != nil {
			return err
		}
	}
	return nil
}

// sources are the repositories a read of repo tries, in order.
func (s *Store) sources(repo string) []string {
	if srcs, ok := s.policy().Resolve(repo); ok {
		return srcs
	}
	return []string{repo}
}

// refuseWrite refuses writes into remote and virtual repositories.
func (s *Store) refuseWrite(repo string) error {
	p := s.policy()
	if r, ok := p.RemoteFor(repo); ok {
		return registry.ErrDenied.WithMessage("%s is a pull-through cache of another registry; push to a repository outside %s", repo, r.Prefix)
	}
	if _, ok := p.Resolve(repo); ok {
		return registry.ErrDenied.WithMessage("%s is a virtual name that reads other repositories; push to one of them", repo)
	}
	return nil
}

// notFound reports the errors that send a read on to the next source.
func notFound(err error) bool {
	return errors.Is(err, registry.ErrManifestUnknown) || errors.Is(err, registry.ErrBlobUnknown) ||
		errors.Is(err, registry.ErrNameUnknown)
}

// firstOf runs read on each source of repo the caller may read until one
// finds something. With audit set, a source the caller may not read that
// the search reaches is recorded as refused: set it on the one read that
// decides a request's answer, so that a request is audited once.
func firstOf[T any](ctx context.Context, s *Store, repo string, audit bool, read func(src string) (T, error)) (T, error) {
	var zero T
	var err error
	for _, src := range s.sources(repo) {
		if !s.mayRead(ctx, repo, src, audit) {
			continue
		}
		var v T
		v, err = read(src)
		if err == nil || !notFound(err) {
			return v, err
		}
	}
	if err == nil {
		err = registry.ErrNameUnknown
	}
	return zero, err
}

// GetManifest reads a manifest locally, from the pull-through cache or
// from upstream, across a virtual name's sources.
func (s *Store) GetManifest(ctx context.Context, repo, tag string, d digest.Digest) (registry.StoredManifest, error) {
	return firstOf(ctx, s, repo, true, func(src string) (registry.StoredManifest, error) {
		if r, ok := s.policy().RemoteFor(src); ok {
			return s.remoteManifest(ctx, r, src, tag, d)
		}
		return s.local.GetManifest(ctx, src, tag, d)
	})
}

// StatBlob finds a blob locally, or its size upstream.
func (s *Store) StatBlob(ctx context.Context, repo string, d digest.Digest) (registry.BlobInfo, error) {
	return firstOf(ctx, s, repo, true, func(src string) (registry.BlobInfo, error) {
		info, err := s.local.StatBlob(ctx, src, d)
		r, remote := s.policy().RemoteFor(src)
		if !remote || !errors.Is(err, registry.ErrBlobUnknown) {
			return info, err
		}
		u, err := s.upstream(r)
		if err != nil {
			return info, s.unavailable(r, err)
		}
		size, err := u.StatBlob(ctx, UpstreamName(strings.TrimPrefix(src, r.Prefix), r.Library), d)
		return registry.BlobInfo{Digest: d, Size: size}, s.unavailable(r, err)
	})
}

// OpenBlob streams a blob from the local store or, for a remote's blob
// not cached yet, from upstream while caching it. It follows StatBlob,
// which audited the sources refused.
func (s *Store) OpenBlob(ctx context.Context, repo string, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	return firstOf(ctx, s, repo, false, func(src string) (io.ReadCloser, error) {
		rc, err := s.local.OpenBlob(ctx, src, d, offset, length)
		r, remote := s.policy().RemoteFor(src)
		if !remote || !errors.Is(err, registry.ErrBlobUnknown) {
			if remote && err == nil {
				s.count(r, true)
			}
			return rc, err
		}
		return s.remoteBlob(ctx, r, src, d, offset, length)
	})
}

// BlobURL redirects only to blobs the bucket holds, of sources the
// caller may read. It follows StatBlob, which audited the sources refused.
func (s *Store) BlobURL(ctx context.Context, repo string, d digest.Digest) (string, bool, error) {
	srcs := s.readable(ctx, repo)
	if len(srcs) == 1 && srcs[0] == repo {
		if _, remote := s.policy().RemoteFor(repo); !remote {
			return s.local.BlobURL(ctx, repo, d)
		}
	}
	for _, src := range srcs {
		if _, err := s.local.StatBlob(ctx, src, d); err == nil {
			return s.local.BlobURL(ctx, src, d)
		}
	}
	return "", false, nil // not cached yet: served through the replica
}

// Tags lists the tags of the first source that has the repository; a
// remote lists the tags it has cached, without asking upstream.
func (s *Store) Tags(ctx context.Context, repo, last string, n int) ([]string, bool, error) {
	type page struct {
		tags []string
		more bool
	}
	p, err := firstOf(ctx, s, repo, true, func(src string) (page, error) {
		tags, more, err := s.local.Tags(ctx, src, last, n)
		return page{tags, more}, err
	})
	return p.tags, p.more, err
}

// Referrers lists the referrers of the subject in every source the caller
// may read.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	all := []ocispec.Descriptor{} // an empty list, never null, in the index
	for _, src := range s.sources(repo) {
		if !s.mayRead(ctx, repo, src, true) {
			continue
		}
		refs, err := s.local.Referrers(ctx, src, d, artifactType)
		if err != nil && !notFound(err) {
			return nil, err
		}
		all = append(all, refs...)
	}
	return all, nil
}

// The writes: refused for remote and virtual repositories.

// StartUpload refuses remote and virtual repositories.
func (s *Store) StartUpload(ctx context.Context, repo string) (registry.UploadSession, error) {
	if err := s.refuseWrite(repo); err != nil {
		return registry.UploadSession{}, err
	}
	return s.local.StartUpload(ctx, repo)
}

// UploadStatus refuses remote and virtual repositories: no upload can
// have started there.
func (s *Store) UploadStatus(ctx context.Context, repo, id string) (registry.UploadSession, error) {
	if err := s.refuseWrite(repo); err != nil {
		return registry.UploadSession{}, err
	}
	return s.local.UploadStatus(ctx, repo, id)
}

// AppendUpload refuses remote and virtual repositories.
func (s *Store) AppendUpload(ctx context.Context, repo, id string, start int64, body io.Reader) (registry.UploadSession, error) {
	if err := s.refuseWrite(repo); err != nil {
		return registry.UploadSession{}, err
	}
	return s.local.AppendUpload(ctx, repo, id, start, body)
}

// CommitUpload refuses remote and virtual repositories.
func (s *Store) CommitUpload(ctx context.Context, repo, id string, start int64, body io.Reader, d digest.Digest) (registry.BlobInfo, error) {
	if err := s.refuseWrite(repo); err != nil {
		return registry.BlobInfo{}, err
	}
	return s.local.CommitUpload(ctx, repo, id, start, body, d)
}

// CancelUpload refuses remote and virtual repositories.
func (s *Store) CancelUpload(ctx context.Context, repo, id string) error {
	if err := s.refuseWrite(repo); err != nil {
		return err
	}
	return s.local.CancelUpload(ctx, repo, id)
}

// PutBlob refuses remote and virtual repositories.
func (s *Store) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader) (registry.BlobInfo, error) {
	if err := s.refuseWrite(repo); err != nil {
		return registry.BlobInfo{}, err
	}
	return s.local.PutBlob(ctx, repo, d, size, body)
}

// MountBlob refuses remote and virtual repositories.
func (s *Store) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (registry.BlobInfo, bool, error) {
	if err := s.refuseWrite(repo); err != nil {
		return registry.BlobInfo{}, false, err
	}
	return s.local.MountBlob(ctx, repo, from, d)
}

// PutManifest refuses remote and virtual repositories.
func (s *Store) PutManifest(ctx context.Context, p registry.ManifestPut) (*registry.Manifest, error) {
	if err := s.refuseWrite(p.Repo); err != nil {
		return nil, err
	}
	return s.local.PutManifest(ctx, p)
}

// DeleteBlob refuses remote and virtual repositories: their content goes
// with retention and GC.
func (s *Store) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := s.refuseWrite(repo); err != nil {
		return err
	}
	return s.local.DeleteBlob(ctx, repo, d)
}

// DeleteManifest refuses remote and virtual repositories.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	if err := s.refuseWrite(repo); err != nil {
		return err
	}
	return s.local.DeleteManifest(ctx, repo, d)
}

// DeleteTag refuses remote and virtual repositories.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	if err := s.refuseWrite(repo); err != nil {
		return err
	}
	return s.local.DeleteTag(ctx, repo, tag)
}
