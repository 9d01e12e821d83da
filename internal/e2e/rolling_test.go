// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestRollingUpgrade is an upgrade as operators run it: three replicas of
// one release behind haproxy (the shipped deploy/haproxy/haproxy.cfg),
// clients pushing and pulling without pause, and each replica in turn
// stopped with SIGTERM and replaced on its port by the next release, whose
// first start applies a new migration while the old replicas keep serving
// on the new schema.
//
// Required: not one failed client request, and every image pushed
// pullable byte for byte afterwards. Chunked uploads land on different
// replicas, old and new, within one session.
func TestRollingUpgrade(t *testing.T) {
	current := buildRegistry(t, false)
	next := buildRegistry(t, true)
	c := newCluster(t)

	const (
		clients = 8
		minLoad = 60 * time.Second
		// Time between rolls, and before the first: every replica, old
		// and new, serves a fair share of the load.
		settle = 8 * time.Second
	)
	addrs := [3]string{testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)}
	var live [3]*replica
	for i := range live {
		live[i] = c.startReplica(t, fmt.Sprintf("r%d", i+1), current, addrs[i])
	}
	lb := startBalancer(t, addrs)

	l := newLoadgen("http://"+lb.addr, clients)
	ctx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	start := time.Now()
	go func() { l.run(ctx, clients); close(loadDone) }()
	// A fatal error below still lets the clients finish their images
	// before the replicas go away under them.
	t.Cleanup(func() { stopLoad(); <-loadDone })

	chunksServed := map[string]float64{}
	time.Sleep(settle)
	for i, old := range live {
		server := fmt.Sprintf("r%d", i+1)
		chunksServed[old.name] = old.chunkRequests(t)

		from := time.Now()
		old.signal(t, syscall.SIGTERM)
		checkDraining(t, old)
		// haproxy must have taken the replica out before it stops
		// accepting connections, or requests would meet a closed port.
		down := lb.waitServer(t, server, "DOWN", drainDelay)
		code := old.waitExit(t, drainDelay+shutdownTimeout+10*time.Second)
		exited := time.Now()
		if code != 0 {
			t.Errorf("%s exited with code %d after SIGTERM, want 0", old.name, code)
		}
		if !refusesConnections(old.addr) {
			t.Errorf("%s exited but its port still accepts connections", old.name)
		}

		live[i] = c.startReplica(t, server+"-next", next, addrs[i])
		up := lb.waitServer(t, server, "UP", 30*time.Second)
		l.restart(from, up)
		if !logContains(t, live[i], "version=next") {
			t.Errorf("%s does not log version=next: not the upgrade build?", live[i].name)
		}
		// The first new replica migrates, under load, while the old ones
		// serve on; the others find nothing left to do.
		if migrated := logContains(t, live[i], "database migrated"); migrated != (i == 0) {
			t.Errorf("%s logged a migration: %v, want %v", live[i].name, migrated, i == 0)
		}
		t.Logf("rolled %s: out of haproxy %v after SIGTERM, exited after %v, replacement in haproxy %v after that",
			server, down.Sub(from).Round(time.Millisecond), exited.Sub(from).Round(time.Millisecond), up.Sub(exited).Round(time.Millisecond))
		if i < len(live)-1 {
			time.Sleep(settle)
		}
	}
	// The last replacement, too, must serve a fair share.
	time.Sleep(max(minLoad-time.Since(start), settle))
	stopLoad()
	<-loadDone
	loadTime := time.Since(start)
	for _, r := range live {
		chunksServed[r.name] = r.chunkRequests(t)
	}

	f := l.figures()
	t.Logf("load: %d clients for %v, %d images pushed and pulled: %v", clients, loadTime.Round(time.Second), len(l.images), f)
	t.Logf("chunks (PATCH answered 202) served, per replica process: %v", chunksServed)
	if f.failures > 0 {
		l.report(t, c)
	}
	// haproxy's own books: what it answered, and how often it had to
	// retry a connection to a replica (which hides nothing from the
	// figures above, but a drain that works leaves it none to do).
	fe, be := lb.statsRow(t, "registry", "FRONTEND"), lb.statsRow(t, "replicas", "BACKEND")
	t.Logf("haproxy: %s requests, %s answered 2xx, %s 4xx, %s 5xx; %s connection retries, %s redispatched",
		fe["req_tot"], fe["hrsp_2xx"], fe["hrsp_4xx"], fe["hrsp_5xx"], be["wretr"], be["wredis"])
	if fe["hrsp_5xx"] != "0" {
		t.Errorf("haproxy answered %s requests with 5xx", fe["hrsp_5xx"])
	}
	if len(l.images) < clients {
		t.Errorf("only %d images pushed in %v", len(l.images), loadTime)
	}
	for name, n := range chunksServed {
		if n == 0 {
			t.Errorf("replica %s served no chunk", name)
		}
	}
	spread, total := 0, 0
	for _, n := range c.uploadSpread(t) {
		total++
		if n > 1 {
			spread++
		}
	}
	t.Logf("upload sessions whose chunks and commit were answered by more than one replica: %d of %d", spread, total)
	if total == 0 || spread*2 < total {
		t.Errorf("only %d of %d upload sessions crossed replicas; the balancer pins sessions?", spread, total)
	}

	// Afterwards: every image, every byte, through the balancer.
	verify := newLoadgen("http://"+lb.addr, clients)
	verify.images = l.images
	verify.pullAll(clients)
	vf := verify.figures()
	t.Logf("verification: every image pulled again by tag and digest, layers compared byte for byte: %v", vf)
	if vf.failures > 0 {
		verify.report(t, c)
	}

	// The first replacement applied the next release's migration while
	// the old release served on.
	if v, want := c.schemaVersion(t), schema.Latest()+1; v != want {
		t.Errorf("schema version after the upgrade is %d, want %d (the upgradetest build's migration after this release's newest)", v, want)
	}
}

// checkDraining checks what SIGTERM does first: /readyz fails at once,
// while the replica still answers requests.
func checkDraining(t *testing.T, r *replica) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Second)
	for {
		resp, err := client.Get("http://" + r.addr + "/readyz")
		if err != nil {
			t.Fatalf("%s /readyz after SIGTERM: %v", r.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s /readyz still %d a second after SIGTERM, want 503", r.name, resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := client.Get("http://" + r.addr + "/v2/")
	if err != nil {
		t.Fatalf("%s /v2/ while draining: %v", r.name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /v2/ while draining: %d, want 200", r.name, resp.StatusCode)
	}
}

// logContains reports whether the replica's log holds s.
func logContains(t *testing.T, r *replica, s string) bool {
	t.Helper()
	return strings.Contains(readLog(r.log), s)
}
