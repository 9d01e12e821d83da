// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package webhook tells HTTP endpoints of pushes and deletions, as
// CloudEvents 1.0 in structured mode, through a transactional outbox.
//
// A write that changes the registry calls [Enqueue] in its own
// transaction: one row of the webhook_outbox table per webhook that
// wants the event, holding the CloudEvent and the URL. The rows commit
// with the change or not at all, so a crash loses no event and a
// rolled-back write reports none.
//
// Every replica runs a [Deliverer]. A round claims due rows with
// SELECT ... FOR UPDATE SKIP LOCKED, POSTs each, and records the outcome
// in the same transaction, so the row locks, held across the POST,
// make exactly one replica send each row. A failed POST is retried with
// a growing backoff until [Deliverer.MaxAttempts], then the row is
// marked failed and kept for inspection.
//
// Delivery is at least once: a replica that dies after a receiver
// answered but before its transaction commits leaves the row due, and
// another replica sends it again. Each row's CloudEvent id is unique per
// event and webhook, and stays the same across retries, so receivers
// deduplicate by id.
//
// The outbox stores the event as jsonb, which does not keep the key
// order or spacing of the JSON [CloudEvent] produced: the body sent is
// the same JSON object, in the compact form PostgreSQL's key order gives.
package webhook
