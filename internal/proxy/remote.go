// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// unavailable turns an upstream failure into the client's 503; the
// registry's own errors (not found) pass. The client learns which remote
// failed, by its prefix; the upstream's URL and what it answered go to
// the log only.
func (s *Store) unavailable(r *policy.Remote, err error) error {
	if err == nil || !errors.Is(err, ErrUpstream) {
		return err
	}
	s.log.Warn().Err(err).Str("remote", r.Prefix).Str("upstream", r.URL).Msg("upstream registry unavailable")
	return upstreamDown(r)
}

// upstreamDown is the client's answer when remote r's upstream failed.
func upstreamDown(r *policy.Remote) error {
	return registry.ErrUnavailable.WithMessage("upstream registry unavailable: remote %s", r.Prefix)
}

// remoteManifest reads a manifest of a remote's repository. A tag is
// served from the cache until r.TagRecheck has passed since upstream was
// last asked; then a HEAD asks whether it moved. When upstream is down,
// what is cached is served.
func (s *Store) remoteManifest(ctx context.Context, r *policy.Remote, repo, tag string, d digest.Digest) (registry.StoredManifest, error) {
	up, err := s.upstream(r)
	if err != nil {
		return registry.StoredManifest{}, s.unavailable(r, err)
	}
	upName := UpstreamName(strings.TrimPrefix(repo, r.Prefix), r.Library)
	if d != "" {
		return s.byDigest(ctx, r, up, repo, upName, d)
	}
	pt, cached, err := s.local.ProxyTagOf(ctx, repo, tag)
	if err != nil {
		return registry.StoredManifest{}, err
	}
	if cached && time.Since(pt.CheckedAt) < r.TagRecheck {
		return s.byDigest(ctx, r, up, repo, upName, pt.Digest)
	}
	now, err := up.HeadManifest(ctx, upName, tag)
	if err != nil && !errors.Is(err, registry.ErrManifestUnknown) {
		// Some registries answer HEAD without the digest, or not at all:
		// a GET by tag says the same, at the cost of a pull.
		if um, gerr := up.GetManifest(ctx, upName, tag); gerr == nil {
			if _, cerr := s.keep(ctx, r, repo, upName, um); cerr == nil {
				now, err = um.Digest, nil
			}
		} else if errors.Is(gerr, registry.ErrManifestUnknown) {
			err = gerr
		}
	}
	switch {
	case err == nil:
		if err := s.local.SetProxyTag(ctx, repo, tag, now); err != nil {
			return registry.StoredManifest{}, err
		}
		m, err := s.byDigest(ctx, r, up, repo, upName, now)
		if err == nil {
			s.tagLocal(ctx, repo, tag, m)
		}
		return m, err
	case errors.Is(err, registry.ErrManifestUnknown):
		return registry.StoredManifest{}, err
	}
	// Upstream is down: serve what is cached, saying so in the log.
	s.log.Warn().Err(err).Str("remote", r.Prefix).Str("repo", repo).Str("tag", tag).Msg("upstream unavailable; serving the cached tag")
	if cached {
		return s.byDigest(ctx, r, nil, repo, upName, pt.Digest)
	}
	if m, lerr := s.local.GetManifest(ctx, repo, tag, ""); lerr == nil {
		return m, nil
	}
	return registry.StoredManifest{}, s.unavailable(r, err)
}

// byDigest reads a manifest locally, from the cache, or (with up) from
// upstream, caching it.
func (s *Store) byDigest(ctx context.Context, r *policy.Remote, up *Upstream, repo, upName string, d digest.Digest) (registry.StoredManifest, error) {
	m, err := s.local.GetManifest(ctx, repo, "", d)
	if err == nil || !errors.Is(err, registry.ErrManifestUnknown) {
		if err == nil {
			s.count(r, true)
		}
		return m, err
	}
	if m, ok, err := s.local.ProxyManifest(ctx, repo, d); err != nil || ok {
		if ok {
			s.count(r, true)
		}
		return m, err
	}
	if up == nil {
		return registry.StoredManifest{}, upstreamDown(r) // the caller logged why
	}
	um, err := up.GetManifest(ctx, upName, d.String())
	if err != nil {
		return registry.StoredManifest{}, s.unavailable(r, err)
	}
	return s.keep(ctx, r, repo, upName, um)
}

// keep caches a manifest fetched from upstream, and makes ordinary what
// it completes.
func (s *Store) keep(ctx context.Context, r *policy.Remote, repo, upName string, um Manifest) (registry.StoredManifest, error) {
	parsed, err := registry.ParseManifest(um.MediaType, um.Content)
	if err != nil {
		return registry.StoredManifest{}, s.unavailable(r, fmt.Errorf("%w: %s@%s is not a manifest this registry serves: %v", ErrUpstream, upName, um.Digest, err))
	}
	s.count(r, false)
	sm := registry.StoredManifest{Digest: um.Digest, MediaType: parsed.MediaType, Content: um.Content}
	if err := s.local.SaveProxyManifest(ctx, repo, sm); err != nil {
		return registry.StoredManifest{}, err
	}
	s.promote(ctx, repo)
	return sm, nil
}

