// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/registry"
)

// TestDeletionHoldsDigestLock stops a pass after it committed the
// deletion of a row and before it deleted the row's object, and pushes
// the same content then. The push must wait for the pass (which holds the
// digest's lock until the object is gone) and then write the object
// anew: had it run in between, it would have found the bytes at their
// address, adopted them, and lost them to the pass's delete. Both a blob
// upload and a manifest push are raced.
func TestDeletionHoldsDigestLock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	content := "a blob whose last link a client deleted"
	d := e.blob("app", "doomed", content).Digest
	if err := e.st.DeleteBlob(ctx, "app", d); err != nil {
		t.Fatal(err)
	}
	untagged := e.image("app", "untagged", nil)
	manifest, err := e.st.GetManifest(ctx, "app", "", untagged.Digest)
	if err != nil {
		t.Fatal(err)
	}

	opts := e.opts()
	opts.Grace, opts.DeleteUntagged = 0, true
	pushed := map[Kind]chan error{KindBlob: make(chan error, 1), KindManifest: make(chan error, 1)}
	opts.hooks.beforeObjectDelete = func(stage Kind) {
		var push func() error
		switch stage {
		case KindBlob:
			push = func() error {
				_, err := e.st.PutBlob(ctx, "app", d, int64(len(content)), bytes.NewReader([]byte(content)))
				return err
			}
		case KindManifest:
			push = func() error {
				_, err := e.st.PutManifest(ctx, registry.ManifestPut{Repo: "app", MediaType: manifest.MediaType,
					Content: manifest.Content, Digest: untagged.Digest, Tags: []string{"again"}})
				return err
			}
		default:
			return
		}
		go func() { pushed[stage] <- push() }()
		// The push waits for the digest's lock...
		e.waitForLockWaits(1)
		select {
		case err := <-pushed[stage]:
			t.Errorf("%s: the push finished while the pass held its digest (%v)", stage, err)
			pushed[stage] <- err
		case <-time.After(200 * time.Millisecond):
		}
		// ...and goes on once the pass has deleted the object and let go.
	}
	e.clock.advance(time.Minute)
	e.pass(opts)
	for stage, ch := range pushed {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("%s: the push failed: %v", stage, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the pass never deleted one", stage)
		}
	}

	// Everything pushed is there, bytes and links.
	rc, err := e.st.OpenBlob(ctx, "app", d, 0, -1)
	if err != nil {
		t.Fatalf("the blob pushed during the pass: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != content {
		t.Fatalf("the blob pushed during the pass reads %q, %v", got, err)
	}
	m, err := e.st.GetManifest(ctx, "app", "again", "")
	if err != nil || m.Digest != untagged.Digest {
		t.Fatalf("the manifest pushed during the pass: %v, %v", m.Digest, err)
	}
	// The manifest push held its config's link FOR SHARE from before it
	// waited for the digest, so the pass's link stage could not take it.
	// That stage may have marked it, depending on when the push committed:
	// another pass forgets such a mark. It removes the blob pushed again,
	// which no manifest uses.
	e.clock.advance(time.Minute)
	opts.hooks.beforeObjectDelete = nil
	e.wantRemoved("another pass", e.pass(opts), "blob doomed [data doomed]", "blob-link app doomed [layer-link app doomed]")
	e.want("after another pass", join([]string{
		"manifest app untagged", "blob untagged", "object data untagged", "object revision-link app untagged",
		"tag app:again untagged", "object tag-current-link app:again", "object tag-index-link app:again untagged",
		"blob-link app untagged-config", "blob untagged-config", "object data untagged-config",
		"object layer-link app untagged-config", "reference app untagged > untagged-config",
	})...)
}

// TestPassGivesWayToPush: a manifest push holds the blob links it names
// FOR SHARE until it commits, and a pass deleting a batch of links takes
// their row locks in another order, so the two can wait on each other
// and PostgreSQL would abort one of them. The pass must be the one to
// give way: it may not wait on a row a push holds for longer than its
// lock timeout, it keeps that row, and the push's transaction goes on.
func TestPassGivesWayToPush(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	held := e.blob("app", "held", "a layer a manifest push is about to name")
	e.blob("app", "free", "a layer nothing names")

	// What PutManifest does first: lock the links it names FOR SHARE.
	push, err := e.otherPool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer push.Rollback(ctx)
	var got string
	if err := push.QueryRow(ctx, `SELECT l.digest FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id
		WHERE r.name = 'app' AND l.digest = $1 FOR SHARE OF l`, held.Digest.String()).Scan(&got); err != nil {
		t.Fatal(err)
	}

	opts := e.opts()
	opts.Grace = 0
	e.clock.advance(time.Minute)
	done := make(chan Summary, 1)
	go func() { done <- e.pass(opts) }()
	var s Summary
	select {
	case s = <-done:
	case <-time.After(10 * time.Second):
		// Let the pass go, so that the test ends.
		_ = push.Rollback(ctx)
		<-done
		t.Fatal("the pass waited for the push's row lock instead of giving way")
	}
	e.wantRemoved("a pass while a push holds a link", s,
		"blob free [data free]", "blob-link app free [layer-link app free]")
	if err := push.Commit(ctx); err != nil {
		t.Fatalf("the push's transaction after the pass: %v", err)
	}
	// The link stays, still marked: a later pass takes it if nothing
	// names it by then.
	e.want("after the pass", "blob-link app held", "mark blob-link app held since t+0s", "blob held",
		"object data held", "object layer-link app held")
}
