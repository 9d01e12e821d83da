// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package s3store is the registry's only door to S3: the HTTP layer and the
// business logic call it and never import the AWS SDK.
//
// [Layout] names the keys. The bucket uses CNCF distribution's layout under
// an optional root prefix, so a bucket written by distribution's S3 driver
// can be adopted and the other way round, and so the metadata database can
// be rebuilt from the bucket alone ([Layout.ParseKey]). The tree is drawn
// once, at the top of paths.go.
//
// [Store] moves bytes: streamed puts and ranged gets, multipart uploads,
// server-side copies (multipart above 5 GiB), listing, prefix deletes and
// presigned URLs. Missing keys come back as [ErrNotFound]. Every S3 call is
// retried by the SDK's standard retryer (refused and dropped connections,
// 5xx, throttling; capped exponential backoff with full jitter, retry.go)
// where the SDK can repeat it: [Store.PutObject] with a body that cannot
// seek fails at once instead (the registry's uploads send parts held in
// memory, which can). What still fails because S3 is down
// or overloaded comes back as [ErrUnavailable]. Every call is timed in the
// registry_s3_operation_duration_seconds histogram; failures that are not
// "not found" count in registry_s3_operation_errors_total.
//
// Bodies are sent with UNSIGNED-PAYLOAD, so a stream need not be read twice
// to be signed, and the SDK's optional CRC checksums are switched off, which
// some S3-compatible servers reject.
package s3store
