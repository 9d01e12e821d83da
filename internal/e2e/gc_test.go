// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/gc"
	"github.com/ha-registry/ha-registry/rebuild"
	"github.com/ha-registry/ha-registry/s3store"
)

// tortureOps is how many push and delete operations the clients make in
// all; tortureTime bounds the load should the machine be slow.
const (
	tortureClients = 6
	tortureOps     = 600
	tortureTime    = 3 * time.Minute
)

// TestGCTorture runs garbage collection in a loop, with no grace and
// --delete-untagged, from both of two replicas at once, while clients
// push images sharing layers (HEAD, skip the upload of what is there, PUT
// the manifest), indexes and referrers, retag, and delete tags and
// manifests, spreading their requests over both replicas.
//
// After every operation the client pulls what it touched and another of
// its images byte for byte, and every 25 operations all of them: every
// manifest its tags reach (through indexes, and to the referrers of what
// is reached) must be whole. Those are exactly the manifests whose PUT
// returned 201 and that neither the client deleted nor garbage collection
// could take as untagged. Afterwards, two more passes leave the bucket
// holding exactly the objects of those manifests and tags, no multipart
// upload, and an index that rebuild-db --verify finds equal to the bucket.
func TestGCTorture(t *testing.T) {
	s := Start(t)
	r2 := s.Replica(t)
	bases := []string{"http://" + s.Addr, "http://" + r2.Addr}
	repos := []string{"torture/one", "torture/two"}
	start := time.Now()

	ctx, stopGC := context.WithCancel(context.Background())
	var gcLoops sync.WaitGroup
	var gcMu sync.Mutex
	var passes []gc.Summary
	for _, db := range []*pgxpool.Pool{s.DB, r2.DB} {
		gcLoops.Go(func() {
			for ctx.Err() == nil {
				sum, err := gc.Run(ctx, tortureGC(db, s.S3, time.Hour))
				if err != nil && ctx.Err() == nil {
					t.Errorf("gc pass: %v", err)
				}
				if sum.Skipped != "" {
					time.Sleep(5 * time.Millisecond) // the other loop's pass is running
				}
				gcMu.Lock()
				passes = append(passes, sum)
				gcMu.Unlock()
			}
		})
	}
	t.Cleanup(func() { stopGC(); gcLoops.Wait() })

	clients := make([]*tortureClient, tortureClients)
	var ops atomic.Int64
	var load sync.WaitGroup
	deadline := time.Now().Add(tortureTime)
	for i := range clients {
		clients[i] = newTortureClient(t, i, bases)
		load.Go(func() {
			c := clients[i]
			for n := 1; ops.Load() < tortureOps && time.Now().Before(deadline); n++ {
				c.step(repos)
				ops.Add(1)
				if n%25 == 0 {
					for _, m := range c.live() {
						c.verify(m)
					}
				}
			}
		})
	}
	load.Wait()
	loadTime := time.Since(start)
	stopGC()
	gcLoops.Wait()

	// Two more passes, upload TTL zero too: nothing may be left over.
	for i := range 2 {
		sum, err := gc.Run(context.Background(), tortureGC(s.DB, s.S3, 0))
		if err != nil || sum.Skipped != "" {
			t.Fatalf("final pass %d: %v %s", i+1, err, sum.Skipped)
		}
		t.Logf("final pass %d: removed %d items, kept %d, marked %d", i+1, len(sum.Removed), sum.Kept, sum.Marked)
		passes = append(passes, sum)
	}
	for _, c := range clients {
		for _, m := range c.live() {
			c.verify(m)
		}
	}

	report(t, clients, passes, ops.Load(), loadTime)
	checkBucket(t, s, clients)
	v, err := rebuild.Run(context.Background(), rebuild.Options{DB: s.DB, S3: s.S3, Mode: rebuild.ModeVerify, Logger: zerolog.Nop()})
	if err != nil || v.Drift() != 0 || v.Problems() != 0 {
		t.Errorf("rebuild-db --verify after the torture: %v, %d differences, %d problems: %v", err, v.Drift(), v.Problems(), v.Findings)
	}
	if ops.Load() < 500 {
		t.Errorf("only %d operations in %v", ops.Load(), loadTime)
	}
}

