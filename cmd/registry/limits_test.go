// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// The limits' settings are given as environment variables, which an older
// binary ignores: the tests then fail on its behaviour, not on a flag it
// does not know.

// startLimited runs serve with the extra environment and returns its
// base URL once it is ready.
func startLimited(t *testing.T, extra ...string) string {
	t.Helper()
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(binary, "serve", "--migrate", "--listen", addr)
	cmd.Env = append(env(t), extra...)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("registry logs:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _ := get(t, base+"/readyz"); code == 200 {
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready; logs:\n%s", logs.String())
		}
	}
}

// from is a client whose connections come from the loopback address ip,
// so that the registry sees a client of its own (authentication is off,
// so a client is its address).
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// do sends one request and returns its status and headers, the body read.
func do(t *testing.T, c *http.Client, method, url string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// startSession opens an upload session and returns its URL.
func startSession(t *testing.T, c *http.Client, base, repo string) string {
	t.Helper()
	resp := do(t, c, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST upload: %d", resp.StatusCode)
	}
	return base + resp.Header.Get("Location")
}

// pushBlob uploads blob in a POST, a PATCH and a PUT, and returns how
// long that took.
func pushBlob(t *testing.T, c *http.Client, base, repo string, blob []byte) time.Duration {
	t.Helper()
	start := time.Now()
	loc := startSession(t, c, base, repo)
	resp := do(t, c, "PATCH", loc, blob)
	if resp.StatusCode != 202 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PATCH: %d %s", resp.StatusCode, b)
	}
	resp = do(t, c, "PUT", base+resp.Header.Get("Location")+"?digest="+digest.FromBytes(blob).String(), nil)
	if resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	return time.Since(start)
}

// trickle is a request from one loopback address whose body announces
// size bytes and sends one every interval, never all of them.
type trickle struct {
	start time.Time
	end   chan trickleEnd
}

// trickleEnd is how a trickle ended: the answer's status, or the
// connection's error, and when.
type trickleEnd struct {
	status     int
	retryAfter string
	body       string
	after      time.Duration
	err        error
}

func startTrickle(t *testing.T, ip, url, method string, size int, every time.Duration) *trickle {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	host, path, _ := strings.Cut(host, "/")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tr := &trickle{start: time.Now(), end: make(chan trickleEnd, 1)}
	fmt.Fprintf(conn, "%s /%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", method, path, host, size)
	stop := make(chan struct{})
	go func() {
		for i := 1; i < size; i++ {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
		}
	}()
	go func() {
		e := trickleEnd{}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		e.after, e.err = time.Since(tr.start), err
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			e.status, e.retryAfter, e.body = resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
		}
		close(stop)
		tr.end <- e
	}()
	return tr
}

// wantRefused checks that n of trs are answered 429 with Retry-After by
// the deadline and returns the others, which must still be running.
func wantRefused(t *testing.T, what string, trs []*trickle, n int, deadline time.Time) []*trickle {
	t.Helper()
	done := map[*trickle]trickleEnd{}
	for len(done) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		for _, tr := range trs {
			select {
			case e := <-tr.end:
				done[tr] = e
			default:
			}
		}
	}
	for _, e := range done {
		if e.err != nil || e.status != http.StatusTooManyRequests || e.retryAfter == "" || !strings.Contains(e.body, "TOOMANYREQUESTS") {
			t.Errorf("%s: ended after %v with %d (Retry-After %q) %v %s, want 429 with Retry-After", what, e.after, e.status, e.retryAfter, e.err, e.body)
		}
	}
	if len(done) != n {
		t.Fatalf("%s: %d of %d answered by the deadline, want %d refused with 429 at once", what, len(done), len(trs), n)
	}
	var running []*trickle
	for _, tr := range trs {
		if _, ok := done[tr]; !ok {
			running = append(running, tr)
		}
	}
	return running
}

