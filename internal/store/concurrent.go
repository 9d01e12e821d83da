// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"sync"
)

// together runs independent S3 writes at once and returns the first
// error, cancelling the others' context on it. S3 is milliseconds away
// from a replica: writes that need not follow each other cost one round
// trip together instead of one each. Writes that must follow each other
// (a tag link only once the manifest it names is stored) are separate
// calls.
func together(ctx context.Context, writes ...func(context.Context) error) error {
	if len(writes) == 1 {
		return writes[0](ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, w := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w(ctx); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}
