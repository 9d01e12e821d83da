// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"slices"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64MiB": 64 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "1000": 1000} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "1MB", "x"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestParseInts(t *testing.T) {
	if got, err := parseInts("1, 8,32"); err != nil || !slices.Equal(got, []int{1, 8, 32}) {
		t.Errorf("parseInts = %v, %v", got, err)
	}
	if _, err := parseInts("1,0"); err == nil {
		t.Error("parseInts accepted 0")
	}
}

func TestSelectWorkloads(t *testing.T) {
	all, err := selectWorkloads("all", true, false)
	if err != nil || len(all) == 0 {
		t.Fatalf("all without S3: %d, %v", len(all), err)
	}
	for _, w := range all {
		if w.S3 {
			t.Errorf("%s selected without -s3-endpoint", w.Name)
		}
	}
	if _, err := selectWorkloads("s3-get", true, false); err == nil {
		t.Error("s3-get selected without -s3-endpoint")
	}
	if _, err := selectWorkloads("all", false, false); err == nil {
		t.Error("neither a registry nor S3 was accepted")
	}
	if _, err := selectWorkloads("nope", true, true); err == nil {
		t.Error("an unknown workload was accepted")
	}
	ws, err := selectWorkloads("pull-streamed,s3-get", true, true)
	if err != nil || len(ws) != 2 {
		t.Errorf("two workloads: %v, %v", ws, err)
	}
}