// wantCut checks that each of trs is answered 408 by the minimum rate
// about one window after it began.
func wantCut(t *testing.T, what string, trs []*trickle, window time.Duration) {
	t.Helper()
	for _, tr := range trs {
		select {
		case e := <-tr.end:
			if e.err != nil || e.status != http.StatusRequestTimeout {
				t.Errorf("%s: ended after %v with %d %v %s, want 408 from the minimum rate", what, e.after, e.status, e.err, e.body)
			}
			if e.after < window-time.Second {
				t.Errorf("%s: cut after %v, before its window of %v", what, e.after, window)
			}
		case <-time.After(time.Until(tr.start.Add(window + 5*time.Second))):
			t.Fatalf("%s: still running %v after it began, with a window of %v", what, time.Since(tr.start), window)
		}
	}
}

// TestTricklingClientsCannotTakeUploads: against a pool of 4 upload
// connections and 2 per client, a client trickling 4 chunks at once gets
// 2 of them refused at once, another client's upload goes through while
// they run, a full pool answers 429 after a bounded wait, and the minimum
// rate cuts every trickle about one window after it began, leaving its
// session as it was.
func TestTricklingClientsCannotTakeUploads(t *testing.T) {
	// Long enough for the checks below to finish before the first cut,
	// on a busy machine too.
	const window = 10 * time.Second
	base := startLimited(t,
		"REGISTRY_UPLOAD_CONNS=4", "REGISTRY_UPLOAD_CONNS_PER_CLIENT=2", "REGISTRY_UPLOAD_CONN_WAIT=1s",
		"REGISTRY_BODY_MIN_RATE=1024", "REGISTRY_BODY_RATE_WINDOW="+window.String())
	victim, mallory, trudy := from("127.0.0.1"), "127.0.0.2", "127.0.0.3"
	malloryC, trudyC := from(mallory), from(trudy)

	var sessions []string
	var malloryTr []*trickle
	for range 4 {
		loc := startSession(t, malloryC, base, "mallory/app")
		sessions = append(sessions, loc)
		malloryTr = append(malloryTr, startTrickle(t, mallory, loc, "PATCH", 100000, 250*time.Millisecond))
	}
	malloryTr = wantRefused(t, "mallory's chunks beyond 2", malloryTr, 2, time.Now().Add(4*time.Second))

	// Mallory holds 2 of the 4 connections: another client pushes at once.
	if took := pushBlob(t, victim, base, "alice/app", []byte("alice's small blob")); took > 4*time.Second {
		t.Errorf("another client's upload took %v while mallory trickled", took)
	}

	// A second trickling client takes the other 2: the pool is full, and
	// an upload waits about --upload-conn-wait, then is told to retry.
	var trudyTr []*trickle
	for range 2 {
		loc := startSession(t, trudyC, base, "trudy/app")
		sessions = append(sessions, loc)
		trudyTr = append(trudyTr, startTrickle(t, trudy, loc, "PATCH", 100000, 250*time.Millisecond))
	}
	time.Sleep(1500 * time.Millisecond) // for them to take their connections
	loc := startSession(t, victim, base, "alice/app")
	start := time.Now()
	resp := do(t, victim, "PATCH", loc, []byte("waits for a connection"))
	waited := time.Since(start)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("PATCH with the pool full: %d, Retry-After %q, %s; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if waited < 800*time.Millisecond || waited > 4*time.Second {
		t.Errorf("PATCH with the pool full was answered after %v, want about 1s", waited)
	}

	wantCut(t, "mallory's trickle", malloryTr, window)
	wantCut(t, "trudy's trickle", trudyTr, window)

	// The cut chunks changed nothing, and the connections are free again.
	for _, loc := range sessions {
		resp := do(t, victim, "GET", loc, nil)
		if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-0" {
			t.Errorf("session after a cut chunk: %d, Range %q; want 204 with nothing (0-0)", resp.StatusCode, resp.Header.Get("Range"))
		}
	}
	if took := pushBlob(t, victim, base, "alice/app", []byte("alice's next blob")); took > 3*time.Second {
		t.Errorf("an upload after the trickles were cut took %v", took)
	}
}

// manifestBytesRE reads the manifest memory gauge from /metrics.
var manifestBytesRE = regexp.MustCompile(`(?m)^registry_manifest_body_bytes (\S+)$`)

