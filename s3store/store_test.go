// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

const mib = 1 << 20

// newStore returns a Store on a fresh bucket of the test S3 server, under a
// root prefix so every test also exercises the prefix. mod adjusts the
// configuration before the Store is built.
func newStore(t *testing.T, mod func(*Config)) *Store {
	t.Helper()
	env := testenv.S3(t)
	return newStoreAt(t, env, env.Endpoint, mod)
}

// newStoreAt is newStore on env's bucket, reached at endpoint.
func newStoreAt(t *testing.T, env testenv.S3Config, endpoint string, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{
		Endpoint:  endpoint,
		Region:    env.Region,
		Bucket:    env.Bucket,
		PathStyle: true,
		AccessKey: env.AccessKey,
		SecretKey: env.SecretKey,
		Root:      "team/prod",
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// stream hides every method but Read, as a network body would.
type stream struct{ r io.Reader }

func (s stream) Read(p []byte) (int, error) { return s.r.Read(p) }

func mustPut(t *testing.T, s *Store, key string, b []byte) {
	t.Helper()
	if err := s.PutBytes(t.Context(), key, b); err != nil {
		t.Fatalf("PutBytes(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	b, err := s.GetBytes(t.Context(), key)
	if err != nil {
		t.Fatalf("GetBytes(%q): %v", key, err)
	}
	return b
}

func mustEqualBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (%s), want %d bytes (%s)",
			what, len(got), digest.FromBytes(got), len(want), digest.FromBytes(want))
	}
}

// readRange reads GetObject(key, offset, length) to the end.
func readRange(t *testing.T, s *Store, key string, offset, length int64) ([]byte, error) {
	t.Helper()
	body, err := s.GetObject(t.Context(), key, offset, length)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b, nil
}

func TestPing(t *testing.T) {
	s := newStore(t, nil)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	missing := newStore(t, func(c *Config) { c.Bucket = "no-such-bucket-here" })
	if err := missing.Ping(t.Context()); err == nil {
		t.Fatal("Ping of a missing bucket succeeded")
	}
}

func TestNewRejects(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no bucket":       {},
		"half key":        {Bucket: "b", AccessKey: "k"},
		"huge threshold":  {Bucket: "b", CopyThreshold: 6 << 30},
		"small copy part": {Bucket: "b", CopyPartSize: mib},
	} {
		if _, err := New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestObjectLifecycle(t *testing.T) {
	s := newStore(t, nil)
	key := s.Layout().BlobData(digest.FromString("x"))
	data := randomBytes(100_000, 1)
	before := time.Now().Add(-time.Minute)
	mustPut(t, s, key, data)

	mustEqualBytes(t, "GetBytes", mustGet(t, s, key), data)
	for _, r := range []struct{ offset, length int64 }{
		{0, -1}, {0, 1}, {10, 100}, {99_999, 1}, {99_999, -1}, {5000, -1}, {0, 100_000},
	} {
		got, err := readRange(t, s, key, r.offset, r.length)
		if err != nil {
			t.Fatalf("GetObject(%d, %d): %v", r.offset, r.length, err)
		}
		end := int64(len(data))
		if r.length >= 0 {
			end = r.offset + r.length
		}
		mustEqualBytes(t, "range", got, data[r.offset:end])
	}
	if got, err := readRange(t, s, key, 500, 0); err != nil || len(got) != 0 {
		t.Errorf("GetObject(500, 0) = %d bytes, %v; want none", len(got), err)
	}
	if _, err := readRange(t, s, key, 200_000, -1); !errors.Is(err, ErrInvalidRange) {
		t.Errorf("GetObject past the end: %v, want ErrInvalidRange", err)
	}

	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.LastModified.Before(before) {
		t.Errorf("Stat = %+v", info)
	}

	// Overwrite replaces.
	mustPut(t, s, key, []byte("short"))
	mustEqualBytes(t, "after overwrite", mustGet(t, s, key), []byte("short"))

	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

func TestEmptyObject(t *testing.T) {
	s := newStore(t, nil)
	for name, body := range map[string]io.Reader{
		"seekable": bytes.NewReader(nil),
		"stream":   stream{strings.NewReader("")},
	} {
		key := "empty/" + name
		if err := s.PutObject(t.Context(), key, body, 0); err != nil {
			t.Fatalf("%s: PutObject: %v", name, err)
		}
		info, err := s.Stat(t.Context(), key)
		if err != nil || info.Size != 0 {
			t.Errorf("%s: Stat = %+v, %v", name, info, err)
		}
		if b := mustGet(t, s, key); len(b) != 0 {
			t.Errorf("%s: GetBytes = %q", name, b)
		}
		if b, err := readRange(t, s, key, 0, 0); err != nil || len(b) != 0 {
			t.Errorf("%s: GetObject(0, 0) = %q, %v", name, b, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	s := newStore(t, nil)
	ctx := t.Context()
	key := "missing/key"
	checks := map[string]error{}
	_, checks["GetObject"] = s.GetObject(ctx, key, 0, -1)
	_, checks["GetObject range"] = s.GetObject(ctx, key, 5, 10)
	_, checks["GetObject empty range"] = s.GetObject(ctx, key, 0, 0)
	_, checks["GetBytes"] = s.GetBytes(ctx, key)
	_, checks["Stat"] = s.Stat(ctx, key)
	_, checks["GetLink"] = s.GetLink(ctx, key)
	checks["Copy"] = s.Copy(ctx, key, "dst", 10)
	for name, err := range checks {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if err := s.AbortMultipart(ctx, key, "no-such-upload"); err != nil {
		t.Errorf("AbortMultipart of a missing upload: %v", err)
	}
}

func TestStreamingPut(t *testing.T) {
	s := newStore(t, nil)
	data := randomBytes(3*mib+12345, 2)
	key := "stream/data"
	if err := s.PutObject(t.Context(), key, stream{bytes.NewReader(data)}, int64(len(data))); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	mustEqualBytes(t, "streamed object", mustGet(t, s, key), data)

	// A body shorter than announced must fail, not store a truncated blob.
	short := "stream/short"
	if err := s.PutObject(t.Context(), short, stream{bytes.NewReader(data[:1000])}, 2000); err == nil {
		t.Error("PutObject with a short body succeeded")
	}
	if _, err := s.Stat(t.Context(), short); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat after failed put: %v, want ErrNotFound", err)
	}
}

func TestLinks(t *testing.T) {
	s := newStore(t, nil)
	key := s.Layout().LayerLink("a/b", dgst)
	if err := s.PutLink(t.Context(), key, dgst); err != nil {
		t.Fatalf("PutLink: %v", err)
	}
	if got := string(mustGet(t, s, key)); got != string(dgst) {
		t.Errorf("link content %q, want %q", got, dgst)
	}
	got, err := s.GetLink(t.Context(), key)
	if err != nil || got != dgst {
		t.Errorf("GetLink = %q, %v", got, err)
	}
	mustPut(t, s, "bad/link", []byte("sha256:nothex"))
	if _, err := s.GetLink(t.Context(), "bad/link"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("GetLink of garbage: %v", err)
	}
}

func TestPresignGet(t *testing.T) {
	s := newStore(t, nil)
	key := s.Layout().BlobData(dgst)
	data := randomBytes(4096, 3)
	mustPut(t, s, key, data)
	u, err := s.PresignGet(t.Context(), key, 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET presigned URL: %s: %s", resp.Status, got)
	}
	mustEqualBytes(t, "presigned GET", got, data)

	public := newStore(t, func(c *Config) { c.PublicEndpoint = "https://s3.example.test:8443" })
	u, err = public.PresignGet(t.Context(), key, time.Minute)
	if err != nil {
		t.Fatalf("PresignGet with PublicEndpoint: %v", err)
	}
	if want := "https://s3.example.test:8443/" + public.Bucket() + "/" + key + "?"; !strings.HasPrefix(u, want) {
		t.Errorf("presigned URL %s, want prefix %s", u, want)
	}
}

// counterValue reads a counter or histogram sample count from the default
// registry; 0 when the series does not exist yet.
func counterValue(t *testing.T, name, operation string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == operation {
					if h := m.GetHistogram(); h != nil {
						return float64(h.GetSampleCount())
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	s := newStore(t, nil)
	const durations, errs = "registry_s3_operation_duration_seconds", "registry_s3_operation_errors_total"
	heads, headErrs := counterValue(t, durations, "HeadObject"), counterValue(t, errs, "HeadObject")
	if _, err := s.Stat(t.Context(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat: %v", err)
	}
	if got := counterValue(t, durations, "HeadObject"); got != heads+1 {
		t.Errorf("HeadObject observations %v, want %v", got, heads+1)
	}
	if got := counterValue(t, errs, "HeadObject"); got != headErrs {
		t.Errorf("a missing key counted as an error: %v, want %v", got, headErrs)
	}

	missing := newStore(t, func(c *Config) { c.Bucket = "no-such-bucket-metrics" })
	bucketErrs := counterValue(t, errs, "HeadBucket")
	if err := missing.Ping(t.Context()); err == nil {
		t.Fatal("Ping of a missing bucket succeeded")
	}
	if got := counterValue(t, errs, "HeadBucket"); got != bucketErrs+1 {
		t.Errorf("HeadBucket errors %v, want %v", got, bucketErrs+1)
	}
}

func TestParallel(t *testing.T) {
	boom := errors.New("boom")
	// Index 2 starts while 0, 1 and 3 hold the other slots and wait for
	// cancellation: the error must release them, and 4..99 never start.
	var started atomic.Int32
	err := parallel(t.Context(), 100, 4, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 2 {
			return boom
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Errorf("parallel = %v, want the first error", err)
	}
	if n := started.Load(); n > 4 {
		t.Errorf("%d calls started after the error, want at most 4", n)
	}
	seen := make([]bool, 50)
	if err := parallel(t.Context(), len(seen), 3, func(_ context.Context, i int) error {
		seen[i] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, ok := range seen {
		if !ok {
			t.Errorf("index %d not run", i)
		}
	}
}
