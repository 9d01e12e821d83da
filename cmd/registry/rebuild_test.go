// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/rebuild"
	"github.com/ha-registry/ha-registry/s3store"
)

// envFor configures the binary for a given database, bucket and prefix.
func envFor(dbURL string, s3 testenv.S3Config, prefix string) []string {
	return append(os.Environ(),
		"REGISTRY_DATABASE_URL="+dbURL,
		"REGISTRY_S3_ENDPOINT="+s3.Endpoint,
		"REGISTRY_S3_BUCKET="+s3.Bucket,
		"REGISTRY_S3_REGION="+s3.Region,
		"REGISTRY_S3_PATH_STYLE=true",
		"REGISTRY_S3_PREFIX="+prefix,
		"AWS_ACCESS_KEY_ID="+s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s3.SecretKey,
	)
}

// registry runs the binary to completion and returns its exit status,
// stdout and stderr.
func registry(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("registry %s: %v", strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String()
}

// migrateSplit migrates the database of env as its owner, granting the
// serving role, and returns env connecting as the serving role, as a
// deployment with the two roles of docs/auth.md runs serve and the
// maintenance subcommands.
func migrateSplit(t *testing.T, env []string) []string {
	t.Helper()
	var owner string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "REGISTRY_DATABASE_URL="); ok {
			owner = v
		}
	}
	mustRegistry(t, env, "migrate", "--grant-to", testenv.ServingRole)
	return append(env[:len(env):len(env)], "REGISTRY_DATABASE_URL="+testenv.AsServing(owner))
}

