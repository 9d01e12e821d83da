// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
)

// testImage is an image's blobs and manifest, built but not pushed.
type testImage struct {
	blobs    [][]byte // config first
	manifest []byte
	digest   digest.Digest
	size     int64 // unique bytes: manifest, config and layers
}

// newTestImage builds an image with one random layer of layerSize bytes.
func newTestImage(t testing.TB, layerSize int, subject *testImage) testImage {
	t.Helper()
	layer := make([]byte, layerSize)
	rand.Read(layer)
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromBytes(layer)))
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}}
	if subject != nil {
		m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject.digest, Size: int64(len(subject.manifest))}
		m.ArtifactType = "application/vnd.example.signature"
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return testImage{blobs: [][]byte{config, layer}, manifest: b, digest: digest.FromBytes(b),
		size: int64(len(b) + len(config) + len(layer))}
}

// pushImage uploads the image's blobs (monolithic POSTs) and PUTs its
// manifest under ref, returning the first refusal's status and body, or
// the manifest PUT's.
func pushImage(t *testing.T, s *Stack, repo, ref string, img testImage) (int, string) {
	t.Helper()
	for _, b := range img.blobs {
		resp, body := call(t, s, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(b).String(),
			map[string]string{"Content-Type": "application/octet-stream"}, b)
		if resp.StatusCode != http.StatusCreated {
			return resp.StatusCode, string(body)
		}
	}
	resp, body := call(t, s, "PUT", "/v2/"+repo+"/manifests/"+ref, map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, img.manifest)
	return resp.StatusCode, string(body)
}

func mustPush(t *testing.T, s *Stack, repo, ref string, img testImage) {
	t.Helper()
	if code, body := pushImage(t, s, repo, ref, img); code != http.StatusCreated {
		t.Fatalf("push %s:%s: %d %s", repo, ref, code, body)
	}
}

// quotaStack starts a stack enforcing the policy cur holds.
func quotaStack(t *testing.T, cur *policy.Current) *Stack {
	return StartWith(t, store.Config{AutoMount: true, Quotas: cur.QuotasFor})
}

func mustParsePolicy(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p
}

