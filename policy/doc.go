// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package policy is the registry's policy file and what it decides:
// byte and tag quotas per namespace or repository, and which tags and
// untagged manifests retention removes.
//
// The file is YAML, loaded by every replica (serve --policy-file) and by
// the quota and retention subcommands, and re-read by serve on SIGHUP. A
// file with any error is refused whole, with every error listed by line
// and key, so a replica never runs half of a policy. The file lives
// outside the database on purpose: it survives registry rebuild-db, and
// a NixOS module can render it.
//
// The package decides; it stores nothing. Quota figures are kept and
// enforced by the index (internal/store), and retention removes through
// a [RetentionIndex] that the index implements, so this package depends
// on neither PostgreSQL nor S3.
package policy
