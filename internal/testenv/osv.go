// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// OSVAdvisory is the one advisory of [OSVDatabase]: busybox before
// 1.36.1-r5 on Alpine 3.18, critical (CVSS 9.8), alias CVE-2026-0001.
const OSVAdvisory = "TEST-2026-0001"

// OSVDatabase writes an offline OSV database in OSV's public format, laid
// out where osv-scanner --local-db-path looks
// (osv-scalibr/Alpine/all.zip), and returns its directory.
func OSVDatabase(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	zdir := filepath.Join(dir, "osv-scalibr", "Alpine")
	if err := os.MkdirAll(zdir, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := map[string]any{
		"id": OSVAdvisory, "modified": "2026-01-01T00:00:00Z", "published": "2026-01-01T00:00:00Z",
		"aliases": []string{"CVE-2026-0001"}, "summary": "busybox test advisory",
		"affected": []any{map[string]any{
			"package": map[string]string{"ecosystem": "Alpine:v3.18", "name": "busybox"},
			"ranges": []any{map[string]any{"type": "ECOSYSTEM",
				"events": []any{map[string]string{"introduced": "0"}, map[string]string{"fixed": "1.36.1-r5"}}}},
		}},
		"severity": []any{map[string]string{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(OSVAdvisory + ".json")
	if err == nil {
		err = json.NewEncoder(w).Encode(rec)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(zdir, "all.zip"), buf.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// AlpineLayer is an uncompressed layer of an Alpine 3.18 system whose apk
// database lists busybox at version: what osv-scanner needs to find it.
func AlpineLayer(version string) []byte {
	files := []struct{ name, content string }{
		{"etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n"},
		{"etc/alpine-release", "3.18.4\n"},
		{"etc/apk/arch", "x86_64\n"},
		{"etc/apk/repositories", "https://dl-cdn.alpinelinux.org/alpine/v3.18/main\n"},
		{"lib/apk/db/installed", "C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:busybox\nV:" + version + "\nA:x86_64\nS:500000\nI:900000\n" +
			"T:Size optimized toolbox\nU:https://busybox.net/\nL:GPL-2.0-only\no:busybox\nt:1690000000\n\n"},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.content)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.content))
	}
	tw.Close()
	return buf.Bytes()
}