// mustRegistry runs the binary and fails the test unless it exits 0.
func mustRegistry(t *testing.T, env []string, args ...string) string {
	t.Helper()
	code, stdout, stderr := registry(t, env, args...)
	if code != 0 {
		t.Fatalf("registry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// TestRebuildDBCommand: the subcommand as an operator meets it: --verify
// exits 2 on drift and 0 once there is none, the summary and structured
// progress are printed, and a second run while one holds the lock says so
// and exits 1.
func TestRebuildDBCommand(t *testing.T) {
	s3cfg := testenv.S3(t)
	dbURL := testenv.Postgres(t)
	e := envFor(dbURL, s3cfg, "some/prefix")
	e = migrateSplit(t, e)

	// Content straight in the bucket, as a lost database leaves it.
	ctx := context.Background()
	s3, err := s3store.New(ctx, s3store.Config{Endpoint: s3cfg.Endpoint, Region: s3cfg.Region, Bucket: s3cfg.Bucket,
		PathStyle: true, AccessKey: s3cfg.AccessKey, SecretKey: s3cfg.SecretKey, Root: "some/prefix"})
	if err != nil {
		t.Fatal(err)
	}
	l := s3.Layout()
	blob := []byte("a blob")
	d := digest.FromBytes(blob)
	for key, content := range map[string][]byte{l.BlobData(d): blob, l.LayerLink("cli/repo", d): []byte(d)} {
		if err := s3.PutBytes(ctx, key, content); err != nil {
			t.Fatal(err)
		}
	}

	code, stdout, stderr := registry(t, e, "rebuild-db", "--verify")
	if code != 2 || !strings.Contains(stdout, "index-lacks-blob-link") || !strings.Contains(stderr, "the index and the bucket differ") {
		t.Fatalf("verify of an empty index: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Another run holds the lock.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", rebuild.LockKey); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = registry(t, e, "rebuild-db")
	if code != 1 || !strings.Contains(stderr, "another registry rebuild-db is running") {
		t.Fatalf("rebuild-db while the lock is held: exit %d, want 1\n%s", code, stderr)
	}
	conn.Close(ctx)

	code, stdout, stderr = registry(t, e, "rebuild-db", "--concurrency", "4")
	if code != 0 || !strings.Contains(stdout, "bucket: 1 repositories, 0 tags, 0 manifests, 1 blobs, 6 bytes") {
		t.Fatalf("rebuild-db: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// stderr is not a terminal here: progress comes as log lines.
	for _, want := range []string{`"message":"rebuild-db progress"`, `"phase":"done"`, `"message":"rebuild-db finished"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %s:\n%s", want, stderr)
		}
	}
	if stdout := mustRegistry(t, e, "rebuild-db", "--verify"); !strings.Contains(stdout, "drift: 0") {
		t.Errorf("verify after the rebuild:\n%s", stdout)
	}
	if code, _, stderr := registry(t, e, "rebuild-db", "--verify", "--repair"); code != 1 || !strings.Contains(stderr, "exclude each other") {
		t.Errorf("--verify --repair: exit %d\n%s", code, stderr)
	}
}

// TestAdoptDistributionBucket: images pushed through CNCF distribution
// v3 onto S3 (platform images with a multipart layer, a multi-arch index,
// a second tag, a copy into another repository, an artifact with a
// subject) are served byte-identical by this registry after rebuild-db on
// distribution's bucket.
func TestAdoptDistributionBucket(t *testing.T) {
	dist := testenv.Tool(t, "distribution")
	crane := testenv.Tool(t, "crane")
	oras := testenv.Tool(t, "oras")
	s3cfg := testenv.S3(t)
	dir := t.TempDir()
	home := []string{"HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}

	old := "127.0.0.1" + testenv.FreeAddr(t)[len("127.0.0.1"):]
	startDistribution(t, dist, dir, old, s3cfg)
	tool := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), home...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, p := range []struct {
		arch string
		size int
	}{{"amd64", 64 << 10}, {"arm64", 11 << 20}} {
		layer := filepath.Join(dir, p.arch+".tar")
		writeTar(t, layer, p.arch, p.size)
		ref := old + "/adopt/app:" + p.arch
		tool(crane, "append", "--insecure", "-f", layer, "-t", ref)
		tool(crane, "mutate", "--insecure", "--set-platform", "linux/"+p.arch, "-t", ref, ref)
	}
	tool(crane, "index", "append", "--insecure", "-m", old+"/adopt/app:amd64", "-m", old+"/adopt/app:arm64", "-t", old+"/adopt/app:multi")
	tool(crane, "tag", "--insecure", old+"/adopt/app:multi", "latest")
	tool(crane, "copy", "--insecure", old+"/adopt/app:multi", old+"/adopt/copy:v1")
	os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"sbom":true}`), 0o644)
	tool(oras, "attach", "--plain-http", "--distribution-spec", "v1.1-referrers-tag",
		"--artifact-type", "application/vnd.example.sbom", old+"/adopt/app:multi", "sbom.json:application/json")
	index := tool(crane, "digest", "--insecure", old+"/adopt/app:multi")

	// Adopt: migrate, rebuild-db, verify, serve.
	e := envFor(testenv.Postgres(t), s3cfg, "distribution")
	e = migrateSplit(t, e)
	out := mustRegistry(t, e, "rebuild-db")
	t.Log(out)
	if !strings.Contains(out, "problems: 0") || !strings.Contains(out, "bucket: 2 repositories") {
		t.Fatalf("rebuild-db on distribution's bucket:\n%s", out)
	}
	if out := mustRegistry(t, e, "rebuild-db", "--verify"); !strings.Contains(out, "drift: 0") {
		t.Fatalf("verify after adoption:\n%s", out)
	}
	ours := testenv.FreeAddr(t)
	startServe(t, e, ours)

	// Everything distribution serves, ours serves byte for byte.
	if got, want := catalog(t, ours), catalog(t, old); !slices.Equal(got, want) {
		t.Errorf("catalog: ours %v, distribution's %v", got, want)
	}
	for _, repo := range []string{"adopt/app", "adopt/copy"} {
		tags := tagList(t, old, repo)
		if got := tagList(t, ours, repo); !slices.Equal(got, tags) {
			t.Errorf("%s tags: ours %v, distribution's %v", repo, got, tags)
		}
		for _, tag := range tags {
			compareManifest(t, old, ours, repo, tag)
		}
	}
	// The artifact pushed with a subject is found through the referrers
	// API, which distribution never had.
	_, body := fetch(t, ours, "/v2/adopt/app/referrers/"+index, "")
	if !strings.Contains(body, "application/vnd.example.sbom") {
		t.Errorf("referrers of the index on our registry:\n%s", body)
	}
}

// startDistribution runs distribution's registry on addr with its S3
// driver on the bucket, under the root directory "distribution".
func startDistribution(t *testing.T, bin, dir, addr string, s3 testenv.S3Config) {
	t.Helper()
	cmd := testenv.DistributionCommand(t, bin, dir, addr, "distribution", s3, os.Environ())
	startWaitReady(t, cmd, addr, "distribution")
}

// startServe runs our registry on addr.
func startServe(t *testing.T, env []string, addr string) {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--listen", addr)
	cmd.Env = env
	startWaitReady(t, cmd, addr, "registry")
}

// startWaitReady starts cmd and waits until addr answers /v2/, stopping
// cmd when the test ends.
func startWaitReady(t *testing.T, cmd *exec.Cmd, addr, name string) {
	t.Helper()
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// 401: a registry with authentication on answers too.
		if code, _ := get(t, "http://"+addr+"/v2/"); code == http.StatusOK || code == http.StatusUnauthorized {
			return
		}
	}
	t.Fatalf("%s never answered on %s; logs:\n%s", name, addr, logs.String())
}

// fetch GETs path from the registry at addr and returns the response's
// headers and body, failing the test unless it is 200.
func fetch(t *testing.T, addr, path, accept string) (http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: %d %v\n%s", addr, path, resp.StatusCode, err, b)
	}
	return resp.Header, string(b)
}

func tagList(t *testing.T, addr, repo string) []string {
	t.Helper()
	_, body := fetch(t, addr, "/v2/"+repo+"/tags/list", "")
	var list struct{ Tags []string }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("tags of %s at %s: %v", repo, addr, err)
	}
	slices.Sort(list.Tags)
	return list.Tags
}

func catalog(t *testing.T, addr string) []string {
	t.Helper()
	_, body := fetch(t, addr, "/v2/_catalog", "")
	var list struct{ Repositories []string }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("catalog at %s: %v", addr, err)
	}
	return list.Repositories
}

// manifestAccept is every manifest media type, as clients send.
const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

// compareManifest requires ours to serve the manifest at ref, its media
// type, and, through indexes, every manifest and blob it references, with
// the bytes distribution serves.
func compareManifest(t *testing.T, old, ours, repo, ref string) {
	t.Helper()
	hOld, mOld := fetch(t, old, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	hOurs, mOurs := fetch(t, ours, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if mOurs != mOld || hOurs.Get("Content-Type") != hOld.Get("Content-Type") ||
		hOurs.Get("Docker-Content-Digest") != hOld.Get("Docker-Content-Digest") {
		t.Fatalf("%s:%s differs: ours %s %s\n%s\ndistribution's %s %s\n%s", repo, ref,
			hOurs.Get("Content-Type"), hOurs.Get("Docker-Content-Digest"), mOurs,
			hOld.Get("Content-Type"), hOld.Get("Docker-Content-Digest"), mOld)
	}
	var m struct {
		Config    *struct{ Digest string }
		Layers    []struct{ Digest string }
		Manifests []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(mOld), &m); err != nil {
		t.Fatal(err)
	}
	for _, child := range m.Manifests {
		compareManifest(t, old, ours, repo, child.Digest)
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, struct{ Digest string }{m.Config.Digest})
	}
	for _, b := range blobs {
		_, bOld := fetch(t, old, "/v2/"+repo+"/blobs/"+b.Digest, "")
		_, bOurs := fetch(t, ours, "/v2/"+repo+"/blobs/"+b.Digest, "")
		if bOurs != bOld || digest.FromString(bOurs).String() != b.Digest {
			t.Errorf("%s blob %s: ours %d bytes, distribution's %d", repo, b.Digest, len(bOurs), len(bOld))
		}
	}
}

// writeTar writes a tar holding one file of size random bytes, which
// compression cannot shrink.
func writeTar(t *testing.T, path, name string, size int) {
	t.Helper()
	dir := t.TempDir()
	content := make([]byte, size)
	rand.Read(content)
	os.WriteFile(filepath.Join(dir, name), content, 0o644)
	if out, err := exec.Command("tar", "-cf", path, "-C", dir, name).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
}
