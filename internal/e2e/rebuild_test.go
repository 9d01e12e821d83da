// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/rebuild"
)

// pushed is what a corpus push sent: every blob's and manifest's bytes
// by repository and digest, and every tag.
type pushed struct {
	blobs     map[string]map[digest.Digest][]byte
	manifests map[string]map[digest.Digest][]byte
	tags      map[string]map[string]digest.Digest
}

// corpusPush sends content through the HTTP API, checking each answer.
type corpusPush struct {
	t *testing.T
	s *Stack
	pushed
}

func (p *corpusPush) blob(repo string, alg digest.Algorithm, content []byte) map[string]any {
	p.t.Helper()
	d := alg.FromBytes(content)
	mustStatus(p.t, p.s, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), nil, content, 201)
	if p.blobs[repo] == nil {
		p.blobs[repo] = map[digest.Digest][]byte{}
	}
	p.blobs[repo][d] = content
	return map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(content)}
}

// manifest pushes v as a manifest of repo, by digest in alg with tags as
// tag parameters, and returns its descriptor.
func (p *corpusPush) manifest(repo, mediaType string, alg digest.Algorithm, v any, tags ...string) map[string]any {
	p.t.Helper()
	content, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	d := alg.FromBytes(content)
	q := url.Values{"tag": tags}.Encode()
	mustStatus(p.t, p.s, "PUT", "/v2/"+repo+"/manifests/"+d.String()+"?"+q, map[string]string{"Content-Type": mediaType}, content, 201)
	if p.manifests[repo] == nil {
		p.manifests[repo], p.tags[repo] = map[digest.Digest][]byte{}, map[string]digest.Digest{}
	}
	p.manifests[repo][d] = content
	for _, tag := range tags {
		p.tags[repo][tag] = d
	}
	return map[string]any{"mediaType": mediaType, "digest": d, "size": len(content)}
}

const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex    = "application/vnd.oci.image.index.v1+json"
)

// image pushes an image manifest over a fresh config and the layers.
func (p *corpusPush) image(repo, seed string, alg digest.Algorithm, layers []map[string]any, tags ...string) map[string]any {
	config := p.blob(repo, alg, []byte(`{"os":"linux","seed":"`+seed+`"}`))
	config["mediaType"] = "application/vnd.oci.image.config.v1+json"
	return p.manifest(repo, mtOCIManifest, alg, map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest,
		"config": config, "layers": layers}, tags...)
}

