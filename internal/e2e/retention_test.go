// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/s3store"
)

// newTestIndex builds an index of the given images.
func newTestIndex(t *testing.T, children ...testImage) testImage {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for i, c := range children {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: c.digest,
			Size: int64(len(c.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: []string{"amd64", "arm64", "riscv64"}[i%3]}})
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return testImage{manifest: b, digest: digest.FromBytes(b)}
}

func mustPushIndex(t *testing.T, s *Stack, repo, ref string, idx testImage) {
	t.Helper()
	resp, body := call(t, s, "PUT", "/v2/"+repo+"/manifests/"+ref, map[string]string{"Content-Type": ocispec.MediaTypeImageIndex}, idx.manifest)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push index %s:%s: %d %s", repo, ref, resp.StatusCode, body)
	}
}

const retentionPolicy = `
retention:
  - repositories: "ret/**"
    keepTags:
      - pattern: "^v[0-9]"
      - mostRecentlyPushed: 1
      - pulledWithin: 24h
    deleteUntagged: true
    untaggedGrace: 1h
`

// TestRetention pushes a repository of images, indexes, signatures and
// orphans, ages it, and checks that retention removes exactly the tags no
// rule keeps and the manifests no kept tag reaches; that the plan is what
// apply removes; that pulls are recorded in batches and keep a tag; and
// that kept images stay pullable, with their referrers, by real clients.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	s := StartWith(t, store.Config{AutoMount: true, RecordPulls: true})
	const repo = "ret/app"
	img := map[string]testImage{}
	for _, n := range []string{"A", "B", "C", "D", "E", "X", "Y", "Z", "O", "N"} {
		img[n] = newTestImage(t, 2048, nil)
	}
	img["S1"] = newTestImage(t, 64, ptr(img["A"]))
	img["S2"] = newTestImage(t, 64, ptr(img["C"]))
	img["I"] = newTestIndex(t, img["X"], img["Y"])
	img["K"] = newTestIndex(t, img["Y"], img["Z"])
	for tag, n := range map[string]string{"v1.0": "A", "v1.1": "B", "dev-1": "C", "dev-2": "D", "dev-3": "E"} {
		mustPush(t, s, repo, tag, img[n])
	}
	for _, n := range []string{"X", "Y", "Z", "O", "N", "S1", "S2"} {
		mustPush(t, s, repo, img[n].digest.String(), img[n])
	}
	mustPushIndex(t, s, repo, "v2.0", img["I"])
	mustPushIndex(t, s, repo, "dev-index", img["K"])

	// Age everything two days and record an old pull of every manifest;
	// then N is pushed just now, latest moves onto E, and dev-2 is pulled.
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := s.DB.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`UPDATE tags SET updated_at = now() - interval '48 hours'`)
	exec(`UPDATE manifests SET created_at = now() - interval '48 hours' WHERE digest <> $1`, img["N"].digest.String())
	exec(`INSERT INTO manifest_pulls SELECT repository_id, digest, now() - interval '10 days' FROM manifests`)
	mustPush(t, s, repo, "latest", img["E"])
	mustStatus(t, s, "GET", "/v2/"+repo+"/manifests/dev-2", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil, http.StatusOK)
	var pulled time.Time
	if err := s.DB.QueryRow(ctx, `SELECT last_pulled_at FROM manifest_pulls WHERE digest = $1`, img["D"].digest.String()).Scan(&pulled); err != nil || time.Since(pulled) < 24*time.Hour {
		t.Fatalf("a pull was written on the pull's own path: %v %v", pulled, err)
	}
	if err := s.Store.FlushPulls(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.DB.QueryRow(ctx, `SELECT last_pulled_at FROM manifest_pulls WHERE digest = $1`, img["D"].digest.String()).Scan(&pulled); err != nil || time.Since(pulled) > time.Minute {
		t.Fatalf("the flushed pull of dev-2 is at %v (%v), want now", pulled, err)
	}

	p, err := policy.Parse([]byte(retentionPolicy))
	if err != nil {
		t.Fatal(err)
	}
	plans, err := policy.PlanRetention(ctx, s.Store, p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var gotTags, gotManifests []string
	for _, pl := range plans {
		for _, tr := range pl.Tags {
			gotTags = append(gotTags, tr.Tag)
		}
		for _, m := range pl.Manifests {
			gotManifests = append(gotManifests, m.Digest)
		}
	}
	name := map[string]string{}
	for n, i := range img {
		name[i.digest.String()] = n
	}
	var gotNames []string
	for _, d := range gotManifests {
		gotNames = append(gotNames, name[d])
	}
	if diff := cmp.Diff([]string{"dev-1", "dev-3", "dev-index"}, gotTags); diff != "" {
		t.Errorf("planned tag removals (-want +got):\n%s", diff)
	}
	wantRemoved := []string{"C", "K", "O", "S2", "Z"}
	if diff := cmp.Diff(wantRemoved, slices.Sorted(slices.Values(gotNames))); diff != "" {
		t.Errorf("planned manifest removals (-want +got):\n%s", diff)
	}
	if slices.Index(gotNames, "K") > slices.Index(gotNames, "Z") {
		t.Errorf("the index K is planned after its child Z: %v", gotNames)
	}

	applied, err := policy.ApplyRetention(ctx, s.Store, plans)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plans, applied.Removed); diff != "" || len(applied.Skipped) > 0 {
		t.Errorf("apply removed other than the plan (-plan +applied):\n%s\nskipped: %v", diff, applied.Skipped)
	}

	// The index and the bucket agree with the plan.
	rows, _ := s.DB.Query(ctx, `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = $1 ORDER BY 1`, repo)
	tags, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	if diff := cmp.Diff([]string{"dev-2", "latest", "v1.0", "v1.1", "v2.0"}, tags); diff != "" {
		t.Errorf("tags after apply (-want +got):\n%s", diff)
	}
	for n, i := range img {
		want := http.StatusOK
		if slices.Contains(wantRemoved, n) {
			want = http.StatusNotFound
		}
		mustStatus(t, s, "HEAD", "/v2/"+repo+"/manifests/"+i.digest.String(), nil, nil, want)
		_, err := s.S3.Stat(ctx, s.S3.Layout().RevisionLink(repo, i.digest))
		if exists := err == nil; exists != (want == http.StatusOK) || (err != nil && !errors.Is(err, s3store.ErrNotFound)) {
			t.Errorf("revision link of %s: exists %v (%v), want %v", n, exists, err, want == http.StatusOK)
		}
	}
	if again, err := policy.PlanRetention(ctx, s.Store, p, time.Now()); err != nil || len(again) != 0 {
		t.Errorf("a second plan after apply: %v, %v; want nothing", again, err)
	}

	// Real clients: kept images pull, and the signature of v1.0 is still
	// listed by the referrers API.
	crane := testenv.Tool(t, "crane")
	oras := testenv.Tool(t, "oras")
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}
	for _, ref := range []string{"v1.0", "dev-2", "latest", "@" + img["X"].digest.String()} {
		sep := ":"
		if strings.HasPrefix(ref, "@") {
			sep = ""
		}
		run(t, env, crane, "pull", "--insecure", s.Addr+"/"+repo+sep+ref, filepath.Join(dir, "pull.tar"))
	}
	if out := run(t, env, crane, "manifest", "--insecure", s.Addr+"/"+repo+":v2.0"); !strings.Contains(out, img["Y"].digest.String()) {
		t.Errorf("index v2.0 no longer lists Y:\n%s", out)
	}
	if out := run(t, env, oras, "discover", "--plain-http", "--format", "json", s.Addr+"/"+repo+":v1.0"); !strings.Contains(out, img["S1"].digest.String()) {
		t.Errorf("the signature of v1.0 is gone from its referrers:\n%s", out)
	}
}

func ptr[T any](v T) *T { return &v }
