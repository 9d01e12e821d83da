// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// TestLogsHideCredentials checks that the request log carries no header
// value but the user agent, whatever the client sends.
func TestLogsHideCredentials(t *testing.T) {
	fx := newFixture(t)
	s, logs := newServer(t, fx.store, Options{})
	for _, path := range []string{"/v2/foo/bar/manifests/latest", "/v2/foo/bar/blobs/uploads/nope", "/v2/../x"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer sekrit-token-value")
		req.Header.Set("Cookie", "session=sekrit-cookie")
		req.Header.Set("X-Registry-Auth", "sekrit-header")
		req.Header.Set("User-Agent", "test-agent/1.0")
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	out := logs.String()
	if strings.Contains(out, "sekrit") {
		t.Errorf("log leaks a credential:\n%s", out)
	}
	for _, want := range []string{`"route":"manifest"`, `"repo":"foo/bar"`, `"status":200`, `"user_agent":"test-agent/1.0"`, `"method":"GET"`, `"request_id":`, `"duration":`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestMetrics(t *testing.T) {
	fx := newFixture(t)
	s, _ := newServer(t, fx.store, Options{})
	call{method: "GET", path: "/v2/foo/bar/blobs/" + fx.layerD.String(), status: 200}.run(t, s)
	call{method: "GET", path: "/v2/foo/bar/blobs/sha256:bad", status: 400}.run(t, s)
	resp := call{method: "GET", path: "/metrics", status: 200}.run(t, s)
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`registry_http_requests_total{method="GET",route="blob",status="200"}`,
		`registry_http_request_duration_seconds_bucket{method="GET",route="blob",le=`,
		`registry_http_response_bytes_total{route="blob"}`,
		`registry_http_request_bytes_total{route="blob"}`,
		`registry_http_errors_total{code="DIGEST_INVALID"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(body), "sha256:") {
		t.Error("a raw path reached a metric label")
	}
}

func TestHealth(t *testing.T) {
	store := newFakeStore()
	var extra error
	s, _ := newServer(t, store, Options{ReadyCheck: func(context.Context) error { return extra }})
	call{method: "GET", path: "/healthz", status: 200}.run(t, s)
	call{method: "GET", path: "/readyz", status: 200}.run(t, s)

	store.readyErr = errors.New("postgres down")
	call{method: "GET", path: "/readyz", status: 503}.run(t, s)
	call{method: "GET", path: "/healthz", status: 200}.run(t, s)
	store.readyErr = nil

	extra = errors.New("not yet")
	call{method: "GET", path: "/readyz", status: 503}.run(t, s)
	extra = nil

	s.SetDraining(true)
	call{method: "GET", path: "/readyz", status: 503, inBody: []string{"draining"}}.run(t, s)
	s.SetDraining(false)
	call{method: "HEAD", path: "/readyz", status: 200, noBody: true}.run(t, s)
	call{method: "POST", path: "/readyz", status: 405}.run(t, s)
}

// TestClientGone checks that a request whose client went away is not
// logged as an error.
func TestClientGone(t *testing.T) {
	fx := newFixture(t)
	s, logs := newServer(t, fx.store, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/v2/foo/bar/manifests/latest", nil).WithContext(ctx)
	s.ServeHTTP(httptest.NewRecorder(), req)
	if strings.Contains(logs.String(), `"level":"error"`) {
		t.Errorf("a client going away was logged as an error:\n%s", logs)
	}
	if !strings.Contains(logs.String(), `"status":499`) {
		t.Errorf("want status 499 in the request log:\n%s", logs)
	}
}

// TestStreamedBlobIsNotBuffered checks that a blob GET copies as it reads:
// the first half reaches the client before the store has produced the
// second.
func TestStreamedBlobIsNotBuffered(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	half := len(blob) / 2
	pr, pw := io.Pipe()
	s, _ := newServer(t, pipeStore{fakeStore: newFakeStore(), body: pr, size: int64(len(blob))}, Options{})
	srv := httptest.NewServer(s)
	defer srv.Close()

	go func() { _, _ = pw.Write(blob[:half]) }()
	resp, err := http.Get(srv.URL + "/v2/r/blobs/" + digest.SHA256.FromBytes(blob).String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, half)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first half did not arrive before the second was produced: the blob is buffered")
	}
	go func() { _, _ = pw.Write(blob[half:]); _ = pw.Close() }()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(first, rest...), blob) {
		t.Error("the streamed body differs from the blob")
	}
}

// pipeStore serves every blob from body, claiming size bytes.
type pipeStore struct {
	*fakeStore
	body io.ReadCloser
	size int64
}

func (p pipeStore) StatBlob(_ context.Context, _ string, d digest.Digest) (registry.BlobInfo, error) {
	return registry.BlobInfo{Digest: d, Size: p.size}, nil
}

func (p pipeStore) OpenBlob(context.Context, string, digest.Digest, int64, int64) (io.ReadCloser, error) {
	return p.body, nil
}