func manifestBytes(t *testing.T, base string) float64 {
	t.Helper()
	_, metrics := get(t, base+"/metrics")
	m := manifestBytesRE.FindStringSubmatch(metrics)
	if m == nil {
		t.Fatal("/metrics has no registry_manifest_body_bytes")
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestStalledManifestsAreBounded: with 4 MiB for manifest bodies, six
// manifest PUTs of 1 MiB that trickle get two refused with 429 at once;
// the four held are cut by the minimum rate, and the memory they held is
// given back.
func TestStalledManifestsAreBounded(t *testing.T) {
	const window = 5 * time.Second
	base := startLimited(t, "REGISTRY_MANIFEST_MEMORY=4",
		"REGISTRY_BODY_MIN_RATE=1024", "REGISTRY_BODY_RATE_WINDOW="+window.String())

	var trs []*trickle
	for i := range 6 {
		trs = append(trs, startTrickle(t, "127.0.0.1", fmt.Sprintf("%s/v2/big/app/manifests/t%d", base, i), "PUT", 1<<20, 250*time.Millisecond))
	}
	held := wantRefused(t, "manifests beyond 4 MiB", trs, 2, time.Now().Add(3*time.Second))
	if got := manifestBytes(t, base); got != 4<<20 {
		t.Errorf("manifest bodies hold %v bytes, want the 4 MiB of the four held", got)
	}
	wantCut(t, "held manifest", held, window)
	if got := manifestBytes(t, base); got != 0 {
		t.Errorf("manifest bodies hold %v bytes after the cut, want 0", got)
	}

	// The bound is free again: a real manifest goes in.
	c := from("127.0.0.1")
	config, layer := []byte("{}"), []byte("a layer")
	pushBlob(t, c, base, "big/app", config)
	pushBlob(t, c, base, "big/app", layer)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		digest.FromBytes(config), len(config), digest.FromBytes(layer), len(layer))
	req, _ := http.NewRequestWithContext(context.Background(), "PUT", base+"/v2/big/app/manifests/v1", strings.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("manifest PUT after the cut: %d, want 201", resp.StatusCode)
	}
}

// TestReadLimits checks the limits' defaults, derived from --upload-conns
// and the memory limit, and that impossible values are refused.
func TestReadLimits(t *testing.T) {
	original := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(original) })
	read := func(memLimit int64, args ...string) (limits, error) {
		t.Helper()
		debug.SetMemoryLimit(memLimit)
		set := flag.NewFlagSet("serve", flag.ContinueOnError)
		flags := append(limitFlags(), &cli.IntFlag{Name: "upload-conns", Value: defaultUploadConns})
		for _, f := range flags {
			if err := f.Apply(set); err != nil {
				t.Fatal(err)
			}
		}
		if err := set.Parse(args); err != nil {
			t.Fatal(err)
		}
		return readLimits(cli.NewContext(nil, set, nil))
	}
	for _, tc := range []struct {
		name     string
		memLimit int64
		args     []string
		perConn  int
		manifest int64
	}{
		{"defaults, the idle budget", 48 << 20, nil, 10, 12 << 20},
		{"a large limit is capped", 8 << 30, nil, 10, 256 << 20},
		{"a small limit keeps one manifest", 8 << 20, nil, 10, 4 << 20},
		{"one connection", 48 << 20, []string{"--upload-conns", "1"}, 1, 12 << 20},
		{"set", 48 << 20, []string{"--upload-conns-per-client", "3", "--manifest-memory", "64"}, 3, 64 << 20},
	} {
		l, err := read(tc.memLimit, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if l.uploadsPerClient != tc.perConn || l.manifestMemory != tc.manifest ||
			l.bodyMinRate != 1024 || l.bodyRateWindow != 30*time.Second || l.uploadConnWait != 5*time.Second {
			t.Errorf("%s: %+v; want %d per client, %d manifest bytes and the default rate and wait", tc.name, l, tc.perConn, tc.manifest)
		}
	}
	for _, args := range [][]string{
		{"--body-min-rate", "-1"}, {"--body-rate-window", "0s"}, {"--upload-conn-wait", "-1s"},
		{"--upload-conns-per-client", "-1"}, {"--manifest-memory", "-1"}, {"--manifest-memory", "3"},
	} {
		if _, err := read(48<<20, args...); err == nil {
			t.Errorf("%v was accepted", args)
		}
	}
}
