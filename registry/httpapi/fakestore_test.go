// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/registry"
)

// fakeStore is an in-memory [registry.Store] for the HTTP tests: maps
// behind a mutex, keeping the contract's errors but nothing of its
// durability. fail, when set, is returned by every call, to play an
// internal failure.
type fakeStore struct {
	mu        sync.Mutex
	blobs     map[digest.Digest][]byte
	links     map[string]map[digest.Digest]bool
	uploads   map[string]*fakeUpload
	manifests map[string]map[digest.Digest]registry.StoredManifest
	tags      map[string]map[string]digest.Digest
	nextID    int
	fail      error
	readyErr  error
}

type fakeUpload struct {
	repo string
	data []byte
}

var _ registry.Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{
		blobs:     map[digest.Digest][]byte{},
		links:     map[string]map[digest.Digest]bool{},
		uploads:   map[string]*fakeUpload{},
		manifests: map[string]map[digest.Digest]registry.StoredManifest{},
		tags:      map[string]map[string]digest.Digest{},
	}
}

// link stores content as a blob of repo, in algorithm alg.
func (f *fakeStore) link(repo string, alg digest.Algorithm, content []byte) digest.Digest {
	d := alg.FromBytes(content)
	f.blobs[d] = content
	if f.links[repo] == nil {
		f.links[repo] = map[digest.Digest]bool{}
	}
	f.links[repo][d] = true
	return d
}

func (f *fakeStore) known(repo string) bool {
	return f.links[repo] != nil || f.manifests[repo] != nil || f.tags[repo] != nil
}

func (f *fakeStore) Ready(context.Context) error { return f.readyErr }

func (f *fakeStore) StatBlob(ctx context.Context, repo string, d digest.Digest) (info registry.BlobInfo, err error) {
	err = f.do(ctx, func() error {
		if !f.links[repo][d] {
			return registry.ErrBlobUnknown
		}
		info = registry.BlobInfo{Digest: d, Size: int64(len(f.blobs[d]))}
		return nil
	})
	return info, err
}

// do runs fn under the lock unless the context is done or fail is set.
func (f *fakeStore) do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	return fn()
}

func (f *fakeStore) OpenBlob(ctx context.Context, repo string, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	var b []byte
	err := f.do(ctx, func() error {
		if !f.links[repo][d] {
			return registry.ErrBlobUnknown
		}
		b = f.blobs[d][offset:]
		if length >= 0 {
			b = b[:length]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeStore) StartUpload(ctx context.Context, repo string) (us registry.UploadSession, err error) {
	err = f.do(ctx, func() error {
		f.nextID++
		id := fmt.Sprintf("upload-%d", f.nextID)
		f.uploads[id] = &fakeUpload{repo: repo}
		us = registry.UploadSession{ID: id, Repo: repo}
		return nil
	})
	return us, err
}

func (f *fakeStore) upload(repo, id string) (*fakeUpload, error) {
	u := f.uploads[id]
	if u == nil || u.repo != repo {
		return nil, registry.ErrBlobUploadUnknown
	}
	return u, nil
}

func (f *fakeStore) UploadStatus(ctx context.Context, repo, id string) (us registry.UploadSession, err error) {
	err = f.do(ctx, func() error {
		u, err := f.upload(repo, id)
		if err != nil {
			return err
		}
		us = registry.UploadSession{ID: id, Repo: repo, Offset: int64(len(u.data))}
		return nil
	})
	return us, err
}

// appendTo appends body to u if start fits, changing nothing on any error.
func appendTo(u *fakeUpload, start int64, body io.Reader) error {
	if start >= 0 && start != int64(len(u.data)) {
		return registry.ErrRangeInvalid
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	u.data = append(u.data, b...)
	return nil
}

func (f *fakeStore) AppendUpload(ctx context.Context, repo, id string, start int64, body io.Reader) (us registry.UploadSession, err error) {
	err = f.do(ctx, func() error {
		u, err := f.upload(repo, id)
		if err != nil {
			return err
		}
		if err := appendTo(u, start, body); err != nil {
			return err
		}
		us = registry.UploadSession{ID: id, Repo: repo, Offset: int64(len(u.data))}
		return nil
	})
	return us, err
}

func (f *fakeStore) CommitUpload(ctx context.Context, repo, id string, start int64, body io.Reader, d digest.Digest) (info registry.BlobInfo, err error) {
	err = f.do(ctx, func() error {
		u, err := f.upload(repo, id)
		if err != nil {
			return err
		}
		if err := appendTo(u, start, body); err != nil {
			return err
		}
		if d.Algorithm().FromBytes(u.data) != d {
			return registry.ErrDigestInvalid
		}
		delete(f.uploads, id)
		f.link(repo, d.Algorithm(), u.data)
		info = registry.BlobInfo{Digest: d, Size: int64(len(u.data))}
		return nil
	})
	return info, err
}

func (f *fakeStore) CancelUpload(ctx context.Context, repo, id string) error {
	return f.do(ctx, func() error {
		if _, err := f.upload(repo, id); err != nil {
			return err
		}
		delete(f.uploads, id)
		return nil
	})
}

func (f *fakeStore) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader) (info registry.BlobInfo, err error) {
	err = f.do(ctx, func() error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if size >= 0 && int64(len(b)) != size {
			return registry.ErrSizeInvalid
		}
		if d.Algorithm().FromBytes(b) != d {
			return registry.ErrDigestInvalid
		}
		f.link(repo, d.Algorithm(), b)
		info = registry.BlobInfo{Digest: d, Size: int64(len(b))}
		return nil
	})
	return info, err
}

func (f *fakeStore) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (info registry.BlobInfo, ok bool, err error) {
	err = f.do(ctx, func() error {
		found := f.links[from][d]
		if from == "" {
			for _, l := range f.links {
				found = found || l[d]
			}
		}
		if !found {
			return nil
		}
		f.link(repo, d.Algorithm(), f.blobs[d])
		info, ok = registry.BlobInfo{Digest: d, Size: int64(len(f.blobs[d]))}, true
		return nil
	})
	return info, ok, err
}

func (f *fakeStore) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	return f.do(ctx, func() error {
		if !f.links[repo][d] {
			return registry.ErrBlobUnknown
		}
		delete(f.links[repo], d)
		return nil
	})
}

func (f *fakeStore) GetManifest(ctx context.Context, repo, tag string, d digest.Digest) (m registry.StoredManifest, err error) {
	err = f.do(ctx, func() error {
		if d == "" {
			var ok bool
			if d, ok = f.tags[repo][tag]; !ok {
				return registry.ErrManifestUnknown
			}
		}
		var ok bool
		if m, ok = f.manifests[repo][d]; !ok {
			return registry.ErrManifestUnknown
		}
		return nil
	})
	return m, err
}

// putManifest is PutManifest without the lock, for seeding.
func (f *fakeStore) putManifest(p registry.ManifestPut) (*registry.Manifest, error) {
	m, err := registry.ParseManifest(p.MediaType, p.Content)
	if err != nil {
		return nil, err
	}
	for _, b := range m.Blobs {
		if !f.links[p.Repo][b.Digest] {
			return nil, registry.ErrManifestBlobUnknown.WithMessage("blob %s unknown", b.Digest)
		}
	}
	if f.manifests[p.Repo] == nil {
		f.manifests[p.Repo] = map[digest.Digest]registry.StoredManifest{}
	}
	f.manifests[p.Repo][p.Digest] = registry.StoredManifest{Digest: p.Digest, MediaType: m.MediaType, Content: p.Content}
	for _, t := range p.Tags {
		if f.tags[p.Repo] == nil {
			f.tags[p.Repo] = map[string]digest.Digest{}
		}
		f.tags[p.Repo][t] = p.Digest
	}
	return m, nil
}

func (f *fakeStore) PutManifest(ctx context.Context, p registry.ManifestPut) (m *registry.Manifest, err error) {
	err = f.do(ctx, func() error {
		m, err = f.putManifest(p)
		return err
	})
	return m, err
}

func (f *fakeStore) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return f.do(ctx, func() error {
		if _, ok := f.manifests[repo][d]; !ok {
			return registry.ErrManifestUnknown
		}
		delete(f.manifests[repo], d)
		for t, td := range f.tags[repo] {
			if td == d {
				delete(f.tags[repo], t)
			}
		}
		return nil
	})
}

