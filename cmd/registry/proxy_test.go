// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestProxyCommands: registry proxy warm pulls every platform of an index
// into the cache, which then serves it with its upstream gone, and
// registry proxy reports the cache's size and hit rate.
func TestProxyCommands(t *testing.T) {
	upEnv := envFor(testenv.Postgres(t), testenv.S3(t), "upstream")
	upEnv = migrateSplit(t, upEnv)
	up := startPolicyReplicas(t, upEnv, 1)[0]
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		layer := filepath.Join(dir, arch+".tar")
		writeTar(t, layer, arch, 8<<10)
		mustCrane(t, "append", "--insecure", "-f", layer, "-t", up.addr+"/lib/app:"+arch)
		mustCrane(t, "mutate", "--insecure", "--set-platform", "linux/"+arch, "-t", up.addr+"/lib/app:"+arch, up.addr+"/lib/app:"+arch)
	}
	mustCrane(t, "index", "append", "--insecure", "-m", up.addr+"/lib/app:amd64", "-m", up.addr+"/lib/app:arm64", "-t", up.addr+"/lib/app:multi")
	want := strings.TrimSpace(mustCrane(t, "digest", "--insecure", up.addr+"/lib/app:multi"))

	policyFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyFile, []byte(fmt.Sprintf("remotes:\n  - prefix: hub/\n    url: http://%s\n", up.addr)), 0o644)
	e := append(envFor(testenv.Postgres(t), testenv.S3(t), "cache"), "REGISTRY_POLICY_FILE="+policyFile)
	e = migrateSplit(t, e)
	if out := mustRegistry(t, e, "proxy", "warm", "hub/lib/app:multi"); !strings.Contains(out, "3 manifests, 4 blobs") {
		t.Errorf("registry proxy warm:\n%s", out)
	}
	if code, _, stderr := registry(t, e, "proxy", "warm", "lib/app:multi"); code == 0 || !strings.Contains(stderr, "under no remote") {
		t.Errorf("warming outside a remote: exit %d\n%s", code, stderr)
	}

	// Upstream gone: the cache serves every platform.
	up.cmd.Process.Kill()
	up.cmd.Wait()
	cache := startPolicyReplicas(t, e, 1)[0]
	if got := strings.TrimSpace(mustCrane(t, "digest", "--insecure", cache.addr+"/hub/lib/app:multi")); got != want {
		t.Errorf("the cached index is %s, want %s", got, want)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		mustCrane(t, "pull", "--insecure", "--platform", "linux/"+arch, cache.addr+"/hub/lib/app:multi", filepath.Join(dir, arch+"-pulled.tar"))
	}

	table := mustRegistry(t, e, "proxy")
	if !strings.Contains(table, "hub/") || !strings.Contains(table, "HIT RATE") {
		t.Errorf("registry proxy:\n%s", table)
	}
	var rows []struct {
		Prefix       string
		Bytes        int64
		Hits, Misses int64
	}
	if err := json.Unmarshal([]byte(mustRegistry(t, e, "proxy", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Bytes < 16<<10 || rows[0].Misses == 0 {
		t.Errorf("registry proxy --json: %+v", rows)
	}
}
