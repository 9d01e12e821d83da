// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the layering: the contract and the HTTP layer serve from
// the registry.Store interface and must not reach for S3 or PostgreSQL
// themselves, directly or through anything they import.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("go list is slow")
	}
	forbidden := []string{"github.com/aws/", "github.com/jackc/"}
	for _, pkg := range []string{
		"github.com/ha-registry/ha-registry/registry",
		"github.com/ha-registry/ha-registry/registry/httpapi",
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
