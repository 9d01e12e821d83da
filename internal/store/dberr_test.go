// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ha-registry/ha-registry/registry"
)

// TestDBErrServerUnavailable: what PostgreSQL says while it shuts down,
// fails over or refuses writes as a standby is UNAVAILABLE (503, retry),
// and a statement's own error stays what it is.
func TestDBErrServerUnavailable(t *testing.T) {
	for code, want := range map[string]bool{
		"57P01": true,  // admin_shutdown: terminated by a failover
		"57P02": true,  // crash_shutdown
		"57P03": true,  // cannot_connect_now: starting up
		"25006": true,  // read_only_sql_transaction: a standby
		"08006": true,  // connection_failure
		"08P01": true,  // protocol_violation
		"53300": true,  // too_many_connections
		"23505": false, // unique_violation: ours to handle
		"42P01": false, // undefined_table: a bug, not an outage
	} {
		err := dbErr(fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "x"}))
		if got := errors.Is(err, registry.ErrUnavailable); got != want {
			t.Errorf("SQLSTATE %s: unavailable = %v, want %v", code, got, want)
		}
	}
}
