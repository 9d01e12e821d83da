// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// listen opens a datagram socket at name, as systemd does for a unit, and
// returns a function that reads the next datagram sent to it.
func listen(t *testing.T, name string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listening on %q: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading the notification: %v", err)
		}
		return string(buf[:n])
	}
}

// shortDir is a temporary directory whose path leaves room in the 108
// bytes of a unix socket address.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestNotify(t *testing.T) {
	names := map[string]string{"path": filepath.Join(shortDir(t), "notify")}
	if runtime.GOOS == "linux" {
		names["abstract"] = fmt.Sprintf("@ha-registry-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	for kind, name := range names {
		t.Run(kind, func(t *testing.T) {
			next := listen(t, name)
			t.Setenv(SocketEnv, name)
			for _, state := range []string{Ready, Stopping, Ready + "\nSTATUS=serving"} {
				sent, err := Notify(state)
				if err != nil || !sent {
					t.Fatalf("Notify(%q) = %v, %v; want true, nil", state, sent, err)
				}
				if got := next(); got != state {
					t.Errorf("systemd got %q, want %q", got, state)
				}
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv(SocketEnv, "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("Notify without $%s = %v, %v; want false, nil", SocketEnv, sent, err)
	}
}

func TestNotifyErrors(t *testing.T) {
	for name, socket := range map[string]string{
		"no socket there":     filepath.Join(shortDir(t), "absent"),
		"unsupported address": "vsock:2:1234",
		"relative path":       "notify",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(SocketEnv, socket)
			sent, err := Notify(Ready)
			if sent || err == nil {
				t.Fatalf("Notify to %q = %v, %v; want false and an error", socket, sent, err)
			}
			if !strings.HasPrefix(err.Error(), "sdnotify: ") {
				t.Errorf("error %q does not say where it comes from", err)
			}
		})
	}
}
