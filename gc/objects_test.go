// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
)

// TestSweepUnknownObjects: bucket objects the index does not know are
// marked by one pass and deleted by a later one, a grace after the mark;
// one that becomes known in between loses its mark, one whose writer's
// lock is held is left for later, an upload's data is never deleted while
// its session exists, and keys outside the layout are left alone.
func TestSweepUnknownObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.s3.Layout()
	layer := e.blob("app", "layer", "a layer")
	e.image("app", "img", []string{"v1"}, layer)
	live, err := e.st.StartUpload(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	e.name(live.ID, "live")
	named := func(name, content string) digest.Digest {
		d := digest.FromString(content)
		e.name(d.String(), name)
		return d
	}
	lost := named("lost", "bytes a failed push left")
	adopted := named("adopted", "bytes a retried push adopts")
	ghost := named("ghost", "a manifest that never committed")
	old := named("old", "a manifest v1 pointed at once")
	dead := "dddddddd-0000-4000-8000-000000000000"
	e.name(dead, "dead")
	for key, content := range map[string]string{
		l.BlobData(lost):                                            "bytes a failed push left",
		l.BlobData(adopted):                                         "bytes a retried push adopts",
		l.LayerLink("app", lost):                                    lost.String(),
		l.RevisionLink("app", ghost):                                ghost.String(),
		l.TagCurrentLink("app", "gone"):                             ghost.String(),
		l.TagIndexLink("app", "gone", ghost):                        ghost.String(),
		l.TagIndexLink("app", "v1", old):                            old.String(),
		l.UploadData("app", dead):                                   "assembled by a monolithic push that died",
		l.UploadData("app", live.ID):                                "assembled by a commit that died",
		l.UploadPrefix("app", dead) + "startedat":                   "distribution's",
		strings.TrimSuffix(l.BlobsPrefix(), "blobs/") + "elsewhere": "not ours",
	} {
		if err := e.s3.PutBytes(ctx, key, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	img := imageState("app", "img", []string{"v1"}, "layer")
	keep := join(img, []string{"upload app live size=0", "object upload-data app live",
		"object unrecognised repositories/app/_uploads/dddddddd-0000-4000-8000-000000000000/startedat", "object unrecognised elsewhere"})
	unknown := []string{"object data lost", "object layer-link app lost", "object revision-link app ghost",
		"object tag-current-link app:gone", "object tag-index-link app:gone ghost", "object tag-index-link app:v1 old"}
	marks := func(since string) []string {
		var out []string
		for _, u := range unknown {
			out = append(out, "unknown "+strings.TrimPrefix(u, "object ")+" since "+since)
		}
		return out
	}

	e.clock.advance(time.Hour)
	s := e.pass(e.opts())
	e.wantRemoved("first pass", s)
	e.want("first pass", join(keep, unknown, marks("t+1h0m0s"), []string{"object data adopted", "unknown data adopted since t+1h0m0s",
		"object upload-data app dead"})...)
	// "elsewhere" is outside the layout's prefixes: not even listed.
	if s.Unrecognised != 1 || s.Marked != 7 {
		t.Errorf("first pass: %d keys unrecognised, %d marked; want 1 and 7", s.Unrecognised, s.Marked)
	}

	// A retried push adopts the bytes it finds at their address.
	e.blob("app", "adopted", "bytes a retried push adopts")
	e.clock.advance(time.Hour)
	s = e.pass(e.opts())
	e.wantRemoved("within the grace", s)
	adoptedState := linkState("app", "adopted")
	e.want("within the grace", join(keep, unknown, marks("t+1h0m0s"), adoptedState, []string{"object upload-data app dead",
		"mark blob-link app adopted since t+2h0m0s"})...)

	// A grace after the marks; a push of tag "gone" holds its lock, and a
	// request on the live session has just used it.
	e.clock.advance(DefaultGrace - time.Hour)
	if _, err := e.db.Exec(ctx, `UPDATE uploads SET updated_at = $2 WHERE id = $1`, live.ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	tx, err := e.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, store.TagLockKey("app", "gone")); err != nil {
		t.Fatal(err)
	}
	s = e.pass(e.opts())
	tx.Rollback(ctx)
	e.wantRemoved("a grace later", s, "unknown-object lost [data lost]", "unknown-object app lost [layer-link app lost]",
		"unknown-object app ghost [revision-link app ghost]", "unknown-object app old [tag-index-link app:v1 old]")
	if s.Kept != 2 {
		t.Errorf("kept %d, want the two links of the tag whose lock was held", s.Kept)
	}
	// The dead session's data is past the upload TTL now: found unknown.
	e.want("a grace later", join(keep, adoptedState, []string{
		"object tag-current-link app:gone", "unknown tag-current-link app:gone since t+1h0m0s",
		"object tag-index-link app:gone ghost", "unknown tag-index-link app:gone ghost since t+1h0m0s",
		"object upload-data app dead", "unknown upload-data app dead since t+25h0m0s",
		"mark blob-link app adopted since t+2h0m0s"})...)

	// With no grace, a second pass is all it takes.
	opts := e.opts()
	opts.Grace = 0
	s = e.pass(opts)
	e.wantRemoved("no grace", s, "unknown-object app [tag-current-link app:gone]", "unknown-object app ghost [tag-index-link app:gone ghost]",
		"unknown-object app [upload-data app dead]",
		"blob-link app adopted [layer-link app adopted]", "blob adopted [data adopted]")
	e.want("no grace", keep...)
}
