// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package scan scans stored images for known vulnerabilities
// (docs/scan.md): it exports an image from the registry as an archive,
// runs a [Scanner] on it (OSV-Scanner first), keeps a summary and the
// findings in the index and the full report in the bucket, as an OCI
// artifact whose subject is the scanned manifest, and enforces the
// policy file's pull rules on the results with [Gate], a layer of the
// serving chain (internal/chain). Work is shared across replicas
// through leases on queue rows.
package scan
