// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	mu       sync.Mutex
	cleanups []func()
)

// Run runs the tests of m, then stops every server this process started.
// Use it from TestMain: os.Exit(testenv.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
	return code
}

func atExit(f func()) {
	mu.Lock()
	cleanups = append(cleanups, f)
	mu.Unlock()
}

// missing reports a dependency that is not installed: a failure under CI,
// a skip elsewhere.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (run .ci/install)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var gopathBin = sync.OnceValue(func() string {
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(strings.Split(p, string(os.PathListSeparator))[0], "bin")
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		return filepath.Join(strings.TrimSpace(string(out)), "bin")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "bin")
})

// Tool returns the path of an external program, looked up in PATH and then
// in the Go bin directory, where .ci/install puts the pinned tools.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := lookTool(name); err == nil {
		return p
	}
	missing(t, "%s is not installed", name)
	return ""
}

func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	p := filepath.Join(gopathBin(), name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	return "", fmt.Errorf("%s not found", name)
}

// FreeAddr returns a free "127.0.0.1:port".
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// server is a child process whose output goes to a log file, killed with
// the test process if that dies first.
type server struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func startServer(logPath string, cred *syscall.Credential, name string, args ...string) (*server, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	// The server itself (not a wrapper like runuser) must be the child, so
	// that the death signal reaches it if the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	s := &server{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(s.exited) }()
	return s, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// tail is the end of the server's log, for startup errors.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitFor polls ready until it succeeds or the deadline passes.
func waitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
