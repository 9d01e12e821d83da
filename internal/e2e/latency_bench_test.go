// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
)

// s3Latency is the delay the benchmark puts on every S3 answer: real S3
// is milliseconds to tens of milliseconds from a replica, not the
// microseconds of a loopback server, and the round trips a push makes one
// after another are then what its client waits for.
const s3Latency = 25 * time.Millisecond

// BenchmarkSmallPushS3Latency pushes small images (a config and a layer
// by monolithic POST, one after the other, then the manifest under a tag)
// through a replica whose S3 answers s3Latency late, and reports the
// round trips to S3 each makes one after another (what its client waits
// for), and the S3 calls a push makes. docs/performance.md has the
// figures.
func BenchmarkSmallPushS3Latency(b *testing.B) {
	s3 := testenv.S3(b)
	u, err := url.Parse(s3.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	proxy := testenv.NewFaultProxy(b, u.Host)
	u.Host = proxy.Addr()
	s3.Endpoint = u.String()
	s := start(b, testenv.PostgresDatabase(b), s3, stackOptions{store: store.Config{AutoMount: true}})

	do := func(method, path, contentType string, body []byte) time.Duration {
		req, err := http.NewRequest(method, "http://"+s.Addr+path, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		return time.Since(start)
	}
	// Each iteration pushes one image with the latency and one without:
	// the difference, in latencies, is the round trips made one after
	// another, whatever the machine's own speed.
	push := func(latency time.Duration) (blobs, manifest time.Duration) {
		proxy.SetLatency(latency)
		img := newTestImage(b, 4096, nil)
		for _, blob := range img.blobs {
			blobs += do("POST", "/v2/latency/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), "application/octet-stream", blob)
		}
		return blobs, do("PUT", "/v2/latency/app/manifests/v1", ocispec.MediaTypeImageManifest, img.manifest)
	}
	var blobs, manifests time.Duration
	calls := s3Calls(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bl, m := push(s3Latency)
		blobs, manifests = blobs+bl, manifests+m
		bl, m = push(0)
		blobs, manifests = blobs-bl, manifests-m
	}
	b.StopTimer()
	after := s3Calls(b)
	for op, n := range after {
		if d := n - calls[op]; d > 0 {
			b.ReportMetric(d/float64(2*b.N), op+"/push")
		}
	}
	rtts := func(d time.Duration, n int) float64 { return float64(d) / float64(n) / float64(s3Latency) }
	b.ReportMetric(rtts(blobs, 2*b.N), "s3-rtt/blob")
	b.ReportMetric(rtts(manifests, b.N), "s3-rtt/manifest")
	b.ReportMetric(rtts(blobs+manifests, b.N), "s3-rtt/push")
}

// s3Calls reads this process's count of S3 calls by operation.
func s3Calls(b *testing.B) map[string]float64 {
	b.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "registry_s3_operation_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" {
					out[l.GetValue()] += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return out
}
