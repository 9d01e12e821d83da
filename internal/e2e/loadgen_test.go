// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// loadgen pushes and pulls images the way registry clients do, from many
// goroutines at once, and keeps the books: every request's latency and
// outcome, and every image it pushed so they can all be pulled again
// afterwards.
//
// It never retries. A status other than the one the spec promises, a
// transport error, or a request the HTTP client itself had to send again
// (a kept-alive connection that died under it) is a failure: the point is
// that a rolling restart costs clients nothing at all.
type loadgen struct {
	base   string // http://host:port of the balancer
	client *http.Client
	seq    atomic.Int64

	mu       sync.Mutex
	samples  []sample
	failures []failure
	images   []image
	windows  [][2]time.Time // restarts in progress
}

// sample is one request's outcome.
type sample struct {
	start time.Time
	dur   time.Duration
	ok    bool
}

// failure is a request that did not get the answer it should have.
type failure struct {
	at        time.Time
	requestID string
	what      string
}

// blobRef is a pushed blob whose bytes can be made again from its seed.
type blobRef struct {
	seed   uint64
	size   int
	digest digest.Digest
}

// image is a pushed and tagged image.
type image struct {
	repo, tag string
	manifest  []byte
	digest    digest.Digest
	config    []byte
	layers    []blobRef
}

