// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// The outage tests put a TCP proxy between a running replica (the real
// binary, with its real connection settings) and one dependency, cut it
// for a few seconds and bring it back. Required: during the cut, requests
// that need the dependency fail fast with 503 UNAVAILABLE and /readyz
// answers 503; afterwards everything works again with no restart, and
// nothing written before the cut is lost.

// fastFail bounds how long one request may take to fail during a cut: the
// connect timeout to PostgreSQL is 5s, S3's retries wait 1.5s at most.
const fastFail = 8 * time.Second

// outageSetup starts a cluster whose replica reaches the dependency named
// by envKey (REGISTRY_DATABASE_URL or REGISTRY_S3_ENDPOINT) through a
// fault proxy, and returns a client of the replica, the proxy, and the
// cluster, whose further replicas go through the same proxy. env adds
// KEY=VALUE settings to the replicas' environment.
func outageSetup(t *testing.T, envKey string, env ...string) (*outageClient, *testenv.FaultProxy, *cluster) {
	t.Helper()
	c := newCluster(t)
	var proxy *testenv.FaultProxy
	for i, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		if k != envKey {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			t.Fatal(err)
		}
		proxy = testenv.NewFaultProxy(t, u.Host)
		u.Host = proxy.Addr()
		c.env[i] = k + "=" + u.String()
	}
	if proxy == nil {
		t.Fatalf("%s is not in the cluster's environment", envKey)
	}
	c.env = append(c.env, env...)
	r := c.startReplica(t, "r1", buildRegistry(t, false), testenv.FreeAddr(t))
	return &outageClient{t: t, r: r, http: &http.Client{Timeout: time.Minute}}, proxy, c
}

// outageClient sends one request and measures it.
type outageClient struct {
	t    *testing.T
	r    *replica
	http *http.Client
	// slowest is the longest request seen while a dependency was cut.
	slowest time.Duration
	failed  int
}