// pushCorpus pushes several repositories (one nested in another), a
// multi-arch index, Docker manifests, artifacts with subjects, several
// tags per manifest, sha512 content, an empty blob and a mounted blob.
func pushCorpus(t *testing.T, s *Stack) pushed {
	p := &corpusPush{t: t, s: s, pushed: pushed{blobs: map[string]map[digest.Digest][]byte{},
		manifests: map[string]map[digest.Digest][]byte{}, tags: map[string]map[string]digest.Digest{}}}
	const app = "corpus/app"
	shared := p.blob(app, digest.SHA256, bytes.Repeat([]byte("shared"), 2000))
	empty := p.blob(app, digest.SHA256, nil)
	amd64 := p.image(app, "amd64", digest.SHA256, []map[string]any{shared, p.blob(app, digest.SHA256, []byte("amd64"))}, "amd64")
	arm64 := p.image(app, "arm64", digest.SHA256, []map[string]any{shared, empty})
	amd64["platform"] = map[string]string{"os": "linux", "architecture": "amd64"}
	arm64["platform"] = map[string]string{"os": "linux", "architecture": "arm64"}
	index := p.manifest(app, mtOCIIndex, digest.SHA256, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex,
		"manifests": []any{amd64, arm64}, "annotations": map[string]string{"org.example.release": "1"}}, "multi", "latest", "stable")

	// Artifacts: one with an artifactType on the index, one whose config
	// media type stands for its type on an image, and a referrer of a
	// referrer.
	emptyJSON := p.blob(app, digest.SHA256, []byte("{}"))
	emptyJSON["mediaType"] = "application/vnd.oci.empty.v1+json"
	sig := p.manifest(app, mtOCIManifest, digest.SHA256, map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest,
		"artifactType": "application/vnd.example.signature", "config": emptyJSON,
		"layers": []any{p.blob(app, digest.SHA256, []byte("signature"))}, "subject": index})
	sbomConfig := p.blob(app, digest.SHA256, []byte(`{"sbom":"config"}`))
	sbomConfig["mediaType"] = "application/vnd.example.sbom.config"
	p.manifest(app, mtOCIManifest, digest.SHA256, map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest,
		"config": sbomConfig, "layers": []any{}, "subject": amd64, "annotations": map[string]string{"org.example": "sbom"}})
	p.manifest(app, mtOCIManifest, digest.SHA256, map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest,
		"artifactType": "application/vnd.example.countersignature", "config": emptyJSON, "layers": []any{}, "subject": sig})

	// A repository inside another one's name.
	p.image(app+"/sub", "sub", digest.SHA256, nil, "v1", "v2")

	// Docker schema2 and a manifest list.
	const docker = "corpus/docker"
	dockerConfig := p.blob(docker, digest.SHA256, []byte(`{"os":"linux","docker":true}`))
	dockerConfig["mediaType"] = "application/vnd.docker.container.image.v1+json"
	dockerLayer := p.blob(docker, digest.SHA256, []byte("docker layer"))
	dockerLayer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	const dockerManifest, dockerList = "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"
	dm := p.manifest(docker, dockerManifest, digest.SHA256, map[string]any{"schemaVersion": 2, "mediaType": dockerManifest,
		"config": dockerConfig, "layers": []any{dockerLayer}}, "image")
	dm["platform"] = map[string]string{"os": "linux", "architecture": "amd64"}
	p.manifest(docker, dockerList, digest.SHA256, map[string]any{"schemaVersion": 2, "mediaType": dockerList,
		"manifests": []any{dm}}, "list", "latest")

	// sha512 throughout.
	const sha = "corpus/sha512"
	p.image(sha, "sha512", digest.SHA512, []map[string]any{p.blob(sha, digest.SHA512, []byte("sha512 layer"))}, "v1")

	// A mount: the shared layer linked into another repository.
	const mounted = "corpus/mounted"
	mustStatus(t, s, "POST", "/v2/"+mounted+"/blobs/uploads/?mount="+shared["digest"].(digest.Digest).String()+"&from="+app, nil, nil, 201)
	p.blobs[mounted] = map[digest.Digest][]byte{shared["digest"].(digest.Digest): p.blobs[app][shared["digest"].(digest.Digest)]}
	p.image(mounted, "mounted", digest.SHA256, []map[string]any{shared}, "v1")
	return p.pushed
}

// apiDump is the registry's state as clients see it: the catalog, every
// tag and its digest, the referrers of every manifest, and which blobs
// each repository serves.
func apiDump(t *testing.T, s *Stack, p pushed) string {
	t.Helper()
	var b strings.Builder
	_, catalog := call(t, s, "GET", "/v2/_catalog", nil, nil)
	fmt.Fprintf(&b, "catalog %s\n", catalog)
	for _, repo := range slices.Sorted(maps.Keys(p.manifests)) {
		resp, tags := call(t, s, "GET", "/v2/"+repo+"/tags/list", nil, nil)
		fmt.Fprintf(&b, "tags %d %s\n", resp.StatusCode, tags)
		for _, tag := range slices.Sorted(maps.Keys(p.tags[repo])) {
			resp, _ := call(t, s, "HEAD", "/v2/"+repo+"/manifests/"+tag, nil, nil)
			fmt.Fprintf(&b, "tag %s:%s %d %s %s\n", repo, tag, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), resp.Header.Get("Content-Type"))
		}
		for _, d := range slices.Sorted(maps.Keys(p.manifests[repo])) {
			resp, referrers := call(t, s, "GET", "/v2/"+repo+"/referrers/"+d.String(), nil, nil)
			fmt.Fprintf(&b, "referrers %s@%s %d %s\n", repo, d, resp.StatusCode, referrers)
		}
	}
	for _, repo := range slices.Sorted(maps.Keys(p.blobs)) {
		for _, d := range slices.Sorted(maps.Keys(p.blobs[repo])) {
			resp, _ := call(t, s, "HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil, nil)
			fmt.Fprintf(&b, "blob %s@%s %d %s\n", repo, d, resp.StatusCode, resp.Header.Get("Content-Length"))
		}
	}
	return b.String()
}