func newLoadgen(base string, clients int) *loadgen {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients
	return &loadgen{base: base, client: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// blobBytes makes the bytes of a blob from its seed, so that the test can
// check every pushed layer afterwards without keeping them all in memory.
func blobBytes(seed uint64, size int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	rand.NewChaCha8(key).Read(b)
	return b
}

// do sends one request and checks its status. The request id travels to
// the registry's log, so a failure can be found there.
func (l *loadgen) do(method, path string, header http.Header, body []byte, want int) (*http.Response, []byte, bool) {
	id := fmt.Sprintf("load-%07d", l.seq.Add(1))
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, l.base+path, rd)
	if err != nil {
		panic(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("X-Request-Id", id)
	// A second connection for one request means the transport resent it:
	// that is a client-side retry, which this generator must not hide.
	var conns atomic.Int32
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { conns.Add(1) },
	}))

	start := time.Now()
	resp, err := l.client.Do(req)
	var got []byte
	if err == nil {
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	dur := time.Since(start)

	var problem string
	switch {
	case err != nil:
		problem = err.Error()
	case resp.StatusCode != want:
		problem = fmt.Sprintf("status %d, want %d: %.300s", resp.StatusCode, want, got)
	case conns.Load() > 1:
		problem = fmt.Sprintf("the HTTP client sent the request %d times", conns.Load())
	}
	l.mu.Lock()
	l.samples = append(l.samples, sample{start: start, dur: dur, ok: problem == ""})
	if problem != "" {
		l.failures = append(l.failures, failure{at: start, requestID: id, what: fmt.Sprintf("%s %s: %s", method, path, problem)})
	}
	l.mu.Unlock()
	return resp, got, problem == ""
}

// fail records a failure that is not one request's status, such as a
// pulled blob whose digest is wrong.
func (l *loadgen) fail(format string, args ...any) {
	l.mu.Lock()
	l.failures = append(l.failures, failure{at: time.Now(), what: fmt.Sprintf(format, args...)})
	l.mu.Unlock()
}

// restart records a window in which a replica was being replaced.
func (l *loadgen) restart(from, to time.Time) {
	l.mu.Lock()
	l.windows = append(l.windows, [2]time.Time{from, to})
	l.mu.Unlock()
}

// run pushes and pulls images from clients goroutines until ctx ends;
// each finishes the image it is on, so stopping fails nothing.
func (l *loadgen) run(ctx context.Context, clients int) {
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			for n := 0; ctx.Err() == nil; n++ {
				// Clients share repositories, as teams do.
				repo := fmt.Sprintf("load/app%d", c%3)
				if img, ok := l.pushImage(rng, repo, fmt.Sprintf("c%d-%d", c, n)); ok {
					if l.pullImage(img, false) {
						l.mu.Lock()
						l.images = append(l.images, img)
						l.mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
}

// pushImage pushes one image: layers in chunks, a config in one POST, the
// manifest by tag.
func (l *loadgen) pushImage(rng *rand.Rand, repo, tag string) (image, bool) {
	img := image{repo: repo, tag: tag}
	type descriptor struct {
		MediaType string        `json:"mediaType"`
		Digest    digest.Digest `json:"digest"`
		Size      int           `json:"size"`
	}
	var layers []descriptor
	var diffIDs []digest.Digest
	for range 1 + rng.IntN(2) {
		size := 1 + rng.IntN(1<<20)
		if rng.IntN(3) == 0 {
			// Over one S3 part (5 MiB), so multipart uploads happen
			// and parts are written by different replicas.
			size = 5<<20 + rng.IntN(3<<20)
		}
		b := blobRef{seed: rng.Uint64(), size: size}
		data := blobBytes(b.seed, b.size)
		b.digest = digest.FromBytes(data)
		if !l.pushChunked(rng, repo, data, b.digest) {
			return img, false
		}
		img.layers = append(img.layers, b)
		layers = append(layers, descriptor{"application/vnd.oci.image.layer.v1.tar", b.digest, b.size})
		diffIDs = append(diffIDs, b.digest)
	}

	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": map[string]string{"tag": tag}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	img.config = config
	cd := digest.FromBytes(config)
	if _, _, ok := l.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+cd.String(),
		http.Header{"Content-Type": {"application/octet-stream"}}, config, http.StatusCreated); !ok {
		return img, false
	}

	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{"application/vnd.oci.image.config.v1+json", cd, len(config)},
		"layers":        layers,
	})
	img.digest = digest.FromBytes(img.manifest)
	resp, _, ok := l.do("PUT", "/v2/"+repo+"/manifests/"+tag,
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, img.manifest, http.StatusCreated)
	if !ok {
		return img, false
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != img.digest.String() {
		l.fail("PUT %s:%s: Docker-Content-Digest %q, want %s", repo, tag, got, img.digest)
		return img, false
	}
	return img, true
}

// pushChunked uploads data as a session: POST, PATCH chunks of random
// sizes with Content-Range, and a PUT that sometimes carries the last
// chunk. Through the balancer, each request may land on another replica.
func (l *loadgen) pushChunked(rng *rand.Rand, repo string, data []byte, d digest.Digest) bool {
	resp, _, ok := l.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted)
	if !ok {
		return false
	}
	loc := resp.Header.Get("Location")
	off := 0
	chunks := 2 + rng.IntN(3)
	lastInPut := rng.IntN(2) == 0
	for i := range chunks {
		n := (len(data) - off) / (chunks - i)
		if i < chunks-1 {
			n = max(1, n/2+rng.IntN(n+1))
		}
		n = min(n, len(data)-off)
		if n == 0 {
			break
		}
		h := http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", off, off+n-1)},
		}
		if i == chunks-1 && lastInPut {
			resp, _, ok := l.do("PUT", loc+"?digest="+d.String(), h, data[off:off+n], http.StatusCreated)
			return ok && l.checkCreated(resp, d)
		}
		resp, _, ok := l.do("PATCH", loc, h, data[off:off+n], http.StatusAccepted)
		if !ok {
			return false
		}
		off += n
		if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", off-1); got != want {
			l.fail("PATCH %s: Range %q, want %q", loc, got, want)
			return false
		}
		loc = resp.Header.Get("Location")
	}
	resp, _, ok = l.do("PUT", loc+"?digest="+d.String(), nil, nil, http.StatusCreated)
	return ok && l.checkCreated(resp, d)
}

func (l *loadgen) checkCreated(resp *http.Response, d digest.Digest) bool {
	if got := resp.Header.Get("Docker-Content-Digest"); got != d.String() {
		l.fail("upload of %s: Docker-Content-Digest %q", d, got)
		return false
	}
	return true
}

