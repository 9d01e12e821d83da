// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/s3store"
)

// counters is the run's progress, updated from every goroutine.
type counters struct {
	listed       atomic.Int64
	unrecognised atomic.Int64
	parsed       atomic.Int64
	tagsRead     atomic.Int64
}

// readJob is an object whose content the index needs: a manifest (by
// digest, read once however many repositories link it) or a tag's
// current link.
type readJob struct {
	manifest  digest.Digest
	repo, tag string
	modified  time.Time
}

// collector turns listed objects into staged rows, reading the objects
// whose key alone does not say enough: manifests and tag links. Links
// whose key holds their digest are not read.
type collector struct {
	s3     *s3store.Store
	layout s3store.Layout
	stage  *stager
	report *reporter
	log    zerolog.Logger
	counts *counters

	jobs chan readJob
	seen sync.Map // manifest digests already queued
}

// emit handles one listed object; the walk calls it from many goroutines.
func (c *collector) emit(ctx context.Context, o s3store.ObjectInfo) error {
	c.counts.listed.Add(1)
	info, ok := parseKey(c.layout, o.Key)
	if !ok {
		// distribution's upload state (startedat, hashstates) is as
		// transient as ours; anything else is worth a count.
		if !strings.Contains(o.Key, "/_uploads/") {
			c.counts.unrecognised.Add(1)
			c.log.Debug().Str("key", o.Key).Msg("key not in the registry layout; ignored")
		}
		return nil
	}
	d := info.Digest.String()
	switch info.Kind {
	case s3store.KeyBlobData:
		return c.stage.add(ctx, sBlobs, 0, d, o.Size, o.LastModified)
	case s3store.KeyLayerLink:
		return c.stage.add(ctx, sLayers, 0, info.Repo, d, o.LastModified)
	case s3store.KeyRevisionLink:
		if err := c.stage.add(ctx, sRevisions, 0, info.Repo, d, o.LastModified); err != nil {
			return err
		}
		if _, queued := c.seen.LoadOrStore(info.Digest, true); !queued {
			return c.queue(ctx, readJob{manifest: info.Digest})
		}
	case s3store.KeyTagCurrentLink:
		return c.queue(ctx, readJob{repo: info.Repo, tag: info.Tag, modified: o.LastModified})
	}
	return nil
}

// parseKey is [s3store.Layout.ParseKey] with the spec's grammar for
// repository names and tags: a key whose name could never be pulled is not
// the registry's.
func parseKey(l s3store.Layout, key string) (s3store.KeyInfo, bool) {
	info, ok := l.ParseKey(key)
	switch {
	case !ok:
	case info.Repo != "" && registry.ValidateName(info.Repo) != nil:
		ok = false
	case (info.Kind == s3store.KeyTagCurrentLink || info.Kind == s3store.KeyTagIndexLink) && !registry.ValidTag(info.Tag):
		ok = false
	}
	return info, ok
}

func (c *collector) queue(ctx context.Context, j readJob) error {
	select {
	case c.jobs <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read runs jobs until the queue is closed or one fails.
func (c *collector) read(ctx context.Context) error {
	for j := range c.jobs {
		var err error
		if j.manifest != "" {
			err = c.readManifest(ctx, j.manifest)
		} else {
			err = c.readTag(ctx, j.repo, j.tag, j.modified)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readManifest stages a manifest and its references, or why it cannot be
// indexed. Only a failure to talk to S3 or PostgreSQL is an error.
func (c *collector) readManifest(ctx context.Context, d digest.Digest) error {
	damaged := func(k Kind, format string, args ...any) error {
		return c.stage.add(ctx, sDamaged, 0, d.String(), string(k), fmt.Sprintf(format, args...))
	}
	body, err := c.s3.GetObject(ctx, c.layout.BlobData(d), 0, -1)
	if errors.Is(err, s3store.ErrNotFound) {
		return damaged(ManifestBytesMissing, "the manifest's blob data object does not exist")
	}
	if err != nil {
		return err
	}
	content, err := io.ReadAll(io.LimitReader(body, registry.MaxManifestSize+1))
	body.Close()
	if err != nil {
		return fmt.Errorf("reading manifest %s: %w", d, err)
	}
	c.counts.parsed.Add(1)
	if len(content) > registry.MaxManifestSize {
		return damaged(ManifestInvalid, "the manifest is larger than %d bytes", registry.MaxManifestSize)
	}
	if got := d.Algorithm().FromBytes(content); got != d {
		return damaged(ManifestInvalid, "the manifest's bytes hash to %s", got)
	}
	// No Content-Type survives in the bucket: the media type comes from
	// the document, as distribution also serves it.
	m, err := registry.ParseManifest("", content)
	if err != nil {
		return damaged(ManifestInvalid, "%v", err)
	}
	ix, err := store.IndexManifest(m)
	if err != nil {
		return damaged(ManifestInvalid, "%v", err)
	}
	err = c.stage.add(ctx, sManifests, len(content), d.String(), ix.MediaType, ix.ArtifactType, content, ix.Subject, ix.Annotations)
	if err != nil {
		return err
	}
	for _, b := range m.Blobs {
		if err := c.stage.add(ctx, sRefs, 0, d.String(), b.Digest.String(), false, b.Size); err != nil {
			return err
		}
	}
	for _, child := range ix.Children {
		if err := c.stage.add(ctx, sRefs, 0, d.String(), child, true, int64(0)); err != nil {
			return err
		}
	}
	return nil
}

// readTag stages where a tag's current link points.
func (c *collector) readTag(ctx context.Context, repo, tag string, modified time.Time) error {
	key := c.layout.TagCurrentLink(repo, tag)
	b, err := c.s3.GetBytes(ctx, key)
	if errors.Is(err, s3store.ErrNotFound) {
		// Deleted since it was listed: the tag is gone, not damaged.
		return nil
	}
	if err != nil {
		return err
	}
	c.counts.tagsRead.Add(1)
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		c.report.add(Finding{Kind: TagLinkInvalid, Repo: repo, Tag: tag,
			Detail: fmt.Sprintf("the tag's current link does not hold a digest: %v", err)})
		return nil
	}
	return c.stage.add(ctx, sTags, 0, repo, tag, d.String(), modified)
}
