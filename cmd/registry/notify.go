// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/sdnotify"
)

// notifyReady tells systemd, when it runs serve as a Type=notify unit,
// that the replica accepts requests.
func notifyReady(log zerolog.Logger) { notifySystemd(log, sdnotify.Ready) }

// notifyStopping tells systemd that the replica has begun to drain.
func notifyStopping(log zerolog.Logger) { notifySystemd(log, sdnotify.Stopping) }

// notifySystemd sends state to systemd. A failure is logged, never fatal:
// the registry serves the same either way.
func notifySystemd(log zerolog.Logger, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		log.Warn().Err(err).Str("state", state).Msg("could not notify systemd")
	}
}
