// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/s3store"
)

// upstreamTap sits between the cache and its upstream: it counts blob
// GETs by digest, can slow one digest down, can cut one digest's body in
// the middle, once, and can change the last byte of one digest's body.
type upstreamTap struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	gets  map[string]int
	slow  string
	cut   string
	lie   string
}

func (u *upstreamTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := ""
	if i := strings.Index(r.URL.Path, "/blobs/"); i >= 0 && r.Method == http.MethodGet {
		d = r.URL.Path[i+len("/blobs/"):]
	}
	u.mu.Lock()
	if d != "" {
		u.gets[d]++
	}
	slow, cut, lie := d != "" && d == u.slow, d != "" && d == u.cut, d != "" && d == u.lie
	if cut {
		u.cut = ""
	}
	u.mu.Unlock()
	if slow {
		time.Sleep(500 * time.Millisecond)
	}
	if cut {
		w = &cuttingWriter{ResponseWriter: w}
	}
	if lie {
		w = &lyingWriter{ResponseWriter: w}
	}
	u.proxy.ServeHTTP(w, r)
}

func (u *upstreamTap) count(d digest.Digest) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets[d.String()]
}

// cuttingWriter aborts the response once half of it is written.
type cuttingWriter struct {
	http.ResponseWriter
	written int64
}

func (c *cuttingWriter) Write(p []byte) (int, error) {
	total := c.Header().Get("Content-Length")
	var size int64
	fmt.Sscan(total, &size)
	if c.written+int64(len(p)) > size/2 {
		n, _ := c.ResponseWriter.Write(p[:max(size/2-c.written, 0)])
		c.ResponseWriter.(http.Flusher).Flush()
		c.written += int64(n)
		panic(http.ErrAbortHandler)
	}
	n, err := c.ResponseWriter.Write(p)
	c.written += int64(n)
	return n, err
}

// lyingWriter changes the last byte of the body: the blob arrives with
// its length and the digest asked for, and other content.
type lyingWriter struct {
	http.ResponseWriter
	written int64
}

func (l *lyingWriter) Write(p []byte) (int, error) {
	var size int64
	fmt.Sscan(l.Header().Get("Content-Length"), &size)
	if len(p) > 0 && l.written+int64(len(p)) == size {
		p = bytes.Clone(p)
		p[len(p)-1] ^= 1
	}
	n, err := l.ResponseWriter.Write(p)
	l.written += int64(n)
	return n, err
}

// proxyFixture is an upstream registry with authentication, a tap and a
// fault proxy in front of it, and a pull-through cache of two replicas.
type proxyFixture struct {
	upstream *Stack
	upTok    func(repo string) string
	tap      *upstreamTap
	fault    *testenv.FaultProxy
	cache    [2]*Stack
}

func newProxyFixture(t *testing.T) *proxyFixture {
	f := newAuthFixture(t)
	up := StartAuth(t, f.gate)
	target, _ := url.Parse("http://" + up.Addr)
	tap := &upstreamTap{proxy: httputil.NewSingleHostReverseProxy(target), gets: map[string]int{}}
	tapSrv := httptest.NewServer(tap)
	t.Cleanup(tapSrv.Close)
	fault := testenv.NewFaultProxy(t, strings.TrimPrefix(tapSrv.URL, "http://"))
	t.Setenv("HUB_CREDENTIALS", "alice:"+alicePass)
	cur := policy.NewCurrent(mustParsePolicy(t, fmt.Sprintf(`
remotes:
  - prefix: "hub/"
    url: http://%s
    credentialsEnv: HUB_CREDENTIALS
    tagRecheck: 2s
virtual:
  - name: "v/"
    sources: ["local/", "hub/public/"]
`, fault.Addr())))
	a := StartPolicy(t, cur.Get)
	pf := &proxyFixture{upstream: up, tap: tap, fault: fault, cache: [2]*Stack{a, a.Replica(t)}}
	pf.upTok = func(repo string) string {
		_, tok := getToken(t, up, "alice", alicePass, "repository:"+repo+":pull,push")
		return tok
	}
	return pf
}

