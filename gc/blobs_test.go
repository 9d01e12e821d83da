// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/registry"
)

// TestSweepBlobLinksAndBlobs steps the clock through the grace period of
// blob links: a link goes only a full grace after a pass first found it
// unreferenced, a link referenced again loses its mark, and a blob goes
// with its last link, while another repository's link keeps it.
func TestSweepBlobLinksAndBlobs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	shared := e.blob("app", "shared", "a layer both repositories use")
	own := e.blob("app", "own", "a layer of app alone")
	img := e.image("app", "img", []string{"v1"}, shared, own)
	e.blob("lib", "shared", "a layer both repositories use")
	e.image("lib", "lib-img", []string{"latest"}, shared)
	e.blob("app", "stray", "pushed, never used by a manifest")
	lib := imageState("lib", "lib-img", []string{"latest"}, "shared")
	stray := linkState("app", "stray")

	// Nothing is old enough: the stray link is marked, nothing goes.
	s := e.pass(e.opts())
	e.wantRemoved("first pass", s)
	e.want("first pass", join(lib, stray, imageState("app", "img", []string{"v1"}, "shared", "own"),
		[]string{"mark blob-link app stray since t+0s"})...)

	// The image goes: its links are marked an hour later than the stray
	// one. Its manifest's own blob is invisible at once and goes at once.
	if err := e.st.DeleteManifest(ctx, "app", img.Digest); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Hour)
	s = e.pass(e.opts())
	e.wantRemoved("after the delete", s, "blob img [data img]")
	imgLinks := join(linkState("app", "img-config"), linkState("app", "own"), linkState("app", "shared"))
	e.want("after the delete", join(lib, stray, imgLinks, []string{
		"mark blob-link app stray since t+0s", "mark blob-link app img-config since t+1h0m0s",
		"mark blob-link app own since t+1h0m0s", "mark blob-link app shared since t+1h0m0s"})...)

	// A new image uses "own" again: its mark is forgotten.
	e.image("app", "img2", []string{"v2"}, own)
	e.clock.advance(time.Hour)
	s = e.pass(e.opts())
	e.wantRemoved("own used again", s)
	img2 := imageState("app", "img2", []string{"v2"}, "own")
	e.want("own used again", join(lib, stray, imgLinks, img2, []string{
		"mark blob-link app stray since t+0s", "mark blob-link app img-config since t+1h0m0s",
		"mark blob-link app shared since t+1h0m0s"})...)

	// A full grace after the stray link's mark, just short of the others'.
	e.clock.advance(DefaultGrace - 2*time.Hour + time.Minute)
	s = e.pass(e.opts())
	e.wantRemoved("the stray link's grace is over", s, "blob-link app stray [layer-link app stray]", "blob stray [data stray]")
	e.want("the stray link's grace is over", join(lib, imgLinks, img2, []string{
		"mark blob-link app img-config since t+1h0m0s", "mark blob-link app shared since t+1h0m0s"})...)

	// Then the image's: its config blob goes with the link, the shared
	// layer stays for lib.
	e.clock.advance(time.Hour)
	s = e.pass(e.opts())
	e.wantRemoved("the image's grace is over", s, "blob-link app img-config [layer-link app img-config]",
		"blob-link app shared [layer-link app shared]", "blob img-config [data img-config]")
	e.want("the image's grace is over", join(lib, img2)...)
	if s.Bytes() != int64(len("sha256:")+64)*2+int64(len(`{"architecture":"amd64","os":"linux","name":"img"}`)) || s.Objects() != 3 {
		t.Errorf("the pass freed %d bytes in %d objects", s.Bytes(), s.Objects())
	}
}

// TestBlobLinkRacesManifestPut plays every order of a manifest push and
// the deletion of a link it needs, with no grace. A push that commits
// before the deletion's statement keeps the link (the re-check sees its
// reference); one that holds the link FOR SHARE when the statement runs
// keeps it too (the statement waits, then the foreign key refuses, and
// the batch is done again row by row, so the other link of the batch
// still goes); a deletion that commits first makes the push fail with
// MANIFEST_BLOB_UNKNOWN. Never a manifest without its blob.
func TestBlobLinkRacesManifestPut(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := e.opts()
	opts.Grace = 0
	for _, order := range []string{"push commits first", "push holds the link"} {
		e.blob("app", "other", "unreferenced, goes")
		layer := e.blob("app", "layer", "unreferenced until the push")
		pushed := make(chan error, 1)
		opts.hooks.beforeBatch = func(stage Kind) {
			if stage != KindBlobLink {
				return
			}
			if order == "push commits first" {
				pushed <- pushImage(e, "app", "img", layer)
				return
			}
			// The push takes its FOR SHARE locks, then waits for its tag's
			// lock, which this transaction holds until the pass's DELETE
			// waits for the push.
			tx, err := e.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, store.TagLockKey("app", "v1")); err != nil {
				t.Fatal(err)
			}
			go func() { pushed <- pushImage(e, "app", "img", layer) }()
			e.waitForLockWaits(1)
			go func() {
				e.waitForLockWaits(2)
				tx.Commit(ctx)
			}()
		}
		// Grace zero still wants the clock past the rows' creation.
		e.clock.advance(time.Minute)
		s := e.pass(opts)
		select {
		case err := <-pushed:
			if err != nil {
				t.Fatalf("%s: push: %v", order, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the pass never reached the blob links' batch", order)
		}
		e.wantRemoved(order, s, "blob-link app other [layer-link app other]", "blob other [data other]")
		if s.Kept != 1 {
			t.Errorf("%s: kept %d candidates, want the raced link", order, s.Kept)
		}
		// The raced link's mark stays until the next pass finds it
		// referenced.
		e.want(order, join(imageState("app", "img", []string{"v1"}, "layer"), []string{"mark blob-link app layer since " + e.clock.since(e.clock.Now())})...)
		if err := e.st.DeleteManifest(ctx, "app", digest.Digest(e.digestOf("img"))); err != nil {
			t.Fatal(err)
		}
		opts.hooks.beforeBatch = nil
		e.clock.advance(time.Minute)
		e.pass(opts)
		e.want(order + ", cleaned up")
	}

	// The deletion commits first: the push that needs the link fails.
	late := e.blob("app", "late", "unreferenced, the push comes too late")
	e.clock.advance(time.Minute)
	s := e.pass(opts)
	e.wantRemoved("deletion first", s, "blob-link app late [layer-link app late]", "blob late [data late]")
	if err := pushImage(e, "app", "img-late", late); !errors.Is(err, registry.ErrManifestBlobUnknown) {
		t.Fatalf("pushing a manifest on a deleted link: %v, want MANIFEST_BLOB_UNKNOWN", err)
	}
}
