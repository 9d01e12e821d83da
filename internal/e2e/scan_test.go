// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/scan"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
)

// alpineImage builds an Alpine 3.18 image whose apk database lists
// busybox at version.
func alpineImage(t *testing.T, version string) testImage {
	t.Helper()
	lb := testenv.AlpineLayer(version)
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}`, digest.FromBytes(lb)))
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(lb), Size: int64(len(lb))}}}
	b, _ := json.Marshal(m)
	return testImage{blobs: [][]byte{config, lb}, manifest: b, digest: digest.FromBytes(b)}
}

// TestScan runs the real OSV-Scanner offline: the vulnerable image is
// reported with the fixture's finding, its report is a referrer of it,
// the pull policy refuses it while the clean image pulls, an allow-list
// lets it through, and unscanned images are refused where a rule says so.
func TestScan(t *testing.T) {
	ctx := context.Background()
	osv := &scan.OSV{Binary: testenv.Tool(t, "osv-scanner"), DBPath: testenv.OSVDatabase(t)}
	cur := policy.NewCurrent(nil)
	s := StartPolicy(t, cur.Get)
	bad, good := alpineImage(t, "1.36.1-r2"), alpineImage(t, "1.36.1-r5")
	mustPush(t, s, "prod/app", "bad", bad)
	mustPush(t, s, "prod/app", "good", good)

	w := &scan.Worker{Store: s.Store, Scanner: osv, Log: zerolog.Nop()}
	outcomes, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != 2 {
		t.Fatalf("scanned %d images, want 2: %+v", len(outcomes), outcomes)
	}
	res, ok, err := s.Store.ScanOf(ctx, "prod/app", bad.digest)
	if err != nil || !ok || res.Status != "done" || res.Critical != 1 || res.ReportDigest == "" {
		t.Fatalf("the vulnerable image's scan: %+v %v %v", res, ok, err)
	}
	findings, _ := s.Store.ScanFindings(ctx, "prod/app", bad.digest)
	if len(findings) != 1 || findings[0].ID != "TEST-2026-0001" || findings[0].Package != "busybox" || findings[0].Severity != "CRITICAL" {
		t.Errorf("findings: %+v", findings)
	}
	if res, _, _ := s.Store.ScanOf(ctx, "prod/app", good.digest); res.Status != "done" || res.Critical+res.High+res.Medium+res.Low+res.Unknown != 0 {
		t.Errorf("the clean image's scan: %+v", res)
	}

	// The report is a referrer of the scanned image.
	_, body := call(t, s, "GET", "/v2/prod/app/referrers/"+bad.digest.String(), nil, nil)
	var idx ocispec.Index
	json.Unmarshal(body, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != scan.ReportArtifactType || idx.Manifests[0].Digest.String() != res.ReportDigest {
		t.Errorf("referrers of the scanned image: %s", body)
	}
	// A second pass with the same database scans nothing.
	if again, err := w.RunOnce(ctx); err != nil || len(again) != 0 {
		t.Errorf("a second pass scanned %d images (%v), want 0", len(again), err)
	}

	// The pull policy.
	cur.Set(mustParsePolicy(t, "scanning:\n  - repositories: \"prod/**\"\n    blockSeverity: HIGH\n    unscanned: refuse\n"))
	accept := map[string]string{"Accept": ocispec.MediaTypeImageManifest}
	resp, body := call(t, s, "GET", "/v2/prod/app/manifests/bad", accept, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "TEST-2026-0001 CRITICAL in busybox 1.36.1-r2") {
		t.Errorf("pull of the vulnerable image: %d %s", resp.StatusCode, body)
	}
	mustStatus(t, s, "GET", "/v2/prod/app/manifests/good", accept, nil, http.StatusOK)
	unscanned := alpineImage(t, "1.36.1-r9")
	mustPush(t, s, "prod/app", "new", unscanned)
	if resp, body := call(t, s, "GET", "/v2/prod/app/manifests/new", accept, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "not scanned yet") {
		t.Errorf("pull of an unscanned image: %d %s", resp.StatusCode, body)
	}
	// The allow-list, by alias.
	cur.Set(mustParsePolicy(t, "scanning:\n  - repositories: \"prod/**\"\n    blockSeverity: HIGH\n    allow: [CVE-2026-0001]\n"))
	mustStatus(t, s, "GET", "/v2/prod/app/manifests/bad", accept, nil, http.StatusOK)
	// Outside the rule's repositories nothing is refused.
	mustPush(t, s, "dev/app", "bad", bad)
	cur.Set(mustParsePolicy(t, "scanning:\n  - repositories: \"prod/**\"\n    blockSeverity: LOW\n"))
	mustStatus(t, s, "GET", "/v2/dev/app/manifests/bad", accept, nil, http.StatusOK)
}

// TestScanSharedQueue: workers of two replicas drain one queue, scanning
// each image once; an image over the size limit is marked unscannable and
// not tried again.
func TestScanSharedQueue(t *testing.T) {
	ctx := context.Background()
	osv := &scan.OSV{Binary: testenv.Tool(t, "osv-scanner"), DBPath: testenv.OSVDatabase(t)}
	a := Start(t)
	b := a.Replica(t)
	var digests []digest.Digest
	for i := range 4 {
		img := alpineImage(t, fmt.Sprintf("1.36.1-r%d", i))
		mustPush(t, a, "shared/app", fmt.Sprintf("v%d", i), img)
		digests = append(digests, img.digest)
	}
	big := newTestImage(t, 64<<10, nil)
	mustPush(t, a, "shared/big", "v1", big)
	workers := []*scan.Worker{
		{Store: a.Store, Scanner: osv, Owner: "a", MaxSize: 32 << 10, Log: zerolog.Nop()},
		{Store: b.Store, Scanner: osv, Owner: "b", MaxSize: 32 << 10, Log: zerolog.Nop()},
	}
	results := make([][]scan.Outcome, 2)
	errs := make([]error, 2)
	done := make(chan int)
	for i, w := range workers {
		go func() { results[i], errs[i] = w.RunOnce(ctx); done <- i }()
	}
	<-done
	<-done
	seen := map[digest.Digest]int{}
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		for _, o := range results[i] {
			seen[o.Digest]++
		}
	}
	for _, d := range append(digests, big.digest) {
		if seen[d] != 1 {
			t.Errorf("%s was scanned %d times, want once", d, seen[d])
		}
	}
	if res, _, _ := a.Store.ScanOf(ctx, "shared/big", big.digest); res.Status != "unscannable" || !strings.Contains(res.Error, "over the scan limit") {
		t.Errorf("the big image: %+v", res)
	}
	if again, _ := workers[0].RunOnce(ctx); len(again) != 0 {
		t.Errorf("a second pass scanned %d images, want 0 (the unscannable one is not retried)", len(again))
	}
}
