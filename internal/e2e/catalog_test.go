// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/registry"
)

// catalogCounter is the serving chain, counting the catalog listings the
// API asks of it: each is one query to PostgreSQL.
type catalogCounter struct {
	registry.Store
	calls atomic.Int64
}

func (c *catalogCounter) Catalog(ctx context.Context, last string, n int) ([]string, bool, error) {
	c.calls.Add(1)
	return c.Store.Catalog(ctx, last, n)
}

// catalogPage is one GET of the catalog: its names and its Link header.
func catalogPage(t *testing.T, s *Stack, path string, headers map[string]string) ([]string, string) {
	t.Helper()
	resp, body := call(t, s, "GET", path, headers, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var cat struct{ Repositories []string }
	if err := json.Unmarshal(body, &cat); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return cat.Repositories, resp.Header.Get("Link")
}

// TestCatalogPageCostsAPageOfQueries: with 1,500 repositories an anonymous
// caller may not see, walking the catalog one name a page takes a few
// listing queries, not one per hidden repository.
func TestCatalogPageCostsAPageOfQueries(t *testing.T) {
	const hidden = 1500
	f := newAuthFixture(t)
	counter := &catalogCounter{}
	s := start(t, testenv.PostgresDatabase(t), testenv.S3(t), stackOptions{
		store: store.Config{AutoMount: true}, authz: f.gate,
		instrument: func(api registry.Store) registry.Store { counter.Store = api; return counter },
	})
	img := newTestImage(t, 64, nil)
	_, teamTok := getToken(t, s, "alice", alicePass, "repository:team-a/base:pull,push")
	mustPushAs(t, s, teamTok, "team-a/base", img)
	_, publicTok := getToken(t, s, "alice", alicePass, "repository:public/app:pull,push")
	mustPushAs(t, s, publicTok, "public/app", img)
	// The hidden repositories, each holding the manifest: rows as a push
	// leaves them, written at once.
	_, err := s.DB.Exec(context.Background(), `WITH r AS (
			INSERT INTO repositories (name) SELECT format('team-a/hidden-%s', lpad(i::text, 4, '0')) FROM generate_series(1, $1) i
			RETURNING id)
		INSERT INTO manifests (repository_id, digest, media_type, content)
		SELECT r.id, m.digest, m.media_type, m.content FROM r, (SELECT * FROM manifests WHERE digest = $2 LIMIT 1) m`,
		hidden, img.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	// alice sees them all: they are listed, so hiding them is the rules'
	// doing.
	_, tk := getToken(t, s, "alice", alicePass, "registry:catalog:*")
	if all, _ := catalogPage(t, s, "/v2/_catalog?n=5000", map[string]string{"Authorization": "Bearer " + tk}); len(all) != hidden+2 {
		t.Fatalf("alice's catalog holds %d repositories, want %d", len(all), hidden+2)
	}

	_, anonTok := getToken(t, s, "", "", "registry:catalog:*")
	anon := map[string]string{"Authorization": "Bearer " + anonTok}
	counter.calls.Store(0)
	var seen []string
	for path, pages := "/v2/_catalog?n=1", 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatalf("the anonymous walk did not end after %d pages: %v", pages, seen)
		}
		names, link := catalogPage(t, s, path, anon)
		seen = append(seen, names...)
		path, _, _ = strings.Cut(strings.TrimPrefix(link, "<"), ">")
	}
	if !slices.Equal(seen, []string{"public/app"}) {
		t.Errorf("anonymous catalog walk: %v, want [public/app]", seen)
	}
	// Two pages of n=1; a listing batch reads at least a thousand names.
	if calls := counter.calls.Load(); calls > 4 {
		t.Errorf("the anonymous walk asked the store for %d catalog listings; want a few, not one per hidden repository", calls)
	}
}

// TestCatalogListsOnlyPushedRepositories: a repository appears in the
// catalog once it holds a manifest. Opening an upload, sending a chunk at
// the wrong offset and finishing with the wrong digest, or pushing only a
// blob, lists nothing, and the name's tag list stays unknown.
func TestCatalogListsOnlyPushedRepositories(t *testing.T) {
	s := Start(t)
	mustPush(t, s, "kept/app", "v1", newTestImage(t, 64, nil))
	want := []string{"kept/app"}
	if got, _ := catalogPage(t, s, "/v2/_catalog", nil); !slices.Equal(got, want) {
		t.Fatalf("catalog after one push: %v, want %v", got, want)
	}

	resp, body := call(t, s, "POST", "/v2/bare/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	resp, body = call(t, s, "PATCH", loc, map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "5-9"}, []byte("hello"))
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("PATCH at the wrong offset: %d %s, want 416", resp.StatusCode, body)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	wrong := digest.FromString("something else")
	resp, body = call(t, s, "PUT", loc+sep+"digest="+wrong.String(), map[string]string{"Content-Type": "application/octet-stream"}, []byte("hello"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "DIGEST_INVALID") {
		t.Errorf("PUT with the wrong digest: %d %s, want 400 DIGEST_INVALID", resp.StatusCode, body)
	}
	blob := []byte("only a blob")
	resp, body = call(t, s, "POST", "/v2/blobonly/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(),
		map[string]string{"Content-Type": "application/octet-stream"}, blob)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob push: %d %s", resp.StatusCode, body)
	}

	// bare/ and blobonly/ sort before kept/: a first page of one would show
	// them.
	for _, path := range []string{"/v2/_catalog", "/v2/_catalog?n=1", "/v2/_catalog?n=1&last=bare"} {
		if got, _ := catalogPage(t, s, path, nil); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	for _, repo := range []string{"bare/app", "never/pushed"} {
		resp, body := call(t, s, "GET", fmt.Sprintf("/v2/%s/tags/list", repo), nil, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "NAME_UNKNOWN") {
			t.Errorf("tags of %s: %d %s, want 404 NAME_UNKNOWN", repo, resp.StatusCode, body)
		}
	}
}
