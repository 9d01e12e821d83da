// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// ReportArtifactType is the artifactType of scan reports in the bucket:
// OCI artifacts whose subject is the scanned manifest, listed by the
// referrers API.
const ReportArtifactType = "application/vnd.ha-registry.scan.report.v1+json"

// DefaultMaxSize is the largest image (its layers' total) scanned; larger
// ones are marked unscannable rather than retried forever.
const DefaultMaxSize = 2 << 30

// Worker scans queued images, a few at a time.
type Worker struct {
	Store   *store.Store
	Scanner Scanner
	// MaxSize bounds the images scanned; 0 means DefaultMaxSize.
	MaxSize int64
	// Concurrency is how many scans run at once; 0 means 2.
	Concurrency int
	// Lease is how long a claimed scan may take before another replica
	// takes it over; 0 means 30 minutes.
	Lease time.Duration
	// Owner names this process in leases; "" means hostname and pid.
	Owner string
	Log   zerolog.Logger

	// name is Scanner.Name(), asked once: for osv-scanner it runs the
	// program.
	name string
}

// Outcome is one image's scan.
type Outcome struct {
	Repository string              `json:"repository"`
	Digest     digest.Digest       `json:"digest"`
	Result     store.ScanResult    `json:"result"`
	Findings   []store.ScanFinding `json:"findings,omitempty"`
}

func (w *Worker) defaults() {
	if w.MaxSize <= 0 {
		w.MaxSize = DefaultMaxSize
	}
	if w.Concurrency <= 0 {
		w.Concurrency = 2
	}
	if w.Lease <= 0 {
		w.Lease = 30 * time.Minute
	}
	if w.Owner == "" {
		host, _ := os.Hostname()
		w.Owner = host + ":" + strconv.Itoa(os.Getpid())
	}
	if w.name == "" {
		w.name = w.Scanner.Name()
	}
}

