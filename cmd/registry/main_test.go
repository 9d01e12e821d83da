// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "registry-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "registry")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := testenv.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env configures the binary entirely through environment variables.
func env(t *testing.T) []string {
	s3 := testenv.S3(t)
	return append(os.Environ(),
		"REGISTRY_DATABASE_URL="+testenv.Postgres(t),
		"REGISTRY_S3_ENDPOINT="+s3.Endpoint,
		"REGISTRY_S3_BUCKET="+s3.Bucket,
		"REGISTRY_S3_REGION="+s3.Region,
		"REGISTRY_S3_PATH_STYLE=true",
		"REGISTRY_S3_PREFIX=some/prefix",
		"AWS_ACCESS_KEY_ID="+s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s3.SecretKey,
	)
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "v0.0.0-test" {
		t.Fatalf("registry version: %q, %v", out, err)
	}
}

// TestServeRefusesUnmigratedDatabase: a binary never serves a schema it
// was not built for.
func TestServeRefusesUnmigratedDatabase(t *testing.T) {
	cmd := exec.Command(binary, "serve", "--listen", testenv.FreeAddr(t))
	cmd.Env = env(t)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "registry migrate") {
		t.Fatalf("serve on an empty database: err %v, output:\n%s", err, out)
	}
}

// TestServe runs the binary as an operator would: migrate, serve, push
// with a real client, scrape metrics, then drain on SIGTERM.
func TestServe(t *testing.T) {
	e := migrateSplit(t, env(t))
	addr := testenv.FreeAddr(t)
	base := "http://" + addr
	cmd := exec.Command(binary, "serve", "--listen", addr, "--drain-delay", "1s")
	cmd.Env = append(e, "REGISTRY_LOG_LEVEL=debug")
	var logs syncBuffer
	cmd.Stdout = &logs
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	ready := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, _ := get(t, base+"/readyz"); code == 200 {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("never ready; logs:\n%s", logs.String())
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}

	crane := testenv.Tool(t, "crane")
	layer := filepath.Join(t.TempDir(), "layer.tar")
	tarFile(t, layer)
	ref := addr + "/cli/app:v1"
	if out, err := exec.Command(crane, "append", "--insecure", "-f", layer, "-t", ref).CombinedOutput(); err != nil {
		t.Fatalf("crane append: %v\n%s", err, out)
	}
	if out, err := exec.Command(crane, "copy", "--insecure", ref, addr+"/cli/copy:v1").CombinedOutput(); err != nil {
		t.Fatalf("crane copy: %v\n%s", err, out)
	}
	if code, body := get(t, base+"/v2/cli/app/tags/list", "Authorization", "Basic c2VjcmV0LXRva2Vu"); code != 200 || !strings.Contains(body, "v1") {
		t.Fatalf("tags/list: %d %s", code, body)
	}

	_, metrics := get(t, base+"/metrics")
	for _, m := range []string{"registry_http_requests_total", "registry_http_request_duration_seconds",
		"registry_s3_operation_duration_seconds", "registry_postgres_operation_duration_seconds"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// Drain: readiness fails at once while requests are still served.
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	if code, _ := get(t, base+"/v2/"); code != 200 {
		t.Errorf("/v2/ while draining: %d, want 200", code)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if l := logs.String(); strings.Contains(l, "c2VjcmV0LXRva2Vu") {
		t.Errorf("the log contains the Authorization header's value")
	}
}

// tarFile writes a small layer tarball with the system tar.
func tarFile(t *testing.T, path string) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the cli test\n"), 0o644)
	if out, err := exec.Command("tar", "-cf", path, "-C", dir, "hello.txt").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
}

// TestStalledChunkIsCut: a client that stops sending in the middle of a
// chunk loses the request after --body-idle-timeout, and the session it
// held is free again for the client's retry.
func TestStalledChunkIsCut(t *testing.T) {
	e := env(t)
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(binary, "serve", "--migrate", "--listen", addr, "--body-idle-timeout", "1s")
	cmd.Env = e
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _ := get(t, base+"/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready; logs:\n%s", logs.String())
		}
	}
	resp, err := http.Post(base+"/v2/stall/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")

	// A raw connection: announce 100 bytes, send 10, then nothing.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Range: 0-99\r\nContent-Length: 100\r\n\r\n0123456789", loc, addr)
	// Let it take the session's lock (a few milliseconds of work).
	time.Sleep(400 * time.Millisecond)

	// The retry waits behind the stalled request's session lock until the
	// idle timeout cuts it, then goes through.
	body := bytes.Repeat([]byte("x"), 100)
	req, _ := http.NewRequest("PATCH", base+loc, bytes.NewReader(body))
	req.Header.Set("Content-Range", "0-99")
	start := time.Now()
	resp, err = (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 || resp.Header.Get("Range") != "0-99" {
		t.Fatalf("retry: %d, Range %q; logs:\n%s", resp.StatusCode, resp.Header.Get("Range"), logs.String())
	}
	if waited := time.Since(start); waited < 300*time.Millisecond || waited > 30*time.Second {
		t.Errorf("the retry waited %v; the stalled request should hold the session about 1s", waited)
	}
}