// checkPulls requires every manifest (by digest and by tag) and every
// blob to come back with the bytes pushed.
func checkPulls(t *testing.T, s *Stack, p pushed) {
	t.Helper()
	for repo, ms := range p.manifests {
		for d, content := range ms {
			if resp, body := call(t, s, "GET", "/v2/"+repo+"/manifests/"+d.String(), nil, nil); resp.StatusCode != 200 || !bytes.Equal(body, content) {
				t.Errorf("GET %s@%s: %d, %d bytes, want the %d pushed", repo, d, resp.StatusCode, len(body), len(content))
			}
		}
		for tag, d := range p.tags[repo] {
			if resp, body := call(t, s, "GET", "/v2/"+repo+"/manifests/"+tag, nil, nil); resp.StatusCode != 200 || !bytes.Equal(body, ms[d]) {
				t.Errorf("GET %s:%s: %d, not the bytes pushed", repo, tag, resp.StatusCode)
			}
		}
	}
	for repo, bs := range p.blobs {
		for d, content := range bs {
			if resp, body := call(t, s, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil, nil); resp.StatusCode != 200 || !bytes.Equal(body, content) {
				t.Errorf("GET blob %s@%s: %d, not the bytes pushed", repo, d, resp.StatusCode)
			}
		}
	}
}

// TestRebuildAfterLosingTheDatabase: push a corpus, dump the registry,
// drop the database, create and migrate it again, rebuild-db, and the
// registry answers exactly as before: same dump through the API, same
// index rows, and every pull byte-identical.
func TestRebuildAfterLosingTheDatabase(t *testing.T) {
	ctx := context.Background()
	db, s3cfg := testenv.PostgresDatabase(t), testenv.S3(t)
	s := start(t, db, s3cfg, stackOptions{store: store.Config{AutoMount: true}})
	p := pushCorpus(t, s)
	checkPulls(t, s, p)
	wantAPI := apiDump(t, s, p)
	wantIndex, err := rebuild.Dump(ctx, s.DB)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(wantAPI, "application/vnd.example.countersignature") || !strings.Contains(wantAPI, "application/vnd.example.sbom.config") {
		t.Fatalf("the corpus lacks its referrers:\n%s", wantAPI)
	}

	s.DB.Close()
	recreateDatabase(t, db.Owner)
	s2 := start(t, db, s3cfg, stackOptions{store: store.Config{AutoMount: true}}) // migrates the new, empty database
	if got, _ := rebuild.Dump(ctx, s2.DB); got != "" {
		t.Fatalf("the recreated database is not empty:\n%s", got)
	}
	var logs strings.Builder
	sum, err := rebuild.Run(ctx, rebuild.Options{DB: s2.DB, S3: s2.S3, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatalf("rebuild-db: %v\n%s", err, logs.String())
	}
	if sum.Problems() != 0 || sum.Drift() != 0 {
		t.Errorf("rebuild-db found problems %d, drift %d:\n%s", sum.Problems(), sum.Drift(), logs.String())
	}
	gotIndex, err := rebuild.Dump(ctx, s2.DB)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantIndex, gotIndex); diff != "" {
		t.Errorf("index rows after rebuild (-pushed +rebuilt):\n%s", diff)
	}
	if diff := cmp.Diff(wantAPI, apiDump(t, s2, p)); diff != "" {
		t.Errorf("registry answers after rebuild (-pushed +rebuilt):\n%s", diff)
	}
	checkPulls(t, s2, p)

	again, err := rebuild.Run(ctx, rebuild.Options{DB: s2.DB, S3: s2.S3, Logger: zerolog.Nop()})
	if err != nil || again.Changes.Total() != 0 {
		t.Errorf("a second rebuild: %v, changes %+v", err, again.Changes)
	}
}

// recreateDatabase drops the database of dbURL, with whatever is still
// connected to it, and creates it again empty.
func recreateDatabase(t *testing.T, dbURL string) {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	for _, q := range []string{"DROP DATABASE " + ident + " WITH (FORCE)", "CREATE DATABASE " + ident} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