// RunOnce queues what was never scanned or was scanned with other data,
// and scans the queue until it is empty, Concurrency at a time.
func (w *Worker) RunOnce(ctx context.Context) ([]Outcome, error) {
	w.defaults()
	dbv, err := w.Scanner.DBVersion(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := w.Store.QueueScans(ctx, dbv); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var out []Outcome
	var first error
	var wg sync.WaitGroup
	for range w.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				t, ok, err := w.Store.ClaimScan(ctx, w.Owner, w.Lease)
				if err != nil || !ok {
					if err != nil {
						mu.Lock()
						first = cmpErr(first, err)
						mu.Unlock()
					}
					return
				}
				o := w.scan(ctx, t, dbv)
				mu.Lock()
				out = append(out, o)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out, first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// ScanNow scans repo's manifest by tag or digest at once (every image of
// an index), whatever its last scan.
func (w *Worker) ScanNow(ctx context.Context, repo, tag string, d digest.Digest) ([]Outcome, error) {
	w.defaults()
	m, err := w.Store.GetManifest(ctx, repo, tag, d)
	if err != nil {
		return nil, err
	}
	parsed, err := registry.ParseManifest(m.MediaType, m.Content)
	if err != nil {
		return nil, err
	}
	targets := []digest.Digest{m.Digest}
	if len(parsed.Children) > 0 {
		targets = targets[:0]
		for _, c := range parsed.Children {
			targets = append(targets, c.Digest)
		}
	}
	dbv, err := w.Scanner.DBVersion(ctx)
	if err != nil {
		return nil, err
	}
	var out []Outcome
	for _, td := range targets {
		if err := w.Store.QueueScan(ctx, repo, td); err != nil {
			return out, fmt.Errorf("%s@%s: %w", repo, td, err)
		}
		t, ok, err := w.Store.ClaimScanOf(ctx, repo, td, w.Owner, w.Lease)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, fmt.Errorf("%s@%s is being scanned by another replica; try again later", repo, td)
		}
		out = append(out, w.scan(ctx, t, dbv))
	}
	return out, nil
}

// scan scans one claimed image and records the result.
func (w *Worker) scan(ctx context.Context, t store.ScanTarget, dbv string) Outcome {
	o := Outcome{Repository: t.Repository, Digest: t.Digest}
	r, findings := w.run(ctx, t, dbv)
	r.Scanner, r.DBVersion = w.name, dbv
	o.Result, o.Findings = r, findings
	ok, err := w.Store.FinishScan(context.WithoutCancel(ctx), t, w.Owner, r, findings)
	switch {
	case err != nil:
		w.Log.Error().Err(err).Str("repo", t.Repository).Str("digest", t.Digest.String()).Msg("recording a scan")
	case !ok:
		w.Log.Info().Str("repo", t.Repository).Str("digest", t.Digest.String()).Msg("scan dropped: the manifest went, or another replica took the scan over")
	default:
		w.Log.Info().Str("repo", t.Repository).Str("digest", t.Digest.String()).Str("status", r.Status).
			Int("critical", r.Critical).Int("high", r.High).Int("medium", r.Medium).Int("low", r.Low).Int("unknown", r.Unknown).Msg("scanned")
	}
	return o
}

// run exports and scans the image; failures are a result too.
func (w *Worker) run(ctx context.Context, t store.ScanTarget, dbv string) (store.ScanResult, []store.ScanFinding) {
	fail := func(err error) (store.ScanResult, []store.ScanFinding) {
		return store.ScanResult{Status: "failed", Error: err.Error()}, nil
	}
	m, err := w.Store.GetManifest(ctx, t.Repository, "", t.Digest)
	if err != nil {
		return fail(err)
	}
	parsed, err := registry.ParseManifest(m.MediaType, m.Content)
	if err != nil {
		return fail(err)
	}
	var size int64
	for _, b := range parsed.Blobs {
		size += b.Size
	}
	if size > w.MaxSize {
		return store.ScanResult{Status: "unscannable", Error: fmt.Sprintf("the image is %s, over the scan limit of %s",
			policy.FormatSize(size), policy.FormatSize(w.MaxSize))}, nil
	}
	f, err := os.CreateTemp("", "registry-scan-*.tar")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(f.Name())
	err = exportArchive(ctx, w.Store, t.Repository, parsed, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(fmt.Errorf("exporting the image: %w", err))
	}
	rep, err := w.Scanner.Scan(ctx, f.Name())
	if err != nil {
		return fail(err)
	}
	r := store.ScanResult{Status: "done"}
	var findings []store.ScanFinding
	for _, x := range rep.Findings {
		switch x.Severity {
		case Critical:
			r.Critical++
		case High:
			r.High++
		case Medium:
			r.Medium++
		case Low:
			r.Low++
		default:
			r.Unknown++
		}
		findings = append(findings, store.ScanFinding{ID: x.ID, Aliases: x.Aliases, Severity: string(x.Severity), Score: x.Score,
			Package: x.Package, Version: x.Version, Ecosystem: x.Ecosystem, Summary: x.Summary})
	}
	if d, err := w.storeReport(ctx, t.Repository, m, rep, r, dbv); err != nil {
		w.Log.Warn().Err(err).Str("repo", t.Repository).Str("digest", t.Digest.String()).Msg("storing the scan report")
	} else {
		r.ReportDigest = d.String()
	}
	return r, findings
}

// storeReport pushes the scanner's report as an OCI artifact whose
// subject is the scanned manifest, so it is in the bucket (and survives
// rebuild-db) and listed by the referrers API.
func (w *Worker) storeReport(ctx context.Context, repo string, m registry.StoredManifest, rep Report, r store.ScanResult, dbv string) (digest.Digest, error) {
	ctx = auth.WithCaller(ctx, auth.Caller{Name: "(scanner)"})
	raw := rep.Raw
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	empty := []byte("{}")
	for _, b := range [][]byte{raw, empty} {
		if _, err := w.Store.PutBlob(ctx, repo, digest.FromBytes(b), int64(len(b)), bytes.NewReader(b)); err != nil {
			return "", err
		}
	}
	mt := rep.RawMediaType
	if mt == "" {
		mt = "application/json"
	}
	man := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ReportArtifactType,
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: digest.FromBytes(empty), Size: int64(len(empty))},
		Layers:       []ocispec.Descriptor{{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw))}},
		Subject:      &ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Content))},
		Annotations: map[string]string{
			ocispec.AnnotationCreated:        time.Now().UTC().Format(time.RFC3339),
			"io.ha-registry.scan.scanner":    w.name,
			"io.ha-registry.scan.db-version": dbv,
			"io.ha-registry.scan.critical":   strconv.Itoa(r.Critical),
			"io.ha-registry.scan.high":       strconv.Itoa(r.High),
			"io.ha-registry.scan.medium":     strconv.Itoa(r.Medium),
			"io.ha-registry.scan.low":        strconv.Itoa(r.Low),
			"io.ha-registry.scan.unknown":    strconv.Itoa(r.Unknown),
		},
	}
	content, err := json.Marshal(man)
	if err != nil {
		return "", err
	}
	d := digest.FromBytes(content)
	_, err = w.Store.PutManifest(ctx, registry.ManifestPut{Repo: repo, MediaType: ocispec.MediaTypeImageManifest, Content: content, Digest: d})
	return d, err
}
