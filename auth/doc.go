// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package auth authenticates and authorizes registry requests with the
// Docker token flow (docs/auth.md): identities from an htpasswd file and
// a robots file, tokens signed by the built-in endpoint or a trusted
// external token service and verified by every replica, and a [Gate]
// that decides each request from its token and the policy file's access
// rules. It holds no state but a per-replica login throttle, and depends
// on neither PostgreSQL nor S3.
package auth
