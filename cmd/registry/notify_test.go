// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestServeNotifiesSystemd runs serve as systemd runs a Type=notify unit
// (the NixOS module's): READY=1 comes once migrations are done and the
// replica answers, STOPPING=1 as soon as SIGTERM starts the drain.
func TestServeNotifiesSystemd(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func(within time.Duration) string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(within))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification within %v: %v", within, err)
		}
		return string(buf[:n])
	}

	addr := testenv.FreeAddr(t)
	cmd := exec.Command(binary, "serve", "--migrate", "--listen", addr, "--drain-delay", "1s")
	cmd.Env = append(env(t), "NOTIFY_SOCKET="+socket)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	if got := next(30 * time.Second); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1; logs:\n%s", got, logs.String())
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("/readyz right after READY=1: %d %s", code, body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if got := next(5 * time.Second); got != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	if code, _ := get(t, "http://"+addr+"/readyz"); code != 503 {
		t.Errorf("/readyz after STOPPING=1: %d, want 503", code)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
}
