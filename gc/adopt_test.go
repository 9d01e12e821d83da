// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestSweepAdoptsWhatTheBucketReaches: index rows lost as a failover to
// an asynchronous standby loses them (deleted here by SQL) leave bucket
// objects the index does not know. The bucket stage adopts what the
// bucket's own tags reach (a tagged image, an index with its child, a
// referrer of a tagged image, a whole repository) and deletes only what
// nothing in the bucket reaches: an untagged manifest whose rows are gone,
// a blob linked but referenced by no manifest, a blob nothing links.
func TestSweepAdoptsWhatTheBucketReaches(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.s3.Layout()
	kept := e.image("app", "kept", []string{"v1"}, e.blob("app", "kept-layer", "a layer that stays indexed"))
	lost := e.image("app", "lost", []string{"v2"}, e.blob("app", "lost-layer", "a layer whose rows are lost"))
	e.imageWith("app", "sig", nil, &lost)
	e.image("app", "untagged", nil)
	child := e.image("multi", "child", nil, e.blob("multi", "child-layer", "a child's layer"))
	e.index("multi", "idx", []string{"latest"}, child)
	e.blob("app", "orphan", "linked by app, referenced by no manifest")
	stray := digest.FromString("a blob nothing links")
	e.name(stray.String(), "stray")
	if err := e.s3.PutBytes(ctx, l.BlobData(stray), []byte("a blob nothing links")); err != nil {
		t.Fatal(err)
	}
	_ = kept

	// The commits of everything but kept are lost: the repository multi
	// entirely, and in app the image tagged v2, its referrer, the
	// untagged image (deleted: its object deletes failed) and the orphan.
	lose := func(repo string, names ...string) {
		t.Helper()
		var ds []string
		for _, n := range names {
			ds = append(ds, e.digestOf(n))
		}
		for _, q := range []string{
			`DELETE FROM tags t USING repositories r WHERE r.id = t.repository_id AND r.name = $1 AND t.manifest_digest = ANY($2)`,
			`DELETE FROM manifest_children x USING repositories r WHERE r.id = x.repository_id AND r.name = $1 AND x.parent_digest = ANY($2)`,
			`DELETE FROM manifest_blobs x USING repositories r WHERE r.id = x.repository_id AND r.name = $1 AND x.manifest_digest = ANY($2)`,
			`DELETE FROM manifests x USING repositories r WHERE r.id = x.repository_id AND r.name = $1 AND x.digest = ANY($2)`,
			`DELETE FROM repository_blobs x USING repositories r WHERE r.id = x.repository_id AND r.name = $1 AND x.digest = ANY($2)`,
			`DELETE FROM blobs WHERE digest = ANY($2) AND $1 <> ''`,
		} {
			if _, err := e.db.Exec(ctx, q, repo, ds); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	lose("multi", "idx", "child", "child-config", "child-layer")
	lose("app", "lost", "sig", "untagged", "lost-config", "lost-layer", "sig-config", "untagged-config", "orphan")
	if _, err := e.db.Exec(ctx, `DELETE FROM repositories WHERE name = 'multi'`); err != nil {
		t.Fatal(err)
	}

	opts := e.opts()
	opts.Grace = 0
	e.clock.advance(time.Hour)
	s := e.pass(opts)
	e.wantRemoved("marking pass", s)
	e.clock.advance(time.Hour)
	s = e.pass(opts)
	e.wantRemoved("sweeping pass", s,
		"unknown-object app untagged [revision-link app untagged]", "unknown-object untagged [data untagged]",
		"unknown-object app untagged-config [layer-link app untagged-config]", "unknown-object untagged-config [data untagged-config]",
		"unknown-object app orphan [layer-link app orphan]", "unknown-object orphan [data orphan]",
		"unknown-object stray [data stray]")
	if s.Adopted == 0 || s.Live == 0 {
		t.Errorf("adopted %d rows for %d live objects; want some of each", s.Adopted, s.Live)
	}
	// A later pass finds the adopted objects known and forgets their marks.
	s = e.pass(opts)
	e.wantRemoved("later pass", s)
	e.want("adopted", join(
		imageState("app", "kept", []string{"v1"}, "kept-layer"),
		imageState("app", "lost", []string{"v2"}, "lost-layer"),
		withSubject(imageState("app", "sig", nil), "app", "sig", "lost"),
		imageState("multi", "child", nil, "child-layer"),
		indexState("multi", "idx", []string{"latest"}, "child"))...)
}
