// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// policyReplica is a serve process of a policy test.
type policyReplica struct {
	addr string
	cmd  *exec.Cmd
}

// logs is what the replica printed so far (startWaitReady collects it).
func (r policyReplica) logs() string { return r.cmd.Stdout.(*syncBuffer).String() }

// startPolicyReplicas runs n replicas on one database and bucket.
func startPolicyReplicas(t *testing.T, e []string, n int, args ...string) []policyReplica {
	t.Helper()
	var rs []policyReplica
	for range n {
		addr := testenv.FreeAddr(t)
		cmd := exec.Command(binary, append([]string{"serve", "--listen", addr}, args...)...)
		cmd.Env = e
		startWaitReady(t, cmd, addr, "registry")
		rs = append(rs, policyReplica{addr: addr, cmd: cmd})
	}
	return rs
}

func (r policyReplica) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(r.logs(), want); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q; logs:\n%s", r.addr, want, r.logs())
		}
	}
}

// craneOut runs crane and returns its combined output and error.
func craneOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(testenv.Tool(t, "crane"), args...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+filepath.Join(dir, "docker"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustCrane(t *testing.T, args ...string) string {
	t.Helper()
	out, err := craneOut(t, args...)
	if err != nil {
		t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

const cliPolicy = `# quotas and retention of the policy test
quotas:
  - match: "cli/"
    maxBytes: 100KiB
    maxTags: 10
retention:
  - repositories: "cli/**"
    keepTags:
      - pattern: "^v[0-9]"
    deleteUntagged: true
`

// TestPolicyCommands drives quota and retention as an operator would,
// against two running replicas sharing one policy file: a push over the
// quota is refused by either replica; registry quota reports usage;
// retention plan lists exactly what retention apply then removes; kept
// images still pull; a SIGHUP applies an edited file, and a broken one is
// refused while the previous policy stays in force.
func TestPolicyCommands(t *testing.T) {
	ctx := context.Background()
	s3cfg := testenv.S3(t)
	dbURL := testenv.Postgres(t)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(cliPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	e := append(envFor(dbURL, s3cfg, "policy"), "REGISTRY_POLICY_FILE="+policyFile)
	e = migrateSplit(t, e)
	rs := startPolicyReplicas(t, e, 2)
	a, b := rs[0].addr, rs[1].addr

	dir := t.TempDir()
	for _, p := range []struct {
		tag  string
		size int
	}{{"v1", 10 << 10}, {"dev-1", 10 << 10}, {"dev-2", 10 << 10}} {
		layer := filepath.Join(dir, p.tag+".tar")
		writeTar(t, layer, p.tag, p.size)
		mustCrane(t, "append", "--insecure", "-f", layer, "-t", a+"/cli/app:"+p.tag)
	}
	big := filepath.Join(dir, "big.tar")
	writeTar(t, big, "big", 200<<10)
	if out, err := craneOut(t, "append", "--insecure", "-f", big, "-t", b+"/cli/app:big"); err == nil ||
		!strings.Contains(out, "DENIED") || !strings.Contains(out, "quota of cli/ exceeded") {
		t.Fatalf("push over the quota through the second replica: %v\n%s", err, out)
	}

	table := mustRegistry(t, e, "quota")
	if !strings.Contains(table, "MATCH") || !strings.Contains(table, "cli/") || !strings.Contains(table, "100.0 KiB") || !strings.Contains(table, " ok") {
		t.Errorf("registry quota:\n%s", table)
	}
	var rows []struct {
		Match string
		Usage struct{ Bytes, Tags int64 }
		// MaxBytes is the limit.
		MaxBytes *int64
		Exceeded bool
	}
	if err := json.Unmarshal([]byte(mustRegistry(t, e, "quota", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Match != "cli/" || rows[0].Usage.Tags != 3 || rows[0].Usage.Bytes < 30<<10 ||
		rows[0].MaxBytes == nil || *rows[0].MaxBytes != 100<<10 || rows[0].Exceeded {
		t.Errorf("registry quota --json: %+v", rows)
	}
	if out := mustRegistry(t, e, "quota", "recompute"); !strings.Contains(out, "recomputed 1 quota figures") {
		t.Errorf("registry quota recompute:\n%s", out)
	}

	// Age the manifests past the untagged grace, so that the dev images'
	// manifests go with their tags.
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE manifests SET created_at = now() - interval '48 hours'`); err != nil {
		t.Fatal(err)
	}
	plan := mustRegistry(t, e, "retention", "plan")
	if strings.Count(plan, "delete tag cli/app:dev-") != 2 || strings.Count(plan, "delete manifest cli/app@") != 2 ||
		!strings.Contains(plan, `pattern "^v[0-9]" does not match`) || strings.Contains(plan, "cli/app:v1") {
		t.Fatalf("retention plan:\n%s", plan)
	}
	applied := mustRegistry(t, e, "retention", "apply")
	if strings.ReplaceAll(applied, "deleted ", "delete ") != plan {
		t.Errorf("retention apply did other than the plan.\nplan:\n%s\napply:\n%s", plan, applied)
	}
	if out := mustRegistry(t, e, "retention", "plan"); !strings.Contains(out, "delete 0 tags and 0 manifests") {
		t.Errorf("a plan after apply:\n%s", out)
	}
	mustCrane(t, "pull", "--insecure", b+"/cli/app:v1", filepath.Join(dir, "v1.tar"))
	if out, err := craneOut(t, "manifest", "--insecure", a+"/cli/app:dev-1"); err == nil {
		t.Errorf("dev-1 still pulls after apply:\n%s", out)
	}

	// An edit applies on SIGHUP: one tag is all cli/ may have now.
	if err := os.WriteFile(policyFile, []byte(strings.Replace(cliPolicy, "maxTags: 10", "maxTags: 1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		r.cmd.Process.Signal(syscall.SIGHUP)
		r.waitLog(t, `"message":"policy reloaded"`)
	}
	layer := filepath.Join(dir, "v2.tar")
	writeTar(t, layer, "v2", 1<<10)
	for _, r := range rs {
		if out, err := craneOut(t, "append", "--insecure", "-f", layer, "-t", r.addr+"/cli/app:v2"); err == nil || !strings.Contains(out, "1 tags of 1 allowed") {
			t.Errorf("a second tag through %s after the reload: %v\n%s", r.addr, err, out)
		}
	}
	// A broken file is refused whole, saying where; the limit stays.
	if err := os.WriteFile(policyFile, []byte("quotas:\n  - match: cli/\n    maxTags: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs[0].cmd.Process.Signal(syscall.SIGHUP)
	rs[0].waitLog(t, "policy file refused")
	rs[0].waitLog(t, `line 3: quotas[0].maxTags: must be a whole number`)
	if out, err := craneOut(t, "append", "--insecure", "-f", layer, "-t", a+"/cli/app:v2"); err == nil {
		t.Errorf("a push after a refused reload went through; the previous policy should hold:\n%s", out)
	}
	if code, _, stderr := registry(t, e, "quota"); code == 0 || !strings.Contains(stderr, "line 3") {
		t.Errorf("registry quota on a broken file: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestServeAppliesRetention: with --retention-interval, the replicas
// apply retention themselves, one at a time.
func TestServeAppliesRetention(t *testing.T) {
	s3cfg := testenv.S3(t)
	dbURL := testenv.Postgres(t)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(cliPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	e := append(envFor(dbURL, s3cfg, "retention"), "REGISTRY_POLICY_FILE="+policyFile)
	e = migrateSplit(t, e)
	rs := startPolicyReplicas(t, e, 2, "--retention-interval", "300ms")
	layer := filepath.Join(t.TempDir(), "layer.tar")
	writeTar(t, layer, "l", 1<<10)
	mustCrane(t, "append", "--insecure", "-f", layer, "-t", rs[0].addr+"/cli/app:v1")
	mustCrane(t, "append", "--insecure", "-f", layer, "-t", rs[0].addr+"/cli/app:dev")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if tags := tagList(t, rs[1].addr, "cli/app"); len(tags) == 1 && tags[0] == "v1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas never removed the dev tag; tags %v", tagList(t, rs[1].addr, "cli/app"))
		}
	}
	removed := 0
	for _, r := range rs {
		removed += strings.Count(r.logs(), `"tags_removed":1`)
	}
	if removed != 1 {
		t.Errorf("the dev tag was removed %d times across the replicas, want once", removed)
	}
}