// tagLocal points repo's ordinary tag at m when m is an ordinary manifest
// already, so the index agrees with upstream.
func (s *Store) tagLocal(ctx context.Context, repo, tag string, m registry.StoredManifest) {
	cur, err := s.local.GetManifest(ctx, repo, tag, "")
	if err == nil && cur.Digest == m.Digest {
		return
	}
	if _, err := s.local.GetManifest(ctx, repo, "", m.Digest); err != nil {
		return // still cached only: promotion tags it
	}
	if _, err := s.local.PutManifest(proxyCaller(ctx), registry.ManifestPut{Repo: repo, MediaType: m.MediaType,
		Content: m.Content, Digest: m.Digest, Tags: []string{tag}}); err != nil {
		s.log.Warn().Err(err).Str("repo", repo).Str("tag", tag).Msg("moving a pulled-through tag")
	}
}

// proxyCaller names the cache as who stored pulled-through content, in
// the audit log; parentheses keep it apart from any user name.
func proxyCaller(ctx context.Context) context.Context {
	c, _ := auth.CallerFrom(ctx)
	return auth.WithCaller(ctx, auth.Caller{Name: "(proxy)", Address: c.Address})
}

// promote makes the cached manifests of repo whose blobs and children are
// all in the bucket ordinary manifests, tagged as upstream tags them, so
// that retention, GC and rebuild-db treat them like pushed ones.
func (s *Store) promote(ctx context.Context, repo string) {
	ctx = proxyCaller(ctx)
	for changed := true; changed; {
		changed = false
		pending, err := s.local.PendingProxyManifests(ctx, repo)
		if err != nil {
			s.log.Warn().Err(err).Str("repo", repo).Msg("listing cached manifests")
			return
		}
		for _, m := range pending {
			if !s.complete(ctx, repo, m) {
				continue
			}
			tags, err := s.local.ProxyTagsAt(ctx, repo, m.Digest)
			if err == nil {
				_, err = s.local.PutManifest(ctx, registry.ManifestPut{Repo: repo, MediaType: m.MediaType,
					Content: m.Content, Digest: m.Digest, Tags: tags})
			}
			if err == nil {
				err = s.local.DropProxyManifest(ctx, repo, m.Digest)
			}
			if err != nil {
				s.log.Warn().Err(err).Str("repo", repo).Str("digest", m.Digest.String()).Msg("storing a pulled-through manifest")
				continue
			}
			changed = true
		}
	}
}

// complete reports whether everything m references is stored in repo.
func (s *Store) complete(ctx context.Context, repo string, m registry.StoredManifest) bool {
	parsed, err := registry.ParseManifest(m.MediaType, m.Content)
	if err != nil {
		return false
	}
	ix, err := store.IndexManifest(parsed)
	if err != nil {
		return false
	}
	for _, b := range ix.Blobs {
		if _, err := s.local.StatBlob(ctx, repo, digest.Digest(b)); err != nil {
			return false
		}
	}
	for _, c := range ix.Children {
		if _, err := s.local.GetManifest(ctx, repo, "", digest.Digest(c)); err != nil {
			return false
		}
	}
	return true
}

// remoteBlob streams a blob of a remote's repository from upstream. One
// replica at a time fetches a digest: it streams to its client while
// storing, and the others wait for it (up to the lock wait) and then serve
// the cached copy. A replica that waited longer streams from upstream
// without storing. Upstream's bytes reach the client only as far as they
// are checked: the last byte waits until the whole blob matched its
// digest, and a blob that does not match fails the read instead, so the
// client sees a failed transfer. A ranged read therefore reads the whole
// blob from upstream, and stores it when this replica is the one
// fetching it.
func (s *Store) remoteBlob(ctx context.Context, r *policy.Remote, repo string, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	up, err := s.upstream(r)
	if err != nil {
		return nil, s.unavailable(r, err)
	}
	upName := UpstreamName(strings.TrimPrefix(repo, r.Prefix), r.Library)
	release, locked, err := s.local.ProxyFetchLock(ctx, d, s.lockWait)
	if err != nil {
		return nil, err
	}
	if locked {
		if rc, err := s.local.OpenBlob(ctx, repo, d, offset, length); err == nil {
			release()
			s.count(r, true)
			return rc, nil
		}
	}
	body, size, err := up.OpenBlob(ctx, upName, d)
	if err != nil {
		if locked {
			release()
		}
		return nil, s.unavailable(r, err)
	}
	s.count(r, false)
	body = verified(body, d)
	switch {
	case locked && size >= 0:
		body = s.tee(ctx, repo, d, size, body, release)
	case locked:
		release() // no length to store with: stream it only
	}
	if offset == 0 && (length < 0 || length == size) {
		return body, nil
	}
	rc, err := window(body, offset, length)
	return rc, s.unavailable(r, err)
}
