// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package scan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSeverityOf proves the CVSS v3 rating bands, and no score as UNKNOWN.
func TestSeverityOf(t *testing.T) {
	for _, c := range []struct {
		score float64
		ok    bool
		want  Severity
	}{{9.8, true, Critical}, {9.0, true, Critical}, {8.9, true, High}, {7.0, true, High}, {6.9, true, Medium},
		{4.0, true, Medium}, {3.9, true, Low}, {0.1, true, Low}, {0, true, Unknown}, {7.5, false, Unknown}} {
		if got := SeverityOf(c.score, c.ok); got != c.want {
			t.Errorf("SeverityOf(%v, %v) = %s, want %s", c.score, c.ok, got, c.want)
		}
	}
}

// TestParseOSV reads osv-scanner v2's JSON, as it printed it for the
// fixture advisory: one finding per group, named by its first id, with
// the other ids and aliases, the group's score and the package.
func TestParseOSV(t *testing.T) {
	out := []byte(`{"results":[{"source":{"path":"/lib/apk/db/installed","type":"os"},"packages":[{
		"package":{"name":"busybox","os_package_name":"busybox","version":"1.36.1-r2","ecosystem":"Alpine:v3.18"},
		"groups":[{"ids":["TEST-2026-0001"],"aliases":["CVE-2026-0001","TEST-2026-0001"],"max_severity":"9.8"},
			{"ids":["TEST-2026-0002"],"aliases":[],"max_severity":""}],
		"vulnerabilities":[{"id":"TEST-2026-0001","summary":"test advisory","aliases":["CVE-2026-0001"]},
			{"id":"TEST-2026-0002","summary":"unscored"}]}]}]}`)
	got, err := parseOSV(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{
		{ID: "TEST-2026-0001", Aliases: []string{"CVE-2026-0001"}, Severity: Critical, Score: 9.8,
			Package: "busybox", Version: "1.36.1-r2", Ecosystem: "Alpine:v3.18", Summary: "test advisory"},
		{ID: "TEST-2026-0002", Severity: Unknown,
			Package: "busybox", Version: "1.36.1-r2", Ecosystem: "Alpine:v3.18", Summary: "unscored"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseOSV (-want +got):\n%s", diff)
	}
	if fs, err := parseOSV([]byte(`{"results":[]}`)); err != nil || len(fs) != 0 {
		t.Errorf("no results: %v %v", fs, err)
	}
	if _, err := parseOSV([]byte("not json")); err == nil {
		t.Error("garbage parsed")
	}
}
