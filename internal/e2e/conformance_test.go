// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestConformance runs the OCI distribution-spec conformance suite against
// the real stack with every API switch and every data switch on but one:
// "sparse" pushes manifests whose layers were never uploaded, which this
// registry refuses on purpose (MANIFEST_BLOB_UNKNOWN), as the suite allows
// by leaving that switch off by default.
func TestConformance(t *testing.T) {
	// Served as serve serves it: through the serving chain (the
	// pull-through cache and the scan gate), which passes every ordinary
	// repository on.
	s := Start(t)
	runConformance(t, s.Addr, nil)
}

// runConformance runs the OCI conformance suite against addr, with env
// overriding its settings, and requires zero failures.
func runConformance(t *testing.T, addr string, extra map[string]string) {
	bin := testenv.Tool(t, "conformance")
	results := t.TempDir()
	env := map[string]string{
		"OCI_REGISTRY":                    addr,
		"OCI_TLS":                         "disabled",
		"OCI_VERSION":                     "1.1",
		"OCI_RESULTS_DIR":                 results,
		"OCI_REPO1":                       "conformance/repo1",
		"OCI_REPO2":                       "conformance/repo2",
		"OCI_LOG":                         "warn",
		"OCI_API_PING":                    "true",
		"OCI_API_PULL":                    "true",
		"OCI_API_PUSH":                    "true",
		"OCI_API_BLOBS_ATOMIC":            "true",
		"OCI_API_BLOBS_DELETE":            "true",
		"OCI_API_BLOBS_DIGEST_HEADER":     "true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS":   "true",
		"OCI_API_BLOBS_UPLOAD_CANCEL":     "true",
		"OCI_API_MANIFESTS_ATOMIC":        "true",
		"OCI_API_MANIFESTS_DELETE":        "true",
		"OCI_API_MANIFESTS_DIGEST_HEADER": "true",
		"OCI_API_MANIFESTS_TAG_PARAM":     "true",
		"OCI_API_TAGS_ATOMIC":             "true",
		"OCI_API_TAGS_DELETE":             "true",
		"OCI_API_TAGS_LIST":               "true",
		"OCI_API_REFERRER":                "true",
		"OCI_DATA_IMAGE":                  "true",
		"OCI_DATA_INDEX":                  "true",
		"OCI_DATA_INDEX_LIST":             "true",
		"OCI_DATA_SPARSE":                 "false",
		"OCI_DATA_ARTIFACT":               "true",
		"OCI_DATA_SUBJECT":                "true",
		"OCI_DATA_SUBJECT_MISSING":        "true",
		"OCI_DATA_ARTIFACT_LIST":          "true",
		"OCI_DATA_SUBJECT_LIST":           "true",
		"OCI_DATA_DATA_FIELD":             "true",
		"OCI_DATA_NONDISTRIBUTABLE":       "true",
		"OCI_DATA_CUSTOM_FIELDS":          "true",
		"OCI_DATA_NO_LAYERS":              "true",
		"OCI_DATA_EMPTY_BLOB":             "true",
		"OCI_DATA_SHA512":                 "true",
	}
	maps.Copy(env, extra)
	cmd := exec.Command(bin)
	cmd.Dir = results
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	report := out.String()
	if err != nil {
		t.Fatalf("conformance: %v\n%s", err, report)
	}
	// The suite exits 0 even when its configuration fails to load: its
	// results file proves it ran.
	if _, err := os.Stat(filepath.Join(results, "results.yaml")); err != nil {
		t.Fatalf("conformance wrote no results.yaml (it did not run):\n%s", report)
	}
	counts := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(Pass|FAIL|Error|Skip|Disabled)\.*:\s+(\d+)$`).FindAllStringSubmatch(report, -1) {
		counts[m[1]], _ = strconv.Atoi(m[2])
	}
	t.Logf("conformance: %d passed, %d failed, %d errors, %d skipped, %d disabled",
		counts["Pass"], counts["FAIL"], counts["Error"], counts["Skip"], counts["Disabled"])
	if counts["Pass"] == 0 || counts["FAIL"] != 0 || counts["Error"] != 0 {
		t.Fatalf("conformance did not pass cleanly:\n%s", report)
	}
}