// blobGet reads a blob through a cache replica.
func blobGet(s *Stack, repo string, d digest.Digest) ([]byte, error) {
	resp, err := http.Get("http://" + s.Addr + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, err
}

// TestProxyPullThrough: a cold pull through the cache comes from
// upstream (token authentication and all) and is stored; a warm pull on
// the other replica with upstream down is served from the cache; a tag
// moved upstream is seen once the recheck interval passed; pushing into
// the remote is refused; a virtual name reads its sources in order.
func TestProxyPullThrough(t *testing.T) {
	ctx := context.Background()
	pf := newProxyFixture(t)
	a, b := pf.cache[0], pf.cache[1]
	img := newTestImage(t, 64<<10, nil)
	mustPushAs(t, pf.upstream, pf.upTok("public/app"), "public/app", img)
	crane := testenv.Tool(t, "crane")
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}

	// Cold: from upstream, then an ordinary manifest of hub/public/app.
	if got := strings.TrimSpace(run(t, env, crane, "digest", "--insecure", a.Addr+"/hub/public/app:v1")); got != img.digest.String() {
		t.Fatalf("cold pull digest %s, want %s", got, img.digest)
	}
	run(t, env, crane, "pull", "--insecure", a.Addr+"/hub/public/app:v1", filepath.Join(dir, "cold.tar"))
	if n := pf.tap.count(digest.FromBytes(img.blobs[1])); n != 1 {
		t.Errorf("the layer was fetched from upstream %d times, want 1", n)
	}
	// The replica stores the last blob after its client has all of it.
	eventually(t, 10*time.Second, "the pulled image to become an ordinary, tagged manifest of the cache", func() bool {
		_, err := a.Store.GetManifest(ctx, "hub/public/app", "v1", "")
		return err == nil
	})

	// Warm, on the other replica, with upstream down.
	pf.fault.Cut()
	time.Sleep(2100 * time.Millisecond) // past the recheck: the HEAD fails, the cache serves
	run(t, env, crane, "pull", "--insecure", b.Addr+"/hub/public/app:v1", filepath.Join(dir, "warm.tar"))
	pf.fault.Restore()

	// A tag moved upstream is seen after the interval, not before.
	digestVia := func(s *Stack) string {
		return strings.TrimSpace(run(t, env, crane, "digest", "--insecure", s.Addr+"/hub/public/app:v1"))
	}
	digestVia(a) // upstream is asked now: the interval starts
	moved := newTestImage(t, 1024, nil)
	mustPushAs(t, pf.upstream, pf.upTok("public/app"), "public/app", moved)
	if got := digestVia(b); got != img.digest.String() {
		t.Errorf("within the interval the cache answers %s, want the cached %s", got, img.digest)
	}
	time.Sleep(2100 * time.Millisecond)
	if got := digestVia(b); got != moved.digest.String() {
		t.Errorf("after the interval the cache answers %s, want the moved %s", got, moved.digest)
	}

	// Pushing into the remote is refused.
	if out, err := command(env, crane, "append", "--insecure", "-f", layerTar(t, dir, "x", 128), "-t", a.Addr+"/hub/public/app:mine"); err == nil ||
		!strings.Contains(out, "pull-through cache") {
		t.Errorf("a push into the remote: %v\n%s", err, out)
	}

	// A virtual name: hub's until local has it, then local's.
	if got := strings.TrimSpace(run(t, env, crane, "digest", "--insecure", a.Addr+"/v/app:v1")); got != moved.digest.String() {
		t.Errorf("v/app:v1 before a local copy: %s, want hub's %s", got, moved.digest)
	}
	local := newTestImage(t, 512, nil)
	mustPush(t, a, "local/app", "v1", local)
	if got := strings.TrimSpace(run(t, env, crane, "digest", "--insecure", a.Addr+"/v/app:v1")); got != local.digest.String() {
		t.Errorf("v/app:v1 with a local copy: %s, want local's %s", got, local.digest)
	}
}

