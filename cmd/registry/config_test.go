// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"testing"
	"time"
)

// TestDatabaseConfigDefaults checks that what the URL leaves out gets the
// registry's defaults and what it says is kept.
func TestDatabaseConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		url      string
		conns    int32
		deadline time.Duration
	}{
		{"postgres://u@db.example:5432/registry", defaultPoolMaxConns, defaultConnectTimeout},
		{"postgres://u@db.example/registry?pool_max_conns=3&connect_timeout=2", 3, 2 * time.Second},
		{"host=db.example user=u pool_max_conns=40", 40, defaultConnectTimeout},
	} {
		cfg, err := databaseConfig(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if cfg.MaxConns != tc.conns || cfg.ConnConfig.ConnectTimeout != tc.deadline {
			t.Errorf("%s: max conns %d, connect timeout %v; want %d, %v", tc.url, cfg.MaxConns, cfg.ConnConfig.ConnectTimeout, tc.conns, tc.deadline)
		}
	}
	if _, err := databaseConfig("postgres://u@db.example:notaport/x"); err == nil {
		t.Error("a URL with a bad port was accepted")
	}
}

// TestDatabaseSessionDefaults: the registry's sessions ask the server to
// probe a silent peer and to end a transaction left idle, unless the URL
// says otherwise.
func TestDatabaseSessionDefaults(t *testing.T) {
	cfg, err := databaseConfig("postgres://u@db.example/x")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"tcp_keepalives_idle": "30", "idle_in_transaction_session_timeout": "3600000"} {
		if got := cfg.ConnConfig.RuntimeParams[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	cfg, err = databaseConfig("postgres://u@db.example/x?idle_in_transaction_session_timeout=60000")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; got != "60000" {
		t.Errorf("the URL's idle_in_transaction_session_timeout became %q", got)
	}
}
