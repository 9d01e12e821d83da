// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
)

// TestDryRunIsExact: on a registry with something for every stage to
// remove, including chains that one pass removes link by link (an index,
// its child, the child's referrer, their configs and blobs), a dry run
// changes nothing at all and lists exactly what the real pass then
// removes, bytes included; and what the real pass lists is exactly what
// left the index and the bucket.
func TestDryRunIsExact(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.s3.Layout()
	shared := e.blob("app", "shared", "a layer app and lib share")
	img := e.image("app", "img", []string{"v1"}, shared)
	e.imageWith("app", "sig", nil, &img)
	c1 := e.image("app", "c1", nil, e.blob("app", "c1-layer", "a layer of c1 alone"))
	c2 := e.image("app", "c2", nil, shared)
	e.index("app", "idx-gone", nil, c1, c2)
	e.index("app", "idx-kept", []string{"multi"}, c2)
	e.imageWith("app", "c1-sig", nil, &c1)
	e.blob("app", "stray", "a blob no manifest uses")
	e.blob("lib", "shared", "a layer app and lib share")
	libImg := e.image("lib", "lib-img", []string{"old"}, shared)
	if err := e.st.DeleteManifest(ctx, "lib", libImg.Digest); err != nil {
		t.Fatal(err)
	}
	u, err := e.st.StartUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	e.name(u.ID, "abandoned")
	if _, err := e.st.AppendUpload(ctx, "app", u.ID, 0, bytes.NewReader(make([]byte, store.MinPartSize+1))); err != nil {
		t.Fatal(err)
	}
	mp, err := e.s3.CreateMultipart(ctx, l.UploadData("app", "eeeeeeee-0000-4000-8000-000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	e.name(mp, "mp-orphan")
	lost := digest.FromString("bytes a failed push left")
	e.name(lost.String(), "lost")
	for key, content := range map[string]string{l.BlobData(lost): "bytes a failed push left",
		l.TagIndexLink("app", "v1", lost): lost.String()} {
		if err := e.s3.PutBytes(ctx, key, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	// A pass marks the unknown objects (and everything else's grace
	// starts); then all is due, for a pass with no grace.
	e.clock.advance(time.Hour)
	e.pass(e.opts())
	e.clock.advance(2 * time.Hour)
	opts := e.opts()
	opts.Grace, opts.UploadTTL, opts.DeleteUntagged = 0, time.Hour, true

	before := e.state()
	opts.DryRun = true
	dry := e.pass(opts)
	if diff := cmp.Diff(before, e.state()); diff != "" {
		t.Fatalf("the dry run changed the state (-before +after):\n%s", diff)
	}
	opts.DryRun = false
	real := e.pass(opts)
	if diff := cmp.Diff(itemLines(dry), itemLines(real)); diff != "" {
		t.Errorf("the dry run's list differs from the pass's (-dry +real):\n%s", diff)
	}
	if dry.Bytes() != real.Bytes() || dry.Objects() != real.Objects() {
		t.Errorf("dry run: %d objects, %d bytes; pass: %d objects, %d bytes", dry.Objects(), dry.Bytes(), real.Objects(), real.Bytes())
	}
	for _, k := range Kinds {
		if real.Count(k) == 0 {
			t.Errorf("the pass removed no %s: the test misses a stage", k)
		}
	}

	// What the pass listed is what left: every bucket key and multipart
	// upload, and as many rows of each kind.
	after := e.state()
	var wantGone []string
	for _, it := range real.Removed {
		for _, o := range it.Objects {
			wantGone = append(wantGone, "object "+e.key(o))
		}
		switch it.Kind {
		case KindManifest:
			wantGone = append(wantGone, "manifest "+it.Repo+" "+e.n(it.Digest))
		case KindBlobLink:
			wantGone = append(wantGone, "blob-link "+it.Repo+" "+e.n(it.Digest))
		case KindBlob:
			wantGone = append(wantGone, "blob "+e.n(it.Digest))
		case KindUpload:
			wantGone = append(wantGone, "upload "+it.Repo+" "+e.n(it.ID))
		case KindMultipart:
			wantGone = append(wantGone, "multipart "+e.key(it.Key))
		}
	}
	var gone []string
	for _, line := range strings.Split(before, "\n") {
		if !slices.Contains(strings.Split(after, "\n"), line) && !isDependentLine(line) {
			line, _, _ = strings.Cut(line, " size=")
			line, _, _ = strings.Cut(line, " subject=")
			gone = append(gone, line)
		}
	}
	slices.Sort(wantGone)
	slices.Sort(gone)
	if diff := cmp.Diff(wantGone, gone); diff != "" {
		t.Errorf("what left the state (+) is not what the pass listed (-):\n%s", diff)
	}
	t.Logf("the pass removed %d items: %d objects, %d bytes", len(real.Removed), real.Objects(), real.Bytes())
}

// isDependentLine says whether a state line goes with a removed row
// without being one itself: references, index entries, tags and marks.
func isDependentLine(line string) bool {
	for _, p := range []string{"reference ", "child ", "tag ", "mark ", "unknown ", "multipart upload-data app abandoned"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// itemLines renders items fully, sorted, for comparison.
func itemLines(s Summary) []string {
	out := make([]string, len(s.Removed))
	for i, it := range s.Removed {
		out[i] = it.String()
	}
	slices.Sort(out)
	return out
}
