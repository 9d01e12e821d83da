// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/registry/httpapi"
)

// The pushes measured: benchPushers clients at once, each pushing whole
// images (a config and two layers of 32 KiB, each HEADed first, then
// uploaded with POST and PUT, then the manifest by tag) one after the
// other, for at least benchWindow.
const (
	benchPushers = 4
	benchWindow  = 30 * time.Second
)

// BenchmarkPushDuringGC measures how long whole image pushes take while
// garbage collection sweeps a registry of 110,000 blobs (see
// benchfixture_test.go), next to the same pushes without it. Each round
// adds 20,000 blobs of garbage, measures pushes for benchWindow without
// garbage collection, then while passes with the default grace run one
// after the other (the first removes the garbage), until at least one
// pass has finished and benchWindow has passed. The passes keep to the
// default duty cycle, or to GCBENCH_DUTY_CYCLE.
//
//	go test -run '^$' -bench PushDuringGC -benchtime 1x -timeout 60m -v ./gc
func BenchmarkPushDuringGC(b *testing.B) {
	reg := largeRegistry(b)
	ctx := context.Background()
	st, err := store.New(reg.db, reg.s3, store.Config{})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Store: st, Logger: zerolog.Nop()}))
	defer srv.Close()
	duty := DefaultDutyCycle
	if v := os.Getenv("GCBENCH_DUTY_CYCLE"); v != "" {
		if duty, err = strconv.ParseFloat(v, 64); err != nil {
			b.Fatalf("GCBENCH_DUTY_CYCLE: %v", err)
		}
	}
	b.Logf("passes at a duty cycle of %v", duty)
	var ratios []float64
	for round := range b.N {
		if err := reg.addGarbage(ctx, round); err != nil {
			b.Fatal(err)
		}
		base, _ := measurePushes(b, srv.URL, round, "base", benchWindow, nil)
		var passes []Summary
		withGC, window := measurePushes(b, srv.URL, round, "gc", benchWindow, func(ctx context.Context) bool {
			s, err := Run(ctx, Options{DB: reg.db, S3: reg.s3, Grace: DefaultGrace, UploadTTL: DefaultUploadTTL, Logger: zerolog.Nop(),
				DutyCycle: duty})
			if err != nil {
				b.Errorf("gc pass: %v", err)
				return false
			}
			passes = append(passes, s)
			return true
		})
		if len(passes) == 0 || passes[0].Count(KindBlob) != benchGarbageLinked+benchGarbageBare {
			b.Fatalf("the first pass removed %v, want the round's garbage", passes)
		}
		p50b, p99b := percentile(base, 50), percentile(base, 99)
		p50g, p99g := percentile(withGC, 50), percentile(withGC, 99)
		ratio := p99g.Seconds() / p99b.Seconds()
		ratios = append(ratios, ratio)
		b.Logf("round %d: %d pushes without gc: p50 %v, p99 %v; %d pushes in %v during %d passes: p50 %v, p99 %v; p99 ratio %.2f",
			round, len(base), p50b, p99b, len(withGC), window.Round(time.Second), len(passes), p50g, p99g, ratio)
		for i, p := range passes {
			b.Logf("  pass %d: %v (%v of it paused), listed %d objects, removed %d items (%d objects, %d bytes)",
				i+1, p.Duration.Round(time.Millisecond), p.Paused.Round(time.Millisecond), p.Listed, len(p.Removed), p.Objects(), p.Bytes())
		}
		b.ReportMetric(float64(p99b.Microseconds())/1000, "p99-ms-without-gc")
		b.ReportMetric(float64(p99g.Microseconds())/1000, "p99-ms-with-gc")
	}
	b.ReportMetric(slices.Max(ratios), "worst-p99-ratio")
}

// measurePushes pushes images from benchPushers clients for at least
// window and returns every push's duration. With gcPass, passes run one
// after the other meanwhile, and the pushes go on until one has finished;
// only pushes that began and ended while passes ran count.
func measurePushes(b *testing.B, base string, round int, label string, window time.Duration, gcPass func(context.Context) bool) ([]time.Duration, time.Duration) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	gcDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(gcDone)
		if gcPass == nil {
			return
		}
		for ok := true; ok && ctx.Err() == nil; {
			ok = gcPass(ctx)
			if time.Since(start) >= window {
				return
			}
		}
	}()
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	for c := range benchPushers {
		wg.Go(func() {
			client := &http.Client{Timeout: time.Minute}
			for n := 0; ; n++ {
				if gcPass == nil && time.Since(start) >= window {
					return
				}
				select {
				case <-gcDone:
					if gcPass != nil {
						return
					}
				default:
				}
				d, err := benchPush(client, base, fmt.Sprintf("bench/repo-%03d", (c*31+n)%benchRepos),
					fmt.Sprintf("%s-%d-%d-%d", label, round, c, n))
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				took = append(took, d)
				mu.Unlock()
			}
		})
	}
	if gcPass == nil {
		// The clients stop by themselves once window has passed.
		wg.Wait()
		return took, time.Since(start)
	}
	<-gcDone
	elapsed := time.Since(start)
	mu.Lock()
	measured := slices.Clone(took) // pushes that ended while passes ran
	mu.Unlock()
	stop()
	wg.Wait()
	return measured, elapsed
}

// benchPush pushes an image of fresh random layers as a client does and
// returns how long it took.
func benchPush(client *http.Client, base, repo, tag string) (time.Duration, error) {
	start := time.Now()
	var descs []ocispec.Descriptor
	for i := range 3 {
		content := make([]byte, 32<<10)
		rand.Read(content)
		mediaType := ocispec.MediaTypeImageLayer
		if i == 0 {
			content, mediaType = []byte(fmt.Sprintf(`{"tag":%q}`, tag)), ocispec.MediaTypeImageConfig
		}
		d := digest.FromBytes(content)
		descs = append(descs, ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))})
		if code, err := call(client, "HEAD", base+"/v2/"+repo+"/blobs/"+d.String(), "", nil, nil); err != nil || code != http.StatusNotFound {
			return 0, fmt.Errorf("HEAD: %d %v", code, err)
		}
		header := http.Header{}
		if code, err := call(client, "POST", base+"/v2/"+repo+"/blobs/uploads/", "", nil, header); err != nil || code != http.StatusAccepted {
			return 0, fmt.Errorf("POST: %d %v", code, err)
		}
		if code, err := call(client, "PUT", base+header.Get("Location")+"?digest="+d.String(), "application/octet-stream", content, nil); err != nil || code != http.StatusCreated {
			return 0, fmt.Errorf("PUT blob: %d %v", code, err)
		}
	}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: descs[0], Layers: descs[1:]})
	if code, err := call(client, "PUT", base+"/v2/"+repo+"/manifests/"+tag, ocispec.MediaTypeImageManifest, m, nil); err != nil || code != http.StatusCreated {
		return 0, fmt.Errorf("PUT manifest: %d %v", code, err)
	}
	return time.Since(start), nil
}

// call sends a request and returns its status, copying the response
// headers into header when it is not nil.
func call(client *http.Client, method, url, contentType string, body []byte, header http.Header) (int, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	for k, v := range resp.Header {
		if header != nil {
			header[k] = v
		}
	}
	return resp.StatusCode, nil
}

// percentile is the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)]
}