// TestProxyBlobFetchOnce: replicas pulling the same cold blob at once
// cause one upstream fetch; a blob cut off upstream in the middle leaves
// nothing stored, and the next pull stores it whole.
func TestProxyBlobFetchOnce(t *testing.T) {
	ctx := context.Background()
	pf := newProxyFixture(t)
	a, b := pf.cache[0], pf.cache[1]
	img := newTestImage(t, 2<<20, nil)
	mustPushAs(t, pf.upstream, pf.upTok("public/big"), "public/big", img)
	layer := digest.FromBytes(img.blobs[1])
	pf.tap.slow = layer.String()

	var wg sync.WaitGroup
	got := make([][]byte, 2)
	errs := make([]error, 2)
	for i, s := range []*Stack{a, b} {
		wg.Go(func() { got[i], errs[i] = blobGet(s, "hub/public/big", layer) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || digest.FromBytes(got[i]) != layer {
			t.Errorf("replica %d: %v, %d bytes", i, errs[i], len(got[i]))
		}
	}
	if n := pf.tap.count(layer); n != 1 {
		t.Errorf("two replicas pulling one cold blob fetched it from upstream %d times, want 1", n)
	}

	// Cut in the middle: nothing of it is stored.
	cutImg := newTestImage(t, 1<<20, nil)
	mustPushAs(t, pf.upstream, pf.upTok("public/cut"), "public/cut", cutImg)
	cutLayer := digest.FromBytes(cutImg.blobs[1])
	pf.tap.mu.Lock()
	pf.tap.cut = cutLayer.String()
	pf.tap.mu.Unlock()
	if b, err := blobGet(a, "hub/public/cut", cutLayer); err == nil && digest.FromBytes(b) == cutLayer {
		t.Fatalf("a blob cut upstream arrived whole")
	}
	time.Sleep(200 * time.Millisecond) // the replica finishes abandoning it
	if _, err := a.Store.StatBlob(ctx, "hub/public/cut", cutLayer); !errors.Is(err, registry.ErrBlobUnknown) {
		t.Errorf("after the cut the blob is linked: %v", err)
	}
	var rows int
	a.DB.QueryRow(ctx, `SELECT count(*) FROM blobs WHERE digest = $1`, cutLayer.String()).Scan(&rows)
	if _, err := a.S3.Stat(ctx, a.S3.Layout().BlobData(cutLayer)); rows != 0 || !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("after the cut: %d blob rows, object %v; want none", rows, err)
	}
	if b, err := blobGet(b, "hub/public/cut", cutLayer); err != nil || digest.FromBytes(b) != cutLayer {
		t.Errorf("the pull after the cut: %v", err)
	}
	eventually(t, 10*time.Second, "the pull after the cut to store the blob", func() bool {
		_, err := a.Store.StatBlob(ctx, "hub/public/cut", cutLayer)
		return err == nil
	})
}

// TestProxyIndex: pulling an index and all it lists through the cache
// makes every one of them an ordinary manifest, the index last.
func TestProxyIndex(t *testing.T) {
	ctx := context.Background()
	pf := newProxyFixture(t)
	a := pf.cache[0]
	x, y := newTestImage(t, 1024, nil), newTestImage(t, 1024, nil)
	tok := pf.upTok("public/multi")
	for _, img := range []testImage{x, y} {
		for _, bl := range img.blobs {
			call(t, pf.upstream, "POST", "/v2/public/multi/blobs/uploads/?digest="+digestOf(bl), map[string]string{"Authorization": "Bearer " + tok}, bl)
		}
		call(t, pf.upstream, "PUT", "/v2/public/multi/manifests/"+img.digest.String(),
			map[string]string{"Authorization": "Bearer " + tok, "Content-Type": ocispec.MediaTypeImageManifest}, img.manifest)
	}
	idx := newTestIndex(t, x, y)
	resp, body := call(t, pf.upstream, "PUT", "/v2/public/multi/manifests/v1",
		map[string]string{"Authorization": "Bearer " + tok, "Content-Type": ocispec.MediaTypeImageIndex}, idx.manifest)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upstream index: %d %s", resp.StatusCode, body)
	}
	mustStatus(t, a, "GET", "/v2/hub/public/multi/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageIndex}, nil, http.StatusOK)
	for _, img := range []testImage{x, y} {
		mustStatus(t, a, "GET", "/v2/hub/public/multi/manifests/"+img.digest.String(), map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil, http.StatusOK)
		for _, bl := range img.blobs {
			if got, err := blobGet(a, "hub/public/multi", digest.FromBytes(bl)); err != nil || string(got) != string(bl) {
				t.Fatalf("blob through the cache: %v", err)
			}
		}
	}
	eventually(t, 10*time.Second, "the index to become an ordinary manifest tagged v1", func() bool {
		m, err := a.Store.GetManifest(ctx, "hub/public/multi", "v1", "")
		return err == nil && m.Digest == idx.digest
	})
}

// TestProxyAgesOut: cached content is ordinary content, so a retention
// rule on the remote's prefix removes what was not used, and the next
// pull fetches it from upstream again.
func TestProxyAgesOut(t *testing.T) {
	ctx := context.Background()
	pf := newProxyFixture(t)
	a := pf.cache[0]
	img := newTestImage(t, 4096, nil)
	mustPushAs(t, pf.upstream, pf.upTok("public/old"), "public/old", img)
	mustStatus(t, a, "GET", "/v2/hub/public/old/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil, http.StatusOK)
	for _, bl := range img.blobs {
		if _, err := blobGet(a, "hub/public/old", digest.FromBytes(bl)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the image to be cached whole", func() bool {
		_, err := a.Store.GetManifest(ctx, "hub/public/old", "v1", "")
		return err == nil
	})
	if _, err := a.DB.Exec(ctx, `UPDATE tags SET updated_at = now() - interval '60 days'`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DB.Exec(ctx, `UPDATE manifests SET created_at = now() - interval '60 days'`); err != nil {
		t.Fatal(err)
	}
	p := mustParsePolicy(t, "retention:\n  - repositories: \"hub/**\"\n    keepTags:\n      - pushedWithin: 720h\n    deleteUntagged: true\n")
	plans, err := policy.PlanRetention(ctx, a.Store, p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if tags, manifests := policy.Counts(plans); tags != 1 || manifests != 1 {
		t.Fatalf("retention plans %d tags and %d manifests of the cache, want 1 and 1", tags, manifests)
	}
	if _, err := policy.ApplyRetention(ctx, a.Store, plans); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // past the tag recheck
	resp, body := call(t, a, "GET", "/v2/hub/public/old/manifests/v1", map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil)
	if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != img.digest {
		t.Fatalf("the pull after ageing out: %d", resp.StatusCode)
	}
	// Cached again: an ordinary manifest once more.
	eventually(t, 10*time.Second, "the image to be cached again", func() bool {
		_, err := a.Store.GetManifest(ctx, "hub/public/old", "v1", "")
		return err == nil
	})
}

// TestProxyLyingUpstream: an upstream that sends other bytes than the
// digest it was asked for (same length, the last byte changed) never gets
// them to the client whole: a GET through the cache fails midway, so does
// a range ending at the changed byte, and nothing is stored. An honest
// upstream's blob then streams whole, and a range of a blob not cached yet
// is served and stores the blob.
func TestProxyLyingUpstream(t *testing.T) {
	ctx := context.Background()
	pf := newProxyFixture(t)
	a := pf.cache[0]
	img := newTestImage(t, 1<<20, nil)
	mustPushAs(t, pf.upstream, pf.upTok("public/lie"), "public/lie", img)
	layer := digest.FromBytes(img.blobs[1])
	pf.tap.mu.Lock()
	pf.tap.lie = layer.String()
	pf.tap.mu.Unlock()

	got, err := blobGet(a, "hub/public/lie", layer)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) >= len(img.blobs[1]) {
		t.Errorf("a lying upstream's blob through the cache: %d of %d bytes, %v; want a transfer cut short (unexpected EOF)",
			len(got), len(img.blobs[1]), err)
	}
	got, err = rangeGet(a, "hub/public/lie", layer, "bytes=-100")
	if err == nil || bytes.Equal(got, img.blobs[1][len(img.blobs[1])-100:]) || len(got) == 100 {
		t.Errorf("a range of a lying upstream's blob: %d bytes, %v; want a failed transfer", len(got), err)
	}
	time.Sleep(200 * time.Millisecond) // the replica finishes abandoning it
	if _, err := a.Store.StatBlob(ctx, "hub/public/lie", layer); !errors.Is(err, registry.ErrBlobUnknown) {
		t.Errorf("a lying upstream's blob is linked: %v", err)
	}

	// Honest again: the blob streams whole and is stored.
	pf.tap.mu.Lock()
	pf.tap.lie = ""
	pf.tap.mu.Unlock()
	if got, err := blobGet(a, "hub/public/lie", layer); err != nil || digest.FromBytes(got) != layer {
		t.Errorf("an honest upstream's blob: %d bytes, %v", len(got), err)
	}
	eventually(t, 10*time.Second, "the honest blob to be stored", func() bool {
		_, err := a.Store.StatBlob(ctx, "hub/public/lie", layer)
		return err == nil
	})
	// A range of a blob not cached yet.
	config := img.blobs[0]
	if got, err := rangeGet(a, "hub/public/lie", digest.FromBytes(config), "bytes=2-9"); err != nil || !bytes.Equal(got, config[2:10]) {
		t.Errorf("a range of an honest upstream's blob: %q, %v; want %q", got, err, config[2:10])
	}
	eventually(t, 10*time.Second, "the ranged blob to be stored", func() bool {
		_, err := a.Store.StatBlob(ctx, "hub/public/lie", digest.FromBytes(config))
		return err == nil
	})
}

// rangeGet reads part of a blob through a cache replica.
func rangeGet(s *Stack, repo string, d digest.Digest, rng string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr+"/v2/"+repo+"/blobs/"+d.String(), nil)
	req.Header.Set("Range", rng)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusPartialContent {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, err
}

// TestProxyUnavailableMessage: with upstream down and nothing cached, the
// client's 503 names the remote by its prefix and not the upstream's URL
// or what the connection failed with.
func TestProxyUnavailableMessage(t *testing.T) {
	pf := newProxyFixture(t)
	a := pf.cache[0]
	pf.fault.Cut()
	for _, path := range []string{"/v2/hub/public/none/manifests/v1", "/v2/hub/public/none/blobs/" + digest.FromString("x").String()} {
		resp, body := call(t, a, "GET", path, nil, nil)
		msg := string(body)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(msg, "upstream registry unavailable: remote hub/") {
			t.Errorf("GET %s with upstream down: %d %s; want 503 naming remote hub/", path, resp.StatusCode, msg)
		}
		for _, leak := range []string{pf.fault.Addr(), "http://", "127.0.0.1", "connect"} {
			if strings.Contains(msg, leak) {
				t.Errorf("GET %s: the 503 says %q: %s", path, leak, msg)
			}
		}
	}
}
