// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package sdnotify tells systemd what state the service is in, as
// sd_notify(3) does, without linking libsystemd: one datagram of
// newline-separated assignments such as "READY=1" sent to the unix socket
// that systemd names in $NOTIFY_SOCKET when it runs a unit of Type=notify.
//
// A process not started that way has no such variable, and [Notify] does
// nothing. The NixOS module (nix/module.nix) runs `registry serve` as
// Type=notify, so that systemd, and through it `systemctl start` and the
// units ordered after it, learn that the replica serves only once it does
// (after its migrations), and learn at SIGTERM that it is draining.
package sdnotify