// pullImage pulls an image by tag and by digest and checks every blob by
// digest; full also compares each layer's bytes with what was pushed.
func (l *loadgen) pullImage(img image, full bool) bool {
	accept := http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}
	for _, ref := range []string{img.tag, img.digest.String()} {
		resp, body, ok := l.do("GET", "/v2/"+img.repo+"/manifests/"+ref, accept, nil, http.StatusOK)
		if !ok {
			return false
		}
		if !bytes.Equal(body, img.manifest) || resp.Header.Get("Docker-Content-Digest") != img.digest.String() {
			l.fail("GET %s:%s: manifest differs from the one pushed (digest header %q)", img.repo, ref, resp.Header.Get("Docker-Content-Digest"))
			return false
		}
	}
	_, body, ok := l.do("GET", "/v2/"+img.repo+"/blobs/"+digest.FromBytes(img.config).String(), nil, nil, http.StatusOK)
	if !ok {
		return false
	}
	if !bytes.Equal(body, img.config) {
		l.fail("%s:%s: config blob differs", img.repo, img.tag)
		return false
	}
	for _, b := range img.layers {
		_, body, ok := l.do("GET", "/v2/"+img.repo+"/blobs/"+b.digest.String(), nil, nil, http.StatusOK)
		if !ok {
			return false
		}
		if got := digest.FromBytes(body); got != b.digest {
			l.fail("%s:%s: layer %s pulled with digest %s", img.repo, img.tag, b.digest, got)
			return false
		}
		if full && !bytes.Equal(body, blobBytes(b.seed, b.size)) {
			l.fail("%s:%s: layer %s differs from the bytes pushed", img.repo, img.tag, b.digest)
			return false
		}
	}
	return true
}

// pullAll pulls every image pushed, from workers goroutines, comparing
// every byte.
func (l *loadgen) pullAll(workers int) {
	l.mu.Lock()
	imgs := slices.Clone(l.images)
	l.mu.Unlock()
	work := make(chan image)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for img := range work {
				l.pullImage(img, true)
			}
		}()
	}
	for _, img := range imgs {
		work <- img
	}
	close(work)
	wg.Wait()
}

// figures summarizes the requests: how many, how many failed, and latency
// percentiles overall and for the requests that overlapped a restart.
type figures struct {
	requests, failures, duringRestarts int
	p50, p99, max, p99Restarts         time.Duration
}

func (f figures) String() string {
	s := fmt.Sprintf("%d requests, %d failed; latency p50 %v, p99 %v, max %v",
		f.requests, f.failures, f.p50.Round(time.Millisecond), f.p99.Round(time.Millisecond), f.max.Round(time.Millisecond))
	if f.duringRestarts > 0 {
		s += fmt.Sprintf("; %d requests overlapped a restart, their p99 %v", f.duringRestarts, f.p99Restarts.Round(time.Millisecond))
	}
	return s
}

func (l *loadgen) figures() figures {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all, restarting []time.Duration
	f := figures{requests: len(l.samples), failures: len(l.failures)}
	for _, s := range l.samples {
		all = append(all, s.dur)
		end := s.start.Add(s.dur)
		for _, w := range l.windows {
			if s.start.Before(w[1]) && end.After(w[0]) {
				restarting = append(restarting, s.dur)
				break
			}
		}
	}
	f.duringRestarts = len(restarting)
	f.p50, f.p99, f.max = percentile(all, 50), percentile(all, 99), percentile(all, 100)
	f.p99Restarts = percentile(restarting, 99)
	return f
}

// percentile is the nearest-rank percentile p of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	i := (p*len(ds)+99)/100 - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// report lists the failures with what the replicas logged about them.
func (l *loadgen) report(t *testing.T, c *cluster) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	var b strings.Builder
	for i, f := range l.failures {
		if i == 30 {
			fmt.Fprintf(&b, "... and %d more\n", len(l.failures)-i)
			break
		}
		fmt.Fprintf(&b, "%s %s %s\n", f.at.Format("15:04:05.000"), f.requestID, f.what)
		ids = append(ids, f.requestID)
	}
	t.Errorf("%d failed requests:\n%s\nwhat the replicas logged about them:\n%s", len(l.failures), b.String(), c.grepLogs(ids))
}
