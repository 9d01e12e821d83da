// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package e2e runs the registry end to end in tests: the real store on a
// real PostgreSQL and a real S3 server (from internal/testenv), served over
// real HTTP on loopback, driven by real clients and the OCI conformance
// suite.
package e2e