func usage(t *testing.T, s *Stack, p *policy.Policy, match string) store.QuotaUsage {
	t.Helper()
	for _, q := range p.Quotas {
		if q.Match == match {
			u, err := store.ComputeQuotaUsage(context.Background(), s.DB, q)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
	}
	t.Fatalf("no quota %s", match)
	return store.QuotaUsage{}
}

// TestQuotaRefusesPushOverLimit: a manifest PUT that would pass a
// namespace's byte limit is refused with DENIED, giving usage and limit,
// and changes nothing; content already stored under the namespace is
// counted once however many repositories hold it; an upload into a full
// namespace is refused at its POST; removals free room.
func TestQuotaRefusesPushOverLimit(t *testing.T) {
	first := newTestImage(t, 40<<10, nil)
	limit := first.size + 20<<10
	p := mustParsePolicy(t, fmt.Sprintf("quotas:\n  - match: team-a/\n    maxBytes: %d\n", limit))
	cur := policy.NewCurrent(p)
	s := quotaStack(t, cur)

	mustPush(t, s, "team-a/one", "v1", first)
	if u := usage(t, s, p, "team-a/"); u.Bytes != first.size || u.Tags != 1 {
		t.Fatalf("usage after the first push: %+v, want %d bytes and 1 tag", u, first.size)
	}

	// Its blobs go up (nothing refuses them below the limit), then the
	// manifest is refused and nothing of it is stored.
	second := newTestImage(t, 40<<10, nil)
	for _, b := range second.blobs {
		mustStatus(t, s, "POST", "/v2/team-a/two/blobs/uploads/?digest="+digest.FromBytes(b).String(), nil, b, http.StatusCreated)
	}
	before := snapshot(t, s)
	resp, body := call(t, s, "PUT", "/v2/team-a/two/manifests/v1", map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, second.manifest)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"DENIED"`) {
		t.Fatalf("push over the quota: %d %s, want 403 DENIED", resp.StatusCode, body)
	}
	for _, want := range []string{"team-a/", policy.FormatSize(first.size), policy.FormatSize(limit)} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the refusal %s does not say %q", body, want)
		}
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("the refused push changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if u := usage(t, s, p, "team-a/"); u.Bytes != first.size {
		t.Errorf("usage after the refusal: %d bytes, want %d", u.Bytes, first.size)
	}

	// The same image in another repository of the namespace adds no bytes.
	mustPush(t, s, "team-a/copy", "v1", first)
	if u := usage(t, s, p, "team-a/"); u.Bytes != first.size || u.Tags != 2 {
		t.Errorf("usage after a copy: %+v, want %d bytes (counted once) and 2 tags", u, first.size)
	}
	// Another namespace is not bound.
	mustPush(t, s, "team-b/app", "v1", second)

	// Lower the limit below usage (a policy reload): uploads are refused
	// at POST, monolithic or not, and mounts too.
	cur.Set(mustParsePolicy(t, "quotas:\n  - match: team-a/\n    maxBytes: 1KiB\n"))
	for _, path := range []string{"/v2/team-a/one/blobs/uploads/",
		"/v2/team-a/one/blobs/uploads/?digest=" + digest.FromBytes([]byte("x")).String(),
		"/v2/team-a/one/blobs/uploads/?mount=" + digest.FromBytes(second.blobs[1]).String() + "&from=team-b/app"} {
		resp, body := call(t, s, "POST", path, nil, []byte("x"))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "used up") {
			t.Errorf("POST %s into a full namespace: %d %s, want 403 DENIED", path, resp.StatusCode, body)
		}
	}
	// A push that stores nothing new (a tag on stored content) still goes.
	resp, body = call(t, s, "PUT", "/v2/team-a/one/manifests/again", map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, first.manifest)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("tagging stored content in a full namespace: %d %s", resp.StatusCode, body)
	}

	// Back to the first limit: deleting frees room at once, though the
	// stored figure is an upper bound that deletions do not lower.
	cur.Set(p)
	for _, repo := range []string{"team-a/one", "team-a/copy"} {
		mustStatus(t, s, "DELETE", "/v2/"+repo+"/manifests/"+first.digest.String(), nil, nil, http.StatusAccepted)
	}
	mustPush(t, s, "team-a/two", "v1", second)
	if u := usage(t, s, p, "team-a/"); u.Bytes != second.size {
		t.Errorf("usage after delete and push: %d, want %d", u.Bytes, second.size)
	}
}

// TestQuotaTagsAndNestedLimits: a repository inside a namespace is bound
// by both quotas, and a tag limit counts new tags only.
func TestQuotaTagsAndNestedLimits(t *testing.T) {
	p := mustParsePolicy(t, "quotas:\n  - match: team-a/\n    maxTags: 3\n  - match: team-a/app\n    maxTags: 2\n")
	s := quotaStack(t, policy.NewCurrent(p))
	img := newTestImage(t, 1024, nil)
	mustPush(t, s, "team-a/app", "a", img)
	mustPush(t, s, "team-a/app", "b", img)
	if code, body := pushImage(t, s, "team-a/app", "c", img); code != http.StatusForbidden || !strings.Contains(body, "2 tags of 2 allowed") {
		t.Errorf("third tag in team-a/app: %d %s, want the repository's limit", code, body)
	}
	mustPush(t, s, "team-a/app", "a", newTestImage(t, 1024, nil)) // a move adds no tag
	mustPush(t, s, "team-a/other", "a", img)
	if code, body := pushImage(t, s, "team-a/other", "b", img); code != http.StatusForbidden || !strings.Contains(body, "3 tags of 3 allowed") {
		t.Errorf("fourth tag in team-a/: %d %s, want the namespace's limit", code, body)
	}
	if u := usage(t, s, p, "team-a/"); u.Tags != 3 {
		t.Errorf("team-a/ has %d tags, want 3", u.Tags)
	}
}

// TestQuotaConcurrentPushes: pushes racing through two replicas under one
// namespace cannot together pass its limit; as many as fit go through.
func TestQuotaConcurrentPushes(t *testing.T) {
	const pushes, fit = 12, 5
	imgs := make([]testImage, pushes)
	for i := range imgs {
		imgs[i] = newTestImage(t, 16<<10, nil)
	}
	var limit int64
	for _, img := range imgs[:fit] {
		limit += img.size
	}
	limit += imgs[0].size / 2 // room for five, not six
	p := mustParsePolicy(t, fmt.Sprintf("quotas:\n  - match: race/\n    maxBytes: %d\n", limit))
	cur := policy.NewCurrent(p)
	a := quotaStack(t, cur)
	b := a.Replica(t)
	// The blobs first, so that the manifests race alone.
	for i, img := range imgs {
		for _, blob := range img.blobs {
			mustStatus(t, a, "POST", fmt.Sprintf("/v2/race/r%d/blobs/uploads/?digest=%s", i, digest.FromBytes(blob)), nil, blob, http.StatusCreated)
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, pushes)
	for i, img := range imgs {
		s := []*Stack{a, b}[i%2]
		wg.Go(func() {
			resp, _ := call(t, s, "PUT", fmt.Sprintf("/v2/race/r%d/manifests/v1", i), map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, img.manifest)
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	var accepted int
	for i, c := range codes {
		switch c {
		case http.StatusCreated:
			accepted++
		case http.StatusForbidden:
		default:
			t.Errorf("push %d: status %d", i, c)
		}
	}
	u := usage(t, a, p, "race/")
	if accepted != fit || u.Bytes > limit {
		t.Errorf("%d pushes accepted storing %d bytes under a limit of %d; want %d accepted", accepted, u.Bytes, limit, fit)
	}
}

// TestQuotaWithCrane: a real client's push over the quota fails with the
// registry's DENIED message, and the image is not there.
func TestQuotaWithCrane(t *testing.T) {
	crane := testenv.Tool(t, "crane")
	p := mustParsePolicy(t, "quotas:\n  - match: cranes/\n    maxBytes: 100KiB\n")
	s := quotaStack(t, policy.NewCurrent(p))
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}
	run(t, env, crane, "append", "--insecure", "-f", layerTar(t, dir, "small", 10<<10), "-t", s.Addr+"/cranes/app:small")
	out, err := command(env, crane, "append", "--insecure", "-f", layerTar(t, dir, "big", 200<<10), "-t", s.Addr+"/cranes/app:big")
	if err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "quota of cranes/ exceeded") {
		t.Fatalf("crane push over the quota: err %v, output:\n%s", err, out)
	}
	mustStatus(t, s, "GET", "/v2/cranes/app/manifests/big", nil, nil, http.StatusNotFound)
	run(t, env, crane, "pull", "--insecure", s.Addr+"/cranes/app:small", filepath.Join(dir, "small.tar"))
	if _, err := os.Stat(filepath.Join(dir, "small.tar")); err != nil {
		t.Error(err)
	}
}

// command runs a client expected to fail, returning its combined output.
func command(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
