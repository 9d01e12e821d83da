// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package registry is the OCI distribution contract of ha-registry: the
// spec's error codes and the one table mapping them to HTTP statuses, the
// media types, the rules for repository names, tags and digests, the
// manifest parser, and the storage interfaces the HTTP layer serves from,
// with what the layers wrapping a store share: [Layer], the refusing base
// [Undecided], and [Ability] to find an optional ability through them.
//
// It depends on nothing else of ours, so that the HTTP layer, the S3 and
// PostgreSQL adapters, rebuild-db and GC all agree on one vocabulary without
// importing each other.
package registry
