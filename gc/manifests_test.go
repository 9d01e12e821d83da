// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestSweepUntaggedManifests steps the clock through the removal of
// untagged manifests: none without --delete-untagged; with it, only a
// full grace after a pass first found them unreachable; never a child of
// a kept index (tagged, or young) nor a referrer of a kept subject; a
// referrer whose subject is gone goes, and an untagged index goes before
// its children, in one pass.
func TestSweepUntaggedManifests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	layer := e.blob("app", "layer", "the layer every image uses")
	imgA := e.image("app", "img-a", []string{"a"}, layer)
	imgB := e.image("app", "img-b", nil, layer)
	imgC := e.image("app", "img-c", nil, layer)
	imgD := e.image("app", "img-d", nil, layer)
	e.index("app", "idx", []string{"multi"}, imgC, imgD)
	e.imageWith("app", "sig", nil, &imgA)
	e.imageWith("app", "sbom-b", nil, &imgB)
	ghost := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("never pushed"), Size: 2}
	e.name(ghost.Digest.String(), "ghost")
	e.imageWith("app", "orphan", nil, &ghost)

	a := imageState("app", "img-a", []string{"a"}, "layer")
	b := imageState("app", "img-b", nil, "layer")
	c := imageState("app", "img-c", nil, "layer")
	d := imageState("app", "img-d", nil, "layer")
	idx := indexState("app", "idx", []string{"multi"}, "img-c", "img-d")
	sig := withSubject(imageState("app", "sig", nil), "app", "sig", "img-a")
	sbomB := withSubject(imageState("app", "sbom-b", nil), "app", "sbom-b", "img-b")
	orphan := withSubject(imageState("app", "orphan", nil), "app", "orphan", "ghost")
	all := join(a, b, c, d, idx, sig, sbomB, orphan)

	// Without --delete-untagged no manifest goes, however old.
	e.clock.advance(DefaultGrace + time.Hour)
	s := e.pass(e.opts())
	e.wantRemoved("without the flag", s)
	e.want("without the flag", all...)

	// With it, the unreachable ones are marked first.
	opts := e.opts()
	opts.DeleteUntagged = true
	s = e.pass(opts)
	e.wantRemoved("first pass with the flag", s)
	marks := []string{"mark manifest app img-b since t+25h0m0s", "mark manifest app sbom-b since t+25h0m0s",
		"mark manifest app orphan since t+25h0m0s"}
	e.want("first pass with the flag", join(all, marks)...)

	// A grace later they go, and their own bytes with them. The links of
	// their configs, referenced until now, get a grace of their own.
	e.clock.advance(DefaultGrace)
	s = e.pass(opts)
	e.wantRemoved("a grace later", s,
		"manifest app img-b [revision-link app img-b]", "manifest app sbom-b [revision-link app sbom-b]",
		"manifest app orphan [revision-link app orphan]",
		"blob img-b [data img-b]", "blob sbom-b [data sbom-b]", "blob orphan [data orphan]")
	configs := join(linkState("app", "img-b-config"), linkState("app", "sbom-b-config"), linkState("app", "orphan-config"))
	configMarks := []string{"mark blob-link app img-b-config since t+49h0m0s", "mark blob-link app sbom-b-config since t+49h0m0s",
		"mark blob-link app orphan-config since t+49h0m0s"}
	e.want("a grace later", join(a, c, d, idx, sig, configs, configMarks)...)

	// The index loses its tag (and with it the tag's links).
	if err := e.st.DeleteTag(ctx, "app", "multi"); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Hour)
	s = e.pass(opts)
	e.wantRemoved("the index untagged", s)
	e.want("the index untagged", join(a, c, d, indexState("app", "idx", nil, "img-c", "img-d"), sig, configs, configMarks, []string{
		"mark manifest app idx since t+50h0m0s", "mark manifest app img-c since t+50h0m0s", "mark manifest app img-d since t+50h0m0s",
	})...)

	// A young untagged index lists one of its children, old as it is.
	e.clock.advance(DefaultGrace - time.Hour)
	e.index("app", "young", nil, imgC)
	e.clock.advance(time.Hour)
	s = e.pass(opts)
	// The untagged index went, then, in the next round of the same pass,
	// the child no young index lists; the configs' links are due too.
	e.wantRemoved("the index's grace is over", s,
		"manifest app idx [revision-link app idx]", "manifest app img-d [revision-link app img-d]",
		"blob idx [data idx]", "blob img-d [data img-d]",
		"blob-link app img-b-config [layer-link app img-b-config]", "blob-link app sbom-b-config [layer-link app sbom-b-config]",
		"blob-link app orphan-config [layer-link app orphan-config]",
		"blob img-b-config [data img-b-config]", "blob sbom-b-config [data sbom-b-config]", "blob orphan-config [data orphan-config]")
	kept := join(a, c, sig, indexState("app", "young", nil, "img-c"), linkState("app", "img-d-config"))
	e.want("the index's grace is over", join(kept, []string{
		"mark manifest app img-c since t+50h0m0s", "mark manifest app young since t+74h0m0s",
		"mark blob-link app img-d-config since t+74h0m0s"})...)

	// Passes without the flag forget the manifests' marks.
	s = e.pass(e.opts())
	e.wantRemoved("flag off again", s)
	e.want("flag off again", join(kept, []string{"mark blob-link app img-d-config since t+74h0m0s"})...)
}