type answer struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (o *outageClient) do(method, path string, header map[string]string, body []byte) answer {
	o.t.Helper()
	req, err := http.NewRequest(method, "http://"+o.r.addr+path, bytes.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := o.http.Do(req)
	if err != nil {
		o.t.Fatalf("%s %s: %v (after %v)", method, path, err, time.Since(start))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		o.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b, took: time.Since(start)}
}

// want sends a request and requires status; a 503 must also be fast and
// say UNAVAILABLE (but for /readyz, which answers in plain text).
func (o *outageClient) want(status int, method, path string, header map[string]string, body []byte) answer {
	o.t.Helper()
	a := o.do(method, path, header, body)
	if a.status != status {
		o.t.Errorf("%s %s: %d %s, want %d", method, path, a.status, a.body, status)
		o.failed++
	}
	if a.status == http.StatusServiceUnavailable {
		o.slowest = max(o.slowest, a.took)
		if a.took > fastFail {
			o.t.Errorf("%s %s took %v to fail, want under %v", method, path, a.took, fastFail)
		}
		if method != "HEAD" && path != "/readyz" && !bytes.Contains(a.body, []byte(`"UNAVAILABLE"`)) {
			o.t.Errorf("%s %s: 503 body %s lacks UNAVAILABLE", method, path, a.body)
		}
	}
	return a
}

// waitReady polls /readyz until it answers 200 again, and returns how
// long that took.
func (o *outageClient) waitReady(timeout time.Duration) time.Duration {
	o.t.Helper()
	start := time.Now()
	for o.do("GET", "/readyz", nil, nil).status != http.StatusOK {
		if time.Since(start) > timeout {
			o.t.Fatalf("/readyz still failing %v after the dependency came back", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// pushed is a small image pushed before a cut.
type pushedImage struct {
	repo, tag string
	layer     []byte
	layerD    digest.Digest
	manifest  []byte
	manD      digest.Digest
}

// push uploads a config, a layer and a manifest under tag, monolithically.
func (o *outageClient) push(repo, tag, seed string) pushedImage {
	o.t.Helper()
	cfg := []byte(`{"seed":"` + seed + `"}`)
	layer := bytes.Repeat([]byte(seed), 4096)
	for _, b := range [][]byte{cfg, layer} {
		o.want(201, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(b).String(),
			map[string]string{"Content-Type": "application/octet-stream"}, b)
	}
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer)))
	o.want(201, "PUT", "/v2/"+repo+"/manifests/"+tag, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, man)
	return pushedImage{repo: repo, tag: tag, layer: layer, layerD: digest.FromBytes(layer), manifest: man, manD: digest.FromBytes(man)}
}

// pull requires img to be served byte-identical.
func (o *outageClient) pull(img pushedImage) {
	o.t.Helper()
	if a := o.want(200, "GET", "/v2/"+img.repo+"/manifests/"+img.tag, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil); a.status == 200 && !bytes.Equal(a.body, img.manifest) {
		o.t.Errorf("manifest %s:%s differs after the outage", img.repo, img.tag)
	}
	if a := o.want(200, "GET", "/v2/"+img.repo+"/blobs/"+img.layerD.String(), nil, nil); a.status == 200 && !bytes.Equal(a.body, img.layer) {
		o.t.Errorf("layer of %s:%s differs after the outage", img.repo, img.tag)
	}
}

// withDigest is the URL that closes the upload at loc with digest d.
func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + d.String()
}

// TestPostgresOutage cuts PostgreSQL off from a serving replica.
func TestPostgresOutage(t *testing.T) {
	o, proxy, _ := outageSetup(t, "REGISTRY_DATABASE_URL")
	r := o.r
	before := o.push("outage/pg", "before", "a")
	// An upload under way when the database goes.
	loc := startUpload(t, r, "outage/pg")
	chunk := bytes.Repeat([]byte("c"), 1000)
	o.want(202, "PATCH", loc, map[string]string{"Content-Range": "0-999", "Content-Type": "application/octet-stream"}, chunk)

	proxy.Cut()
	cutAt := time.Now()
	o.want(503, "GET", "/readyz", nil, nil)
	o.want(503, "GET", "/v2/outage/pg/manifests/before", nil, nil)
	o.want(503, "HEAD", "/v2/outage/pg/blobs/"+before.layerD.String(), nil, nil)
	o.want(503, "GET", "/v2/outage/pg/blobs/"+before.layerD.String(), nil, nil)
	o.want(503, "GET", "/v2/outage/pg/tags/list", nil, nil)
	o.want(503, "POST", "/v2/outage/pg/blobs/uploads/", nil, nil)
	o.want(503, "PATCH", loc, map[string]string{"Content-Range": "1000-1999", "Content-Type": "application/octet-stream"}, chunk)
	o.want(503, "PUT", "/v2/outage/pg/manifests/again", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, before.manifest)
	// Keep it cut for a few seconds, as a failover would.
	time.Sleep(time.Until(cutAt.Add(3 * time.Second)))
	o.want(503, "GET", "/v2/outage/pg/manifests/before", nil, nil)

	proxy.Restore()
	back := o.waitReady(30 * time.Second)

	// No restart: the same process serves everything again.
	o.pull(before)
	o.want(204, "GET", loc, nil, nil)
	a := o.do("GET", loc, nil, nil)
	if got := a.header.Get("Range"); got != "0-999" {
		t.Fatalf("the upload begun before the cut stands at %q, want 0-999 (the chunk sent during the cut changed nothing)", got)
	}
	full := append(append([]byte{}, chunk...), chunk...)
	o.want(202, "PATCH", loc, map[string]string{"Content-Range": "1000-1999", "Content-Type": "application/octet-stream"}, chunk)
	o.want(201, "PUT", withDigest(loc, digest.FromBytes(full)), nil, nil)
	after := o.push("outage/pg", "after", "b")
	o.pull(after)
	o.want(201, "PUT", "/v2/outage/pg/manifests/again", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, before.manifest)
	if o.failed > 0 {
		return
	}
	select {
	case <-r.exited:
		t.Fatalf("the replica exited during the outage: %v", r.waitErr)
	default:
	}
	t.Logf("PostgreSQL cut for %v: slowest 503 took %v; ready again %v after it came back",
		3*time.Second, o.slowest.Round(time.Millisecond), back.Round(time.Millisecond))
}

// TestS3Outage cuts S3 off from three serving replicas behind the shipped
// haproxy configuration. What the index alone answers (manifests, HEAD of
// blobs, tag lists) goes on being served, through the balancer too: the
// replicas stay ready, degraded, since taking them all out would refuse
// what they can still answer.
func TestS3Outage(t *testing.T) {
	o, proxy, c := outageSetup(t, "REGISTRY_S3_ENDPOINT")
	r := o.r
	bin := buildRegistry(t, false)
	r2 := c.startReplica(t, "r2", bin, testenv.FreeAddr(t))
	r3 := c.startReplica(t, "r3", bin, testenv.FreeAddr(t))
	lb := startBalancer(t, [3]string{r.addr, r2.addr, r3.addr})
	viaLB := &outageClient{t: t, r: &replica{name: "haproxy", addr: lb.addr}, http: o.http}
	before := o.push("outage/s3", "before", "a")
	loc := startUpload(t, r, "outage/s3")
	chunk := bytes.Repeat([]byte("c"), 1000)

	proxy.Cut()
	cutAt := time.Now()
	if a := o.want(200, "GET", "/readyz", nil, nil); !bytes.Contains(a.body, []byte("degraded: s3")) {
		t.Errorf("/readyz during the S3 cut says %q, want it to report s3 degraded", a.body)
	}
	if got := r.metric(t, "registry_degraded", `dependency="s3"`); got != 1 {
		t.Errorf("registry_degraded{dependency=s3} = %v during the cut, want 1", got)
	}
	o.want(503, "GET", "/v2/outage/s3/blobs/"+before.layerD.String(), nil, nil)
	layer2 := []byte("a layer pushed while S3 is away")
	o.want(503, "POST", "/v2/outage/s3/blobs/uploads/?digest="+digest.FromBytes(layer2).String(),
		map[string]string{"Content-Type": "application/octet-stream"}, layer2)
	// A small chunk is staged in PostgreSQL; closing the upload needs S3.
	o.want(202, "PATCH", loc, map[string]string{"Content-Range": "0-999", "Content-Type": "application/octet-stream"}, chunk)
	o.want(503, "PUT", withDigest(loc, digest.FromBytes(chunk)), nil, nil)
	// The index goes on answering.
	if a := o.want(200, "GET", "/v2/outage/s3/manifests/before", map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil); !bytes.Equal(a.body, before.manifest) {
		t.Errorf("manifest served during the S3 cut differs")
	}
	o.want(200, "HEAD", "/v2/outage/s3/blobs/"+before.layerD.String(), nil, nil)
	o.want(200, "GET", "/v2/outage/s3/tags/list", nil, nil)
	time.Sleep(time.Until(cutAt.Add(3 * time.Second)))
	o.want(503, "GET", "/v2/outage/s3/blobs/"+before.layerD.String(), nil, nil)
	// By now haproxy's health checks would have taken out a replica whose
	// /readyz failed (two checks, 1.25s); the index is still served.
	for _, name := range []string{"r1", "r2", "r3"} {
		if st, err := lb.serverStatus(name); err != nil || st != "UP" {
			t.Errorf("haproxy: %s is %q (%v) during the S3 cut, want UP", name, st, err)
		}
	}
	if a := viaLB.want(200, "GET", "/v2/outage/s3/manifests/before", map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil); !bytes.Equal(a.body, before.manifest) {
		t.Errorf("manifest served through haproxy during the S3 cut differs")
	}
	viaLB.want(200, "GET", "/v2/outage/s3/tags/list", nil, nil)
	viaLB.want(503, "GET", "/v2/outage/s3/blobs/"+before.layerD.String(), nil, nil)

	proxy.Restore()
	back := o.waitReady(30 * time.Second)

	o.pull(before)
	o.want(201, "PUT", withDigest(loc, digest.FromBytes(chunk)), nil, nil)
	if a := o.want(200, "GET", "/v2/outage/s3/blobs/"+digest.FromBytes(chunk).String(), nil, nil); !bytes.Equal(a.body, chunk) {
		t.Errorf("the upload finished after the cut serves other bytes")
	}
	o.want(201, "POST", "/v2/outage/s3/blobs/uploads/?digest="+digest.FromBytes(layer2).String(),
		map[string]string{"Content-Type": "application/octet-stream"}, layer2)
	o.pull(o.push("outage/s3", "after", "b"))
	if o.failed > 0 {
		return
	}
	t.Logf("S3 cut for %v: slowest 503 took %v; ready again %v after it came back",
		3*time.Second, o.slowest.Round(time.Millisecond), back.Round(time.Millisecond))
}

// TestS3Stall stalls S3 (connections accepted, no byte answered) under a
// serving replica: a push fails within the configured deadline with 503,
// holds no database transaction open afterwards, and works again once S3
// answers. Without deadlines it would hang for as long as the kernel kept
// the connection, holding the push's locks.
func TestS3Stall(t *testing.T) {
	o, proxy, c := outageSetup(t, "REGISTRY_S3_ENDPOINT",
		"REGISTRY_S3_RESPONSE_TIMEOUT=2s", "REGISTRY_S3_IDLE_TIMEOUT=2s")
	before := o.push("stall/app", "before", "a")
	loc := startUpload(t, o.r, "stall/app")

	proxy.Stall()
	layer := bytes.Repeat([]byte("s"), 64<<10)
	o.want(503, "POST", "/v2/stall/app/blobs/uploads/?digest="+digest.FromBytes(layer).String(),
		map[string]string{"Content-Type": "application/octet-stream"}, layer)
	o.want(503, "PUT", "/v2/stall/app/manifests/again", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, before.manifest)
	// A whole part goes to S3 as it arrives: the chunk's transaction is
	// the one a stall would hold open.
	part := bytes.Repeat([]byte("p"), 5<<20)
	o.want(503, "PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("0-%d", len(part)-1), "Content-Type": "application/octet-stream"}, part)
	o.want(503, "GET", "/v2/stall/app/blobs/"+before.layerD.String(), nil, nil)
	if n := openTransactions(t, c.dbURL); n != 0 {
		t.Errorf("%d database sessions idle in a transaction after the stalled requests failed, want 0", n)
	}

	proxy.Restore()
	o.waitReady(30 * time.Second)
	o.pull(before)
	o.want(201, "POST", "/v2/stall/app/blobs/uploads/?digest="+digest.FromBytes(layer).String(),
		map[string]string{"Content-Type": "application/octet-stream"}, layer)
	o.want(201, "PUT", "/v2/stall/app/manifests/again", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, before.manifest)
	t.Logf("S3 stalled: slowest 503 took %v", o.slowest.Round(time.Millisecond))
}

// openTransactions counts the sessions on the database at url, other
// than this one, that sit inside a transaction.
func openTransactions(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestS3StorageFull puts an S3 that refuses every write for want of room
// (507 XMinioStorageFull, as MinIO answers on a full disk) in front of a
// serving replica: pushes get 507 with a message saying storage is full,
// not 500 UNKNOWN; the metric counts them; reads go on; pushes work again
// once there is room.
func TestS3StorageFull(t *testing.T) {
	c := newCluster(t)
	var full atomic.Bool
	target, err := url.Parse(c.s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if full.Load() && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInsufficientStorage)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>XMinioStorageFull</Code>`+
				`<Message>Storage backend has reached its minimum free drive threshold.</Message></Error>`)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(s3.Close)
	for i, kv := range c.env {
		if strings.HasPrefix(kv, "REGISTRY_S3_ENDPOINT=") {
			c.env[i] = "REGISTRY_S3_ENDPOINT=" + s3.URL
		}
	}
	r := c.startReplica(t, "r1", buildRegistry(t, false), testenv.FreeAddr(t))
	o := &outageClient{t: t, r: r, http: &http.Client{Timeout: time.Minute}}
	before := o.push("full/app", "before", "a")
	// An upload holding a part in S3 when the storage fills up.
	loc := startUpload(t, r, "full/app")
	part := bytes.Repeat([]byte("p"), 5<<20)
	o.want(202, "PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("0-%d", len(part)-1), "Content-Type": "application/octet-stream"}, part)
	if n := len(c.multipartUploads(t)); n != 1 {
		t.Fatalf("%d multipart uploads in the bucket before the storage filled up, want 1", n)
	}

	full.Store(true)
	// Its commit is refused, and its part released at once, not at the
	// upload TTL: the space is what every push lacks.
	if a := o.do("PUT", withDigest(loc, digest.FromBytes(part)), nil, nil); a.status != http.StatusInsufficientStorage {
		t.Errorf("committing an upload while S3 is full: %d %s, want 507", a.status, a.body)
	}
	if n := len(c.multipartUploads(t)); n != 0 {
		t.Errorf("%d multipart uploads left in the bucket after the refused commit, want 0", n)
	}
	o.want(404, "GET", loc, nil, nil)
	layer := []byte("a layer pushed while S3 is full")
	for _, a := range []answer{
		o.do("POST", "/v2/full/app/blobs/uploads/?digest="+digest.FromBytes(layer).String(),
			map[string]string{"Content-Type": "application/octet-stream"}, layer),
		o.do("PUT", "/v2/full/app/manifests/again", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, before.manifest),
	} {
		if a.status != http.StatusInsufficientStorage || !bytes.Contains(a.body, []byte("storage is full")) {
			t.Errorf("a write while S3 is full: %d %s, want 507 saying storage is full", a.status, a.body)
		}
	}
	if n := r.metric(t, "registry_s3_storage_full_total"); n < 3 {
		t.Errorf("registry_s3_storage_full_total = %v, want at least 3", n)
	}
	o.pull(before)

	full.Store(false)
	o.want(201, "POST", "/v2/full/app/blobs/uploads/?digest="+digest.FromBytes(layer).String(),
		map[string]string{"Content-Type": "application/octet-stream"}, layer)
	o.pull(o.push("full/app", "after", "b"))
}
