// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/pglock"
)

// Garbage collection deletes objects under the same advisory locks the
// writers of those objects hold, taken as session locks so that they can
// outlast the transaction that deletes the rows (see package gc). These
// are the keys; writers take them through lockDigest and lockTags.

// DigestLockKey is the advisory lock key that every creation and removal
// of d's blob object and of its links holds ([LockDigest]).
func DigestLockKey(d digest.Digest) int64 {
	return pglock.Key(pglock.NamespaceDigest, d.String())
}

// TagLockKey is the advisory lock key a push or deletion of tag in repo
// holds while it changes the tag's links and row ([LockTags]).
func TagLockKey(repo, tag string) int64 {
	return pglock.Key(pglock.NamespaceRepository, repo+":"+tag)
}
