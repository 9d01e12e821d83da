// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// States the registry reports, as sd_notify(3) spells them.
const (
	// Ready says start-up has finished: the replica accepts requests.
	Ready = "READY=1"
	// Stopping says the replica has begun to drain and will exit.
	Stopping = "STOPPING=1"
)

// SocketEnv is the variable in which systemd names its notification socket.
const SocketEnv = "NOTIFY_SOCKET"

// Notify sends state (one or more newline-separated assignments, such as
// [Ready]) to the socket named by $NOTIFY_SOCKET. It reports whether it
// sent anything: without the variable it does nothing and returns false
// and no error. The name is a path, or an abstract socket when it begins
// with "@"; other kinds of address (systemd's vsock:) are an error.
func Notify(state string) (bool, error) {
	name := os.Getenv(SocketEnv)
	if name == "" {
		return false, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return false, fmt.Errorf("sdnotify: $%s=%q: only unix socket paths and abstract names are supported", SocketEnv, name)
	}
	// On Linux, Go maps a leading "@" to the abstract namespace's NUL.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: sending %q: %w", state, err)
	}
	return true, nil
}
