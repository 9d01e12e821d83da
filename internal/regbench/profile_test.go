// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestProfile runs one workload against a registry in this process, so
// that go test's -cpuprofile and -memprofile see the registry's side:
//
//	REGBENCH_PROFILE=manifest-get-tag REGBENCH_CLIENTS=32 go test -run TestProfile \
//	    -cpuprofile cpu.prof -o regbench.test ./internal/regbench
//	go tool pprof -top regbench.test cpu.prof
//
// The client runs in the same process; its share shows under
// internal/regbench and net/http.(*Transport).
func TestProfile(t *testing.T) {
	name := os.Getenv("REGBENCH_PROFILE")
	if name == "" {
		t.Skip("set REGBENCH_PROFILE to a workload to profile it")
	}
	w, ok := WorkloadByName(name)
	if !ok {
		t.Fatalf("no workload %q", name)
	}
	clients, _ := strconv.Atoi(envDefault("REGBENCH_CLIENTS", "8"))
	duration, err := time.ParseDuration(envDefault("REGBENCH_DURATION", "8s"))
	if err != nil {
		t.Fatal(err)
	}
	streamed, redirected, s3 := registries(t)
	cfg := DefaultConfig
	cfg.BlobSize = 16 << 20
	fx, err := Prepare(t.Context(), NewTarget("ours", streamed, 0), s3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if name == "pull-redirected" {
		fx = fx.WithTarget(NewTarget("ours-redirect", redirected, 0))
	}
	r := Run(t.Context(), w.Op(fx), RunOptions{Clients: clients, Duration: duration})
	r.Workload, r.Target = name, "ours"
	WriteResult(os.Stdout, r)
}
