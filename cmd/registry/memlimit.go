// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync"

	"github.com/rs/zerolog"
)

// The memory a replica may use: a base, and a share for each upload it
// streams at once (one S3 part of 5 MiB, the copy buffers, the staged tail
// on its way to PostgreSQL, and room). The targets of docs/performance.md
// are 64 MiB and 8 MiB per upload of resident memory; the base here is 16
// MiB lower because the Go runtime's limit does not count what the
// process maps besides its heap and stacks (the binary's code and data).
const (
	budgetBaseMiB      = 48
	budgetPerUploadMiB = 8
)

// memoryLimit sets the soft memory limit of the Go runtime for serve.
// Without a limit the heap grows to twice what is live before a
// collection, and a replica pushing large blobs holds on to hundreds of
// MiB it no longer uses. limitMiB, when set, is a fixed limit; so is
// GOMEMLIMIT, which wins, as the Go runtime documents. Otherwise the limit
// follows the uploads in flight: the returned function, for
// store.Config.Streaming, is told as each begins and ends. It is nil when
// the limit is fixed.
func memoryLimit(limitMiB int, log zerolog.Logger) (func(delta int), error) {
	if limitMiB < 0 {
		return nil, fmt.Errorf("--memory-limit may not be negative, not %d", limitMiB)
	}
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		log.Info().Str("GOMEMLIMIT", env).Msg("memory limit from the environment")
		return nil, nil
	}
	if limitMiB > 0 {
		debug.SetMemoryLimit(int64(limitMiB) << 20)
		log.Debug().Int("memory_limit_mib", limitMiB).Msg("soft memory limit set")
		return nil, nil
	}
	b := &memoryBudget{}
	b.streaming(0)
	return b.streaming, nil
}

// memoryBudget keeps the soft limit at the budget for the uploads in
// flight. The lock makes each limit the one for the count it was set with:
// without it a request that ended could set a smaller limit after one that
// began had set a larger.
type memoryBudget struct {
	mu      sync.Mutex
	uploads int
}

func (b *memoryBudget) streaming(delta int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.uploads += delta
	debug.SetMemoryLimit(int64(budgetBaseMiB+budgetPerUploadMiB*max(b.uploads, 0)) << 20)
}
