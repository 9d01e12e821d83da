// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/gc"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/rebuild"
)

// acked is a push whose manifest PUT returned 201.
type acked struct {
	repo, tag string
	img       testImage
}

// TestFailoverKeepsAcknowledgedPushes: two replicas push to a primary
// whose asynchronous standby stops receiving WAL (its link is cut, as a
// lagging standby's is); the primary is killed with SIGKILL and the
// standby promoted, so the last acknowledged pushes (a new repository, new
// tags, a tag moved) and a tag deletion are missing from the index the
// replicas now use. Garbage collection with no grace and --delete-untagged
// must then delete nothing acknowledged: its passes see the new timeline
// and skip every deletion by the index until rebuild-db ran. rebuild-db
// brings every acknowledged push back; the deleted tag comes back with
// the old timeline, and rebuild-db --repair removes it because the bucket
// agrees it is gone. Afterwards every acknowledged tag pulls and
// re-hashes, before and after more passes.
func TestFailoverKeepsAcknowledgedPushes(t *testing.T) {
	pair := testenv.StartPostgresPair(t)
	primaryURL, standbyURL := pair.CreateDatabase(t, "registry")
	s3cfg := testenv.S3(t)
	opts := stackOptions{store: store.Config{AutoMount: true}}
	a := start(t, primaryURL, s3cfg, opts)
	b := a.Replica(t)
	replicas := []*Stack{a, b}

	final := map[string]acked{} // repo:tag -> what it must pull
	push := func(i int, repo, tag string, img testImage) {
		t.Helper()
		mustPush(t, replicas[i%2], repo, tag, img)
		final[repo+":"+tag] = acked{repo, tag, img}
	}
	shared := newTestImage(t, 4096, nil)
	push(0, "failover/app", "keep", shared)
	push(1, "failover/app", "doomed", shared)
	push(0, "failover/app", "moved", newTestImage(t, 4096, nil))
	for i := range 3 {
		push(i, "failover/app", fmt.Sprintf("replicated-%d", i), newTestImage(t, 4096, nil))
	}
	pair.WaitCaughtUp(t)

	// From here the standby receives nothing: what follows is acknowledged
	// by the primary alone.
	pair.Link.Cut()
	for i := range 4 {
		push(i, "failover/app", fmt.Sprintf("lost-%d", i), newTestImage(t, 4096, nil))
		push(i+1, "failover/new", fmt.Sprintf("lost-%d", i), newTestImage(t, 4096, nil))
	}
	push(1, "failover/app", "moved", newTestImage(t, 4096, nil))
	if resp, body := call(t, a, "DELETE", "/v2/failover/app/manifests/doomed", nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting tag doomed: %d %s", resp.StatusCode, body)
	}
	delete(final, "failover/app:doomed")
	pair.KillPrimary(t)
	pair.Promote(t)

	// The replicas are pointed at the new primary.
	c := start(t, standbyURL, s3cfg, opts)
	d := c.Replica(t)
	ctx := context.Background()
	gcOpts := gc.Options{DB: c.DB, S3: c.S3, Grace: 0, UploadTTL: gc.DefaultUploadTTL, DeleteUntagged: true, Logger: zerolog.Nop()}
	for i := range 3 {
		s, err := gc.Run(ctx, gcOpts)
		if err != nil {
			t.Fatalf("gc pass %d after the failover: %v", i, err)
		}
		if !strings.Contains(s.RebuildRequired, "timeline changed") {
			t.Errorf("gc pass %d after the failover: rebuild required %q, want a timeline change", i, s.RebuildRequired)
		}
		if len(s.Removed) > 0 {
			t.Errorf("gc pass %d after the failover removed %d items, first %s", i, len(s.Removed), s.Removed[0])
		}
	}
	for _, p := range final {
		checkObjects(t, c, p)
	}
	if t.Failed() {
		t.FailNow()
	}

	if _, err := rebuild.Run(ctx, rebuild.Options{DB: c.DB, S3: c.S3, Logger: zerolog.Nop()}); err != nil {
		t.Fatalf("rebuild-db: %v", err)
	}
	// The acknowledged tag deletion was lost with the old timeline, and
	// rebuild-db, which only adds, keeps the tag; --repair removes it,
	// since the bucket has no link for it.
	if resp, body := call(t, d, "GET", "/v2/failover/app/manifests/doomed", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("tag doomed after rebuild-db: %d %s, want it back (200)", resp.StatusCode, body)
	}
	if _, err := rebuild.Run(ctx, rebuild.Options{DB: c.DB, S3: c.S3, Mode: rebuild.ModeRepair, Logger: zerolog.Nop()}); err != nil {
		t.Fatalf("rebuild-db --repair: %v", err)
	}
	if resp, body := call(t, d, "GET", "/v2/failover/app/manifests/doomed", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("tag doomed after rebuild-db --repair: %d %s, want 404", resp.StatusCode, body)
	}
	for _, p := range final {
		pullRehash(t, d, p)
	}
	for i := range 2 {
		s, err := gc.Run(ctx, gcOpts)
		if err != nil {
			t.Fatalf("gc pass %d after rebuild-db: %v", i, err)
		}
		if s.RebuildRequired != "" {
			t.Errorf("gc pass %d after rebuild-db still finds a rebuild required: %s", i, s.RebuildRequired)
		}
	}
	for _, p := range final {
		checkObjects(t, c, p)
		pullRehash(t, c, p)
	}
}

// checkObjects requires the bucket objects of an acknowledged tag: its
// current link naming the manifest, the manifest's revision link and
// data, and every blob's link and data.
func checkObjects(t *testing.T, s *Stack, p acked) {
	t.Helper()
	ctx := context.Background()
	l := s.S3.Layout()
	link, err := s.S3.GetBytes(ctx, l.TagCurrentLink(p.repo, p.tag))
	if err != nil || digest.Digest(strings.TrimSpace(string(link))) != p.img.digest {
		t.Errorf("%s:%s: tag link %q, %v; want %s", p.repo, p.tag, link, err, p.img.digest)
	}
	keys := []string{l.RevisionLink(p.repo, p.img.digest), l.BlobData(p.img.digest)}
	for _, b := range p.img.blobs {
		keys = append(keys, l.LayerLink(p.repo, digest.FromBytes(b)), l.BlobData(digest.FromBytes(b)))
	}
	for _, k := range keys {
		if _, err := s.S3.Stat(ctx, k); err != nil {
			t.Errorf("%s:%s: object %s: %v", p.repo, p.tag, k, err)
		}
	}
}

// pullRehash pulls an acknowledged tag's manifest and blobs and requires
// each to hash to its digest.
func pullRehash(t *testing.T, s *Stack, p acked) {
	t.Helper()
	resp, body := call(t, s, "GET", "/v2/"+p.repo+"/manifests/"+p.tag, map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil)
	if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != p.img.digest {
		t.Errorf("pull %s:%s: %d, manifest hashes to %s, want %s", p.repo, p.tag, resp.StatusCode, digest.FromBytes(body), p.img.digest)
		return
	}
	for _, b := range p.img.blobs {
		want := digest.FromBytes(b)
		resp, body := call(t, s, "GET", "/v2/"+p.repo+"/blobs/"+want.String(), nil, nil)
		if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != want {
			t.Errorf("pull %s:%s: blob %s: %d, hashes to %s", p.repo, p.tag, want, resp.StatusCode, digest.FromBytes(body))
		}
	}
}
