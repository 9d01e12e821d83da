// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/s3store"
)

// TestWalkEmitsEveryKeyOnce: however small the pages after which prefixes
// are split, the parallel walk emits exactly the registry keys (those
// parseKey accepts) that a single flat listing finds, each once.
func TestWalkEmitsEveryKeyOnce(t *testing.T) {
	b := newBucket(t)
	writeCorpus(b)
	// Enough tags and links to split tag names and hex digits, at
	// several depths.
	for i := range 40 {
		d := digest.FromString(fmt.Sprint(i))
		b.put(b.l.LayerLink("many/links", d), []byte(d))
		b.put(b.l.BlobData(d), []byte(fmt.Sprint(i)))
		b.tag("many/tags", fmt.Sprintf("t%d", i), d)
		b.tag("many/tags", fmt.Sprintf("T-%d.x", i), d)
	}
	ctx := context.Background()
	var want []string
	err := b.s3.List(ctx, "", func(o s3store.ObjectInfo) error {
		if registryKey(b.l, o.Key) {
			want = append(want, o.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	defer func(n int) { splitAfter = n }(splitAfter)
	for _, n := range []int{1, 3, 1000} {
		splitAfter = n
		var mu sync.Mutex
		var got []string
		w := &walker{s3: b.s3, workers: 8, emit: func(_ context.Context, o s3store.ObjectInfo) error {
			mu.Lock()
			defer mu.Unlock()
			if registryKey(b.l, o.Key) {
				got = append(got, o.Key)
			}
			return nil
		}}
		if err := w.walk(ctx, b.l); err != nil {
			t.Fatalf("split after %d: %v", n, err)
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("split after %d keys (-flat listing +walk):\n%s", n, diff)
		}
	}
}

// registryKey reports whether key is registry content the walk must find.
func registryKey(l s3store.Layout, key string) bool {
	info, ok := parseKey(l, key)
	return ok && info.Kind != s3store.KeyUploadData
}