// tortureGC is the passes' configuration: no grace, untagged manifests
// removed.
func tortureGC(db *pgxpool.Pool, s3 *s3store.Store, uploadTTL time.Duration) gc.Options {
	return gc.Options{DB: db, S3: s3, Grace: 0, UploadTTL: uploadTTL, DeleteUntagged: true, Logger: zerolog.Nop()}
}

// step makes one random operation and checks what it touched and one
// other live image.
func (c *tortureClient) step(repos []string) {
	i := c.rng.IntN(len(repos))
	repo, other := repos[i], repos[(i+1)%len(repos)]
	tags := c.tagged()
	var touched *ownedManifest
	switch n := c.rng.IntN(100); {
	case n < 35 || len(tags) < 4:
		m := c.newImage(repo, nil)
		from := ""
		if c.rng.IntN(4) == 0 {
			from = other // mount the first layer from the other repository
		}
		if tag := c.newTag(); c.push(m, tag, from) {
			c.own(m, tag)
			touched = m
		}
		c.ops["push image"]++
	case n < 45:
		m := c.newIndex(repo)
		if tag := c.newTag(); c.push(m, tag, "") {
			c.own(m, tag)
			touched = m
		}
		c.ops["push index"]++
	case n < 55:
		var subjects []*ownedManifest
		for _, rt := range tags {
			if m := c.manifests[c.tags[rt]]; m.mediaType == ocispec.MediaTypeImageManifest && m.subject == "" {
				subjects = append(subjects, m)
			}
		}
		if len(subjects) == 0 {
			return
		}
		subject := subjects[c.rng.IntN(len(subjects))]
		m := c.newImage(subject.repo, subject)
		if c.push(m, m.digest.String(), "") {
			c.own(m, "")
			touched = subject
		}
		c.ops["push referrer"]++
	case n < 70:
		rt := tags[c.rng.IntN(len(tags))]
		m := c.manifests[c.tags[rt]]
		tag := c.newTag()
		if c.rng.IntN(2) == 0 {
			// Move another of the client's tags of that repository.
			for _, o := range tags {
				if o.repo == m.repo && o != rt {
					tag = o.tag
					break
				}
			}
		}
		// m is live: nothing it needs may be gone, so no retry.
		resp, body := c.do("PUT", "/v2/"+m.repo+"/manifests/"+tag, http.Header{"Content-Type": {m.mediaType}}, m.content)
		if resp.StatusCode != http.StatusCreated {
			c.fail("retag %s:%s to %s: %d %s", m.repo, tag, m.digest, resp.StatusCode, body)
		} else {
			c.own(m, tag)
			touched = m
		}
		c.ops["retag"]++
	case n < 85:
		rt := tags[c.rng.IntN(len(tags))]
		if resp, body := c.do("DELETE", "/v2/"+rt.repo+"/manifests/"+rt.tag, nil, nil); resp.StatusCode != http.StatusAccepted {
			c.fail("DELETE %s:%s: %d %s", rt.repo, rt.tag, resp.StatusCode, body)
		}
		c.untag(rt)
		c.ops["delete tag"]++
	default:
		rt := tags[c.rng.IntN(len(tags))]
		d := c.tags[rt]
		if resp, body := c.do("DELETE", "/v2/"+rt.repo+"/manifests/"+d.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
			c.fail("DELETE %s@%s: %d %s", rt.repo, d, resp.StatusCode, body)
		}
		for o, od := range c.tags {
			if od == d {
				c.untag(o)
			}
		}
		delete(c.manifests, d)
		c.ops["delete manifest"]++
	}
	// Forget what no tag reaches any more: garbage collection may take it.
	live := c.live()
	c.manifests = live
	if touched != nil && live[touched.digest] != nil {
		c.verify(touched)
	}
	if len(live) > 0 {
		ds := make([]string, 0, len(live))
		for d := range live {
			ds = append(ds, d.String())
		}
		sort.Strings(ds)
		c.verify(live[digest.Digest(ds[c.rng.IntN(len(ds))])])
	}
}

// newTag returns a tag no other client uses.
func (c *tortureClient) newTag() string {
	c.seq++
	return fmt.Sprintf("c%d-%d", c.id, c.seq)
}

