// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestList(t *testing.T) {
	// A page size of 2 makes every listing below span several pages.
	s := newStore(t, func(c *Config) { c.ListPageSize = 2 })
	var want []string
	for i := range 7 {
		key := fmt.Sprintf("list/dir%d/obj", i)
		mustPut(t, s, key, make([]byte, i))
		want = append(want, key)
	}
	mustPut(t, s, "list/top", []byte("x"))
	mustPut(t, s, "listing-sibling", []byte("x"))
	want = append(want, "list/top")

	var got []string
	err := s.List(t.Context(), "list/", func(o ObjectInfo) error {
		got = append(got, o.Key)
		if o.LastModified.IsZero() {
			t.Errorf("%s: no LastModified", o.Key)
		}
		if want := int64(len(got) - 1); o.Key != "list/top" && o.Size != want {
			t.Errorf("%s: size %d, want %d", o.Key, o.Size, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	stop := errors.New("stop")
	calls := 0
	err = s.List(t.Context(), "list/", func(ObjectInfo) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("List stopped by fn: %v after %d calls", err, calls)
	}

	prefixes, err := s.ListPrefixes(t.Context(), "list/")
	if err != nil {
		t.Fatalf("ListPrefixes: %v", err)
	}
	var wantPrefixes []string
	for i := range 7 {
		wantPrefixes = append(wantPrefixes, fmt.Sprintf("list/dir%d/", i))
	}
	if diff := cmp.Diff(wantPrefixes, prefixes); diff != "" {
		t.Errorf("ListPrefixes (-want +got):\n%s", diff)
	}

	none, err := s.ListPrefixes(t.Context(), "nothing/")
	if err != nil || len(none) != 0 {
		t.Errorf("ListPrefixes of nothing = %q, %v", none, err)
	}
}

func TestListLayout(t *testing.T) {
	// The registry walks repositories level by level; names contain "/".
	s := newStore(t, nil)
	l := s.Layout()
	for _, repo := range []string{"a", "b/c", "b/d/e"} {
		if err := s.PutLink(t.Context(), l.RevisionLink(repo, dgst), dgst); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListPrefixes(t.Context(), l.RepositoriesPrefix())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{l.RepositoriesPrefix() + "a/", l.RepositoriesPrefix() + "b/"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListPrefixes (-want +got):\n%s", diff)
	}
	var kinds []KeyInfo
	err = s.List(t.Context(), l.RepositoriesPrefix(), func(o ObjectInfo) error {
		info, ok := l.ParseKey(o.Key)
		if !ok {
			t.Errorf("ParseKey(%q) failed", o.Key)
		}
		kinds = append(kinds, info)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantKinds := []KeyInfo{
		{Kind: KeyRevisionLink, Repo: "a", Digest: dgst},
		{Kind: KeyRevisionLink, Repo: "b/c", Digest: dgst},
		{Kind: KeyRevisionLink, Repo: "b/d/e", Digest: dgst},
	}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("parsed listing (-want +got):\n%s", diff)
	}
}

func TestDeletePrefix(t *testing.T) {
	for _, mode := range []string{"batch", "single"} {
		t.Run(mode, func(t *testing.T) {
			s := newStore(t, func(c *Config) { c.ListPageSize = 3 })
			if mode == "single" {
				// As if the server had refused DeleteObjects before.
				s.batchDeleteRefused.Store(true)
			}
			for i := range 10 {
				mustPut(t, s, fmt.Sprintf("del/%d/x", i), []byte("x"))
			}
			mustPut(t, s, "del-sibling", []byte("keep"))
			mustPut(t, s, "keep/x", []byte("keep"))
			if err := s.DeletePrefix(t.Context(), "del/"); err != nil {
				t.Fatalf("DeletePrefix: %v", err)
			}
			var left []string
			if err := s.List(t.Context(), "", func(o ObjectInfo) error {
				left = append(left, o.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"del-sibling", "keep/x"}, left); diff != "" {
				t.Errorf("left after DeletePrefix (-want +got):\n%s", diff)
			}
			if mode == "batch" && s.batchDeleteRefused.Load() {
				t.Error("the server refused DeleteObjects")
			}
			if err := s.DeletePrefix(t.Context(), "del/"); err != nil {
				t.Errorf("DeletePrefix of nothing: %v", err)
			}
			if err := s.DeletePrefix(t.Context(), ""); err == nil {
				t.Error("DeletePrefix of the empty prefix succeeded")
			}
		})
	}
}

// TestDeleteKeys: exactly the named keys go, missing ones are no error,
// and more than one request's worth are split.
func TestDeleteKeys(t *testing.T) {
	s := newStore(t, nil)
	var doomed []string
	for i := range deleteBatchSize + 3 {
		doomed = append(doomed, fmt.Sprintf("dk/%04d", i))
	}
	for _, k := range []string{doomed[0], doomed[deleteBatchSize+1], "dk/keep"} {
		mustPut(t, s, k, []byte("x"))
	}
	if err := s.DeleteKeys(t.Context(), doomed); err != nil {
		t.Fatalf("DeleteKeys: %v", err)
	}
	var left []string
	if err := s.List(t.Context(), "", func(o ObjectInfo) error {
		left = append(left, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"dk/keep"}, left); diff != "" {
		t.Errorf("left after DeleteKeys (-want +got):\n%s", diff)
	}
}

// TestPutNextToDelete: a put into a directory that a concurrent delete
// empties succeeds. versitygw's posix backend removes the emptied
// directory and answers such a put 409 ExistingObjectIsDirectory at times
// (about one in ten here without the retry).
func TestPutNextToDelete(t *testing.T) {
	s := newStore(t, nil)
	ctx := t.Context()
	for i := range 100 {
		dir := fmt.Sprintf("race/%d/a/", i)
		mustPut(t, s, dir+"old", []byte("x"))
		done := make(chan error, 1)
		go func() { done <- s.DeleteKeys(ctx, []string{dir + "old"}) }()
		if err := s.PutBytes(ctx, dir+"new", []byte("y")); err != nil {
			t.Fatalf("put next to a delete: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
}
