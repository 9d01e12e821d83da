// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"slices"
	"strings"
	"testing"
)

// TestScanRules proves scanning rules parse, match first, and refuse bad
// values with line and key.
func TestScanRules(t *testing.T) {
	p := mustParse(t, "scanning:\n  - repositories: \"prod/**\"\n    blockSeverity: high\n    allow: [CVE-1]\n    unscanned: refuse\n  - repositories: \"**\"\n    blockSeverity: CRITICAL\n")
	r, ok := p.ScanRuleFor("prod/app")
	if !ok || r.BlockSeverity != "HIGH" || !r.RefuseUnscanned || !slices.Equal(r.Allow, []string{"CVE-1"}) || r.Line != 2 {
		t.Errorf("prod rule: %+v %v", r, ok)
	}
	if r, ok := p.ScanRuleFor("dev/app"); !ok || r.BlockSeverity != "CRITICAL" || r.RefuseUnscanned {
		t.Errorf("catch-all rule: %+v %v", r, ok)
	}
	for _, c := range []struct{ file, want string }{
		{"scanning:\n  - repositories: a/**\n    blockSeverity: severe\n", `line 3: scanning[0].blockSeverity: "SEVERE" is not a severity`},
		{"scanning:\n  - repositories: a/**\n    unscanned: maybe\n", `line 3: scanning[0].unscanned: "maybe": write allow or refuse`},
		{"scanning:\n  - blockSeverity: HIGH\n", "line 2: scanning[0]: needs repositories"},
	} {
		if _, err := Parse([]byte(c.file)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.file, err, c.want)
		}
	}
}
