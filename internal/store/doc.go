// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package store implements [registry.Store] on S3 (through s3store) and
// PostgreSQL: the bucket holds every byte in CNCF distribution's layout and
// is the source of truth; PostgreSQL indexes it and coordinates replicas.
//
// Writes go to S3 first and to the index second, inside the transaction that
// holds the locks, so the index never names an object the bucket lacks.
// Deletions remove the index rows first. Upload sessions live entirely in
// PostgreSQL (multipart id, part ETags, staged bytes below one part, hash
// state), so any replica continues any upload and a finished upload cannot
// be destroyed by a late request: every change to a session happens under
// its row lock, and finishing deletes the row.
package store
