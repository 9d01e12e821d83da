// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// hookReceiver counts the CloudEvents it receives, by id.
type hookReceiver struct {
	mu   sync.Mutex
	seen map[string]int
	subj []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Subject string `json:"subject"`
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &ev); err != nil || r.Header.Get("Content-Type") != "application/cloudevents+json" {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen[ev.ID]++
	h.subj = append(h.subj, ev.Type+" "+ev.Subject)
}

func (h *hookReceiver) counts() (events, deliveries int, subjects []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.seen {
		events++
		deliveries += n
	}
	return events, deliveries, append([]string(nil), h.subj...)
}

// TestServeWithAuth runs two replicas with authentication as an operator
// would: a token from one replica is honoured by the other, crane logs in
// as a user and as a robot, the audit subcommand finds the pushes and a
// refusal, no secret reaches the logs, and a webhook receiver gets every
// push and deletion exactly once although a replica restarts meanwhile.
func TestServeWithAuth(t *testing.T) {
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(dir, "token.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	const alicePass = "correct horse battery staple"
	hash, _ := bcrypt.GenerateFromPassword([]byte(alicePass), bcrypt.MinCost)
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\nbob:"+string(hash)+"\n"), 0o600)
	tok := make([]byte, 32)
	rand.Read(tok)
	robotToken := hex.EncodeToString(tok)
	sum := sha256.Sum256([]byte(robotToken))
	robots := filepath.Join(dir, "robots")
	os.WriteFile(robots, []byte("ci:sha256:"+hex.EncodeToString(sum[:])+"\n"), 0o600)

	hooks := &hookReceiver{seen: map[string]int{}}
	receiver := httptest.NewServer(hooks)
	defer receiver.Close()
	policyFile := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policyFile, []byte(fmt.Sprintf(`
access:
  - repositories: "team/**"
    pull: [alice, ci]
    push: [alice, ci]
    delete: [alice]
webhooks:
  - url: %s/hook
    events: [push, delete]
`, receiver.URL)), 0o644)

	e := append(envFor(testenv.Postgres(t), testenv.S3(t), "auth"),
		"REGISTRY_POLICY_FILE="+policyFile, "REGISTRY_TOKEN_KEY_FILE="+keyFile,
		"REGISTRY_HTPASSWD_FILE="+htpasswd, "REGISTRY_ROBOTS_FILE="+robots, "REGISTRY_LOG_LEVEL=debug")
	e = migrateSplit(t, e)
	rs := startPolicyReplicas(t, e, 2)
	a, b := rs[0].addr, rs[1].addr

	home := func(who string) []string {
		h := filepath.Join(dir, who)
		return []string{"HOME=" + h, "DOCKER_CONFIG=" + filepath.Join(h, "docker")}
	}
	crane := testenv.Tool(t, "crane")
	craneAs := func(who string, args ...string) (string, error) {
		cmd := exec.Command(crane, args...)
		cmd.Env = append(os.Environ(), home(who)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustAs := func(who string, args ...string) string {
		t.Helper()
		out, err := craneAs(who, args...)
		if err != nil {
			t.Fatalf("crane %s as %s: %v\n%s", strings.Join(args, " "), who, err, out)
		}
		return out
	}
	for _, addr := range []string{a, b} {
		mustAs("alice", "auth", "login", addr, "-u", "alice", "-p", alicePass)
		mustAs("ci", "auth", "login", addr, "-u", "ci", "-p", robotToken)
		mustAs("bob", "auth", "login", addr, "-u", "bob", "-p", alicePass)
	}
	// A token from replica a, used at replica b: every replica verifies.
	req, _ := http.NewRequest("GET", "http://"+a+"/token?service=ha-registry&scope=repository:team/app:pull", nil)
	req.SetBasicAuth("alice", alicePass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if code, _ := get(t, "http://"+b+"/v2/", "Authorization", "Bearer "+tr.Token); code != 200 {
		t.Errorf("replica b refused replica a's token: %d", code)
	}

	push := func(who, addr, ref string, n int) {
		t.Helper()
		layer := filepath.Join(dir, fmt.Sprintf("%s-%d.tar", who, n))
		writeTar(t, layer, fmt.Sprintf("f%d", n), 2048)
		mustAs(who, "append", "--insecure", "-f", layer, "-t", addr+"/"+ref)
	}
	push("alice", a, "team/app:v1", 1)
	push("ci", b, "team/app:ci-1", 2)
	if out, err := craneAs("bob", "manifest", "--insecure", a+"/team/app:v1"); err == nil || !strings.Contains(out, "DENIED") {
		t.Errorf("bob read team/app: %v\n%s", err, out)
	}

	// A replica restarts while events flow; none is lost or sent twice.
	rs[0].cmd.Process.Signal(syscall.SIGTERM)
	rs[0].cmd.Wait()
	push("alice", b, "team/app:v2", 3)
	restarted := startPolicyReplicas(t, e, 1)[0]
	mustAs("alice", "auth", "login", restarted.addr, "-u", "alice", "-p", alicePass)
	push("alice", restarted.addr, "team/app:v3", 4)
	mustAs("alice", "delete", "--insecure", b+"/team/app@"+strings.TrimSpace(mustAs("alice", "digest", "--insecure", b+"/team/app:ci-1")))

	const want = 5 // four pushes and a deletion
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if n, _, _ := hooks.counts(); n >= want {
			break
		}
		if time.Now().After(deadline) {
			n, _, subj := hooks.counts()
			t.Fatalf("the receiver got %d events, want %d: %v", n, want, subj)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a redelivery would come within a poll
	if n, deliveries, subj := hooks.counts(); n != want || deliveries != want {
		t.Errorf("the receiver got %d events in %d deliveries, want %d exactly once: %v", n, deliveries, want, subj)
	}

	out := mustRegistry(t, e, "audit", "--repository", "team/app")
	for _, w := range []string{"push", "alice", "ci", "denied", "bob", "manifest.delete", "127.0.0.1", "v3"} {
		if !strings.Contains(out, w) {
			t.Errorf("registry audit lacks %q:\n%s", w, out)
		}
	}
	if out := mustRegistry(t, e, "audit", "--identity", "bob", "--json"); strings.Count(out, "\n") != 1 || !strings.Contains(out, `"action":"denied"`) {
		t.Errorf("registry audit --identity bob --json:\n%s", out)
	}

	// Secrets never reach the logs.
	for _, r := range append(rs[1:], restarted) {
		logs := r.logs()
		for _, secret := range []string{alicePass, robotToken, tr.Token, "eyJ"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log of %s contains a secret (%.8s...)", r.addr, secret)
			}
		}
		if !strings.Contains(logs, `"message":"audit"`) {
			t.Errorf("the log of %s has no audit events", r.addr)
		}
	}
}