// report logs what happened and fails the test for every broken promise.
func report(t *testing.T, clients []*tortureClient, passes []gc.Summary, ops int64, loadTime time.Duration) {
	t.Helper()
	kinds := map[string]int{}
	blobUnknown, verifications := 0, 0
	for _, c := range clients {
		for k, n := range c.ops {
			kinds[k] += n
		}
		blobUnknown += c.blobUnknown
		verifications += c.verifications
		for i, f := range c.failures {
			if i == 20 {
				t.Errorf("client %d: %d more failures", c.id, len(c.failures)-20)
				break
			}
			t.Error(f)
		}
	}
	completed, skipped := 0, 0
	removed := map[gc.Kind]int{}
	var kept int64
	for _, p := range passes {
		if p.Skipped != "" {
			skipped++
			continue
		}
		completed++
		kept += p.Kept
		for _, k := range gc.Kinds {
			removed[k] += p.Count(k)
		}
	}
	t.Logf("%d operations by %d clients over 2 replicas in %v: %v", ops, len(clients), loadTime.Round(time.Millisecond), kinds)
	t.Logf("%d manifest PUTs answered MANIFEST_BLOB_UNKNOWN and pushed again; %d manifests pulled whole", blobUnknown, verifications)
	t.Logf("gc: %d passes ran, %d skipped because the other replica's held the lock; removed %v; kept %d raced candidates",
		completed, skipped, removed, kept)
	if completed < 10 || removed[gc.KindManifest] == 0 || removed[gc.KindBlobLink] == 0 || removed[gc.KindBlob] == 0 {
		t.Errorf("garbage collection did too little to prove anything: %d passes, removed %v", completed, removed)
	}
}

// checkBucket compares the bucket with what the clients' models say it
// must hold: for every live manifest its bytes, revision link, and blobs
// with their links; for every tag its current link and the history links
// of live manifests. Nothing more, nothing less, and no multipart upload.
func checkBucket(t *testing.T, s *Stack, clients []*tortureClient) {
	t.Helper()
	ctx := context.Background()
	l := s.S3.Layout()
	want := map[string]bool{}
	for _, c := range clients {
		live := c.live()
		for _, m := range live {
			want[l.RevisionLink(m.repo, m.digest)] = true
			want[l.BlobData(m.digest)] = true
			for _, b := range m.blobs {
				want[l.LayerLink(m.repo, b)], want[l.BlobData(b)] = true, true
			}
		}
		for rt := range c.tags {
			want[l.TagCurrentLink(rt.repo, rt.tag)] = true
			for _, d := range c.history[rt] {
				if live[d] != nil {
					want[l.TagIndexLink(rt.repo, rt.tag, d)] = true
				}
			}
		}
	}
	var missing, extra []string
	got := map[string]bool{}
	if err := s.S3.List(ctx, "", func(o s3store.ObjectInfo) error {
		got[o.Key] = true
		if !want[o.Key] {
			extra = append(extra, o.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("the bucket differs from the clients' images: %d keys missing:\n%s\n%d keys left over:\n%s",
			len(missing), strings.Join(missing, "\n"), len(extra), strings.Join(extra, "\n"))
		for _, k := range extra {
			var first string
			err := s.DB.QueryRow(ctx, `SELECT coalesce((SELECT first_seen::text FROM gc_unknown_objects WHERE key = $1), 'unmarked')`, k).Scan(&first)
			info, _ := l.ParseKey(k)
			var manifest, tag int
			s.DB.QueryRow(ctx, `SELECT count(*) FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2`,
				info.Repo, info.Digest.String()).Scan(&manifest)
			s.DB.QueryRow(ctx, `SELECT count(*) FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 AND t.name = $2`,
				info.Repo, info.Tag).Scan(&tag)
			t.Logf("left over %s: mark %s (%v); manifest rows %d, tag rows %d", k, first, err, manifest, tag)
		}
	}
	var multipart []string
	if err := s.S3.ListUploads(ctx, "", func(u s3store.UploadInfo) error {
		multipart = append(multipart, u.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var sessions int
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM uploads`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if len(multipart) > 0 || sessions > 0 {
		t.Errorf("left over: %d upload sessions, multipart uploads %v", sessions, multipart)
	}
	t.Logf("the bucket holds exactly the %d objects of %d live tags' images", len(got), countTags(clients))
}

func countTags(clients []*tortureClient) int {
	n := 0
	for _, c := range clients {
		n += len(c.tags)
	}
	return n
}
