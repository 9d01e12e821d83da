// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package regbench measures an OCI registry and the S3 server under it:
// blob pushes and pulls, manifest reads, listings, at several concurrency
// levels, with throughput, latency percentiles and the registry process's
// peak memory. cmd/regbench is its command line; `make bench-compare` runs
// it against this registry and CNCF distribution side by side
// (docs/performance.md).
//
// A [Workload] prepares its content on a [Target] once, then its operation
// runs from many clients at once for a while ([Run]). Workloads speak only
// HTTP to the registry, so any registry can be measured; the S3 baselines
// ([S3GetWorkload], [S3MultipartWorkload]) go straight to the bucket with
// this module's S3 client.
package regbench
