// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/store"
	oci "github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/registry/httpapi"
)

// The defaults of the limits on slow and greedy clients (README, "Limits").
const (
	defaultBodyMinRate    = 1024
	defaultUploadConnWait = 5 * time.Second
	// The bound of manifest bodies in flight, by default a share of the
	// memory limit the replica starts with, between one largest manifest
	// and maxManifestMemory.
	manifestMemoryShare = 4
	maxManifestMemory   = 256 << 20
)

func limitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Int64Flag{Name: "body-min-rate", Value: defaultBodyMinRate, EnvVars: []string{"REGISTRY_BODY_MIN_RATE"},
			Usage: "fail a request whose body arrives slower than this many bytes/s on average over --body-rate-window (0: no minimum)"},
		&cli.DurationFlag{Name: "body-rate-window", Value: httpapi.DefaultBodyRateWindow, EnvVars: []string{"REGISTRY_BODY_RATE_WINDOW"},
			Usage: "the window over which --body-min-rate is averaged"},
		&cli.DurationFlag{Name: "upload-conn-wait", Value: defaultUploadConnWait, EnvVars: []string{"REGISTRY_UPLOAD_CONN_WAIT"},
			Usage: "how long an upload waits for one of --upload-conns before it is answered 429 with Retry-After (0: no bound)"},
		&cli.DurationFlag{Name: "upload-lock-timeout", Value: store.DefaultSessionLockTimeout, EnvVars: []string{"REGISTRY_UPLOAD_LOCK_TIMEOUT"},
			Usage: "how long a request waits for another request on the same upload session (a hung replica's, say) before it is answered 429 with Retry-After"},
		&cli.IntFlag{Name: "upload-conns-per-client", EnvVars: []string{"REGISTRY_UPLOAD_CONNS_PER_CLIENT"},
			Usage: "uploads one user, robot or anonymous address may have in flight on a replica; more are answered 429 (0: half of --upload-conns)"},
		&cli.IntFlag{Name: "manifest-memory", EnvVars: []string{"REGISTRY_MANIFEST_MEMORY"},
			Usage: "MiB that manifest bodies being pushed may hold on a replica; more are answered 429 (0: a quarter of the memory limit, 4 to 256)"},
	}
}

// limits are the serve flags' limits on slow and greedy clients.
type limits struct {
	bodyMinRate      int64
	bodyRateWindow   time.Duration
	uploadConnWait   time.Duration
	uploadLockWait   time.Duration
	uploadsPerClient int
	manifestMemory   int64
}

// readLimits checks the limit flags and fills in their defaults. It reads
// the memory limit, so it runs after [memoryLimit] has set it.
func readLimits(c *cli.Context) (limits, error) {
	l := limits{
		bodyMinRate:      c.Int64("body-min-rate"),
		bodyRateWindow:   c.Duration("body-rate-window"),
		uploadConnWait:   c.Duration("upload-conn-wait"),
		uploadLockWait:   c.Duration("upload-lock-timeout"),
		uploadsPerClient: c.Int("upload-conns-per-client"),
		manifestMemory:   int64(c.Int("manifest-memory")) << 20,
	}
	switch {
	case l.bodyMinRate < 0:
		return l, fmt.Errorf("--body-min-rate may not be negative, not %d", l.bodyMinRate)
	case l.bodyRateWindow <= 0:
		return l, fmt.Errorf("--body-rate-window must be above zero, not %s", l.bodyRateWindow)
	case l.uploadConnWait < 0:
		return l, fmt.Errorf("--upload-conn-wait may not be negative, not %s", l.uploadConnWait)
	case l.uploadLockWait <= 0:
		return l, fmt.Errorf("--upload-lock-timeout must be above zero, not %s", l.uploadLockWait)
	case l.uploadsPerClient < 0:
		return l, fmt.Errorf("--upload-conns-per-client may not be negative, not %d", l.uploadsPerClient)
	case l.manifestMemory < 0:
		return l, fmt.Errorf("--manifest-memory may not be negative, not %d", c.Int("manifest-memory"))
	case l.manifestMemory > 0 && l.manifestMemory < oci.MaxManifestSize:
		return l, fmt.Errorf("--manifest-memory must hold one manifest of %d MiB at least", oci.MaxManifestSize>>20)
	}
	if l.uploadsPerClient == 0 {
		l.uploadsPerClient = max(c.Int("upload-conns")/2, 1)
	}
	if l.manifestMemory == 0 {
		// SetMemoryLimit(-1) reads the limit in force: --memory-limit's,
		// GOMEMLIMIT's, or the budget's for no uploads in flight.
		l.manifestMemory = min(max(debug.SetMemoryLimit(-1)/manifestMemoryShare, oci.MaxManifestSize), maxManifestMemory)
	}
	return l, nil
}
