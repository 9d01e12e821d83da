// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package pglock provides PostgreSQL advisory locks, the cluster's one
// coordination primitive: replicas share no memory, so whatever must happen
// once at a time (migrations, committing a digest, background jobs)
// serializes on a lock in the database every replica already talks to.
//
// Keys are derived in one way only, [Key], from a [Namespace] and a name:
// the namespace takes the top 16 bits of the 64-bit key and a hash of the
// name the low 48, so keys of different uses never collide. Two names of one
// namespace may hash alike; that only serializes them more than needed.
//
// Transaction-level locks ([XactLock], [TryXactLock]) end with their
// transaction and are the default. Session-level locks ([Acquire],
// [TryAcquire]) pin a pooled connection; when that connection dies the lock
// is reported lost on [SessionLock.Lost], never assumed still held.
package pglock