func (f *fakeStore) DeleteTag(ctx context.Context, repo, tag string) error {
	return f.do(ctx, func() error {
		if _, ok := f.tags[repo][tag]; !ok {
			return registry.ErrManifestUnknown
		}
		delete(f.tags[repo], tag)
		return nil
	})
}

// page returns up to n of the sorted names after last.
func page(names []string, last string, n int) ([]string, bool) {
	slices.Sort(names)
	names = slices.DeleteFunc(names, func(s string) bool { return s <= last })
	if n > 0 && len(names) > n {
		return names[:n], true
	}
	return names, false
}

func (f *fakeStore) Tags(ctx context.Context, repo, last string, n int) (tags []string, more bool, err error) {
	err = f.do(ctx, func() error {
		if !f.known(repo) {
			return registry.ErrNameUnknown
		}
		var all []string
		for t := range f.tags[repo] {
			all = append(all, t)
		}
		tags, more = page(all, last, n)
		return nil
	})
	return tags, more, err
}

func (f *fakeStore) Catalog(ctx context.Context, last string, n int) (repos []string, more bool, err error) {
	err = f.do(ctx, func() error {
		seen := map[string]bool{}
		for r := range f.links {
			seen[r] = true
		}
		for r := range f.manifests {
			seen[r] = true
		}
		var all []string
		for r := range seen {
			all = append(all, r)
		}
		repos, more = page(all, last, n)
		return nil
	})
	return repos, more, err
}

func (f *fakeStore) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) (descs []ocispec.Descriptor, err error) {
	err = f.do(ctx, func() error {
		if !f.known(repo) {
			return registry.ErrNameUnknown
		}
		for md, sm := range f.manifests[repo] {
			m, err := registry.ParseManifest(sm.MediaType, sm.Content)
			if err != nil || m.Subject == nil || m.Subject.Digest != d {
				continue
			}
			if artifactType != "" && m.ArtifactType != artifactType {
				continue
			}
			descs = append(descs, ocispec.Descriptor{
				MediaType:    m.MediaType,
				Digest:       md,
				Size:         int64(len(sm.Content)),
				ArtifactType: m.ArtifactType,
				Annotations:  m.Annotations,
			})
		}
		slices.SortFunc(descs, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
		return nil
	})
	return descs, err
}

// redirectingStore is a fakeStore that sends blob GETs to url.
type redirectingStore struct {
	*fakeStore
	url string
}

var _ registry.BlobRedirector = redirectingStore{}

func (s redirectingStore) BlobURL(_ context.Context, _ string, d digest.Digest) (string, bool, error) {
	return s.url + "/" + d.Encoded(), s.url != "", nil
}
