// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestBalancerClientAddress runs three replicas with authentication behind
// haproxy with the shipped configuration, the replicas trusting haproxy's
// address (127.0.0.1, from which it connects to them). Linux lets a client
// bind any 127.x.y.z source address, so an attacker dials from 127.0.0.2
// and a user from 127.0.0.3: the attacker's failed logins must lock out
// only the attacker, be audited with its own address, and no client may
// choose the token realm with its Host or X-Forwarded-Host.
func TestBalancerClientAddress(t *testing.T) {
	bin := buildRegistry(t, false)
	c := newCluster(t)
	dir := t.TempDir()
	keyFile, htpasswd := filepath.Join(dir, "token.pem"), filepath.Join(dir, "htpasswd")
	writeTokenKey(t, keyFile)
	hash, err := bcrypt.GenerateFromPassword([]byte(alicePass), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	addrs := [3]string{testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)}
	for i, a := range addrs {
		c.startReplica(t, fmt.Sprintf("r%d", i+1), bin, a,
			"--trusted-proxies", "127.0.0.1/32", "--token-key", keyFile, "--htpasswd-file", htpasswd)
	}
	lb := startBalancer(t, addrs)
	attacker, user := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")

	// Enough failures for every replica (haproxy balances round robin)
	// to count more than its ten a minute, each for another name, and
	// with a forged X-Forwarded-For naming the user's address.
	const failures = 36
	for i := range failures {
		status, _, _ := login(t, attacker, lb.addr, fmt.Sprintf("mallory%d", i), "guess", "127.0.0.3")
		if status != http.StatusUnauthorized && status != http.StatusTooManyRequests {
			t.Fatalf("failed login %d: status %d", i, status)
		}
	}
	// One login per replica: none may hold the attacker against the user.
	for i := range len(addrs) {
		status, body, _ := login(t, user, lb.addr, "alice", alicePass, "")
		if status != http.StatusOK || !strings.Contains(body, `"token"`) {
			t.Fatalf("alice's login %d after the attack: status %d: %s", i, status, body)
		}
	}

	// The audit log names the attacker, not haproxy nor the forged address.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT address, count(*) FROM audit_events WHERE action = 'login.failed' GROUP BY address`)
	if err != nil {
		t.Fatal(err)
	}
	byAddr, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var a string
		var n int
		err := r.Scan(&a, &n)
		return fmt.Sprintf("%s×%d", a, n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(byAddr) != 1 || !strings.HasPrefix(byAddr[0], "127.0.0.2×") {
		t.Errorf("login.failed rows by address: %v, want all from 127.0.0.2", byAddr)
	}
	// So does the request log, with haproxy as the proxy.
	if lines := c.grepLogs([]string{"127.0.0.3:0"}); !strings.Contains(lines, "/token") {
		t.Errorf("no request log line names the user's address 127.0.0.3:\n%s", lines)
	}

	// The realm: a forged Host or X-Forwarded-Host never names where
	// credentials go.
	req, _ := http.NewRequest(http.MethodGet, "http://"+lb.addr+"/v2/", nil)
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	resp, err := user.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `realm="http://127.0.0.1:`) || strings.Contains(challenge, "evil") {
		t.Errorf("GET /v2/ with Host: evil.example: %d, challenge %q; want 401 with a realm on the replica's own address", resp.StatusCode, challenge)
	}
}

// clientFrom is an HTTP client whose connections leave from the local
// address ip.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// login asks the built-in token endpoint at addr for a token, optionally
// with a forged X-Forwarded-For.
func login(t *testing.T, client *http.Client, addr, user, pass, forgedXFF string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/token?service=ha-registry", nil)
	req.SetBasicAuth(user, pass)
	if forgedXFF != "" {
		req.Header.Set("X-Forwarded-For", forgedXFF)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// writeTokenKey writes a new Ed25519 private key for --token-key.
func writeTokenKey(t *testing.T, path string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
