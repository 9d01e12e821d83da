// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestScanCommands runs scanning as an operator would, offline: serve
// scans pushed images periodically, refuses the vulnerable one's pull by
// the policy while the clean one pulls, registry scan --report lists the
// finding, the report is a referrer of the image, and registry scan
// IMAGE scans at once.
func TestScanCommands(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyFile, []byte("scanning:\n  - repositories: \"prod/**\"\n    blockSeverity: HIGH\n"), 0o644)
	e := append(envFor(testenv.Postgres(t), testenv.S3(t), "scan"), "REGISTRY_POLICY_FILE="+policyFile,
		"REGISTRY_OSV_SCANNER="+testenv.Tool(t, "osv-scanner"), "REGISTRY_SCAN_DB="+testenv.OSVDatabase(t))
	e = migrateSplit(t, e)
	r := startPolicyReplicas(t, e, 1, "--scan-interval", "300ms")[0]
	for tag, version := range map[string]string{"bad": "1.36.1-r2", "good": "1.36.1-r5"} {
		layer := filepath.Join(dir, tag+".tar")
		os.WriteFile(layer, testenv.AlpineLayer(version), 0o644)
		mustCrane(t, "append", "--insecure", "-f", layer, "-t", r.addr+"/prod/app:"+tag)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if out, err := craneOut(t, "manifest", "--insecure", r.addr+"/prod/app:bad"); err != nil && strings.Contains(out, "DENIED") {
			if !strings.Contains(out, testenv.OSVAdvisory+" CRITICAL in busybox 1.36.1-r2") {
				t.Errorf("the refusal does not name the finding:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the vulnerable image was never refused; logs:\n%s", r.logs())
		}
	}
	mustCrane(t, "pull", "--insecure", r.addr+"/prod/app:good", filepath.Join(dir, "good-pulled.tar"))

	report := mustRegistry(t, e, "scan", "--report", "prod/app:bad")
	for _, want := range []string{testenv.OSVAdvisory, "CRITICAL", "busybox", "1.36.1-r2", "CVE-2026-0001", "done by osv-scanner"} {
		if !strings.Contains(report, want) {
			t.Errorf("registry scan --report lacks %q:\n%s", want, report)
		}
	}
	var entries []struct {
		Digest string
		Scan   struct {
			Status       string
			Critical     int
			ReportDigest string
		}
	}
	if err := json.Unmarshal([]byte(mustRegistry(t, e, "scan", "--report", "--json", "prod/app:bad")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Scan.Critical != 1 || entries[0].Scan.ReportDigest == "" {
		t.Fatalf("registry scan --report --json: %+v", entries)
	}
	digest := strings.TrimSpace(mustCrane(t, "digest", "--insecure", r.addr+"/prod/app:good"))
	// The vulnerable image's own digest cannot be pulled: the report says it.
	_, refs := fetch(t, r.addr, "/v2/prod/app/referrers/"+entries[0].Digest, "")
	if !strings.Contains(refs, entries[0].Scan.ReportDigest) || !strings.Contains(refs, "application/vnd.ha-registry.scan.report.v1+json") {
		t.Errorf("the report is not among the referrers:\n%s", refs)
	}
	if out := mustRegistry(t, e, "scan", "prod/app@"+digest); !strings.Contains(out, "scanned 1 images") || !strings.Contains(out, "done") {
		t.Errorf("registry scan IMAGE:\n%s", out)
	}
}
