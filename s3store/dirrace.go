// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"context"
	"time"
)

// S3 has no directories, but versitygw's posix backend (the server the
// tests and `make run` use) keeps keys as files in directories and
// removes a directory that a delete leaves empty. A put into that
// directory at that moment fails with 409 ExistingObjectIsDirectory.
// Garbage collection deletes next to pushes all the time, so the writes
// the registry makes from bytes in memory are sent again on that answer,
// a few times. S3 itself never gives it.
const dirRaceAttempts = 5

// retryDirRace runs write until it succeeds, fails otherwise, or met the
// directory race dirRaceAttempts times.
func retryDirRace(ctx context.Context, write func() error) error {
	for attempt := 1; ; attempt++ {
		err := write()
		if attempt == dirRaceAttempts || apiErrorCode(err) != "ExistingObjectIsDirectory" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}
