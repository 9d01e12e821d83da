// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are labelled by S3 API call (PutObject, UploadPartCopy, …), one
// observation per call including its retries, so a slow or failing S3
// shows up as the request kind that suffers.
var (
	operationDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "registry_s3_operation_duration_seconds",
		Help: "Duration of S3 API calls, retries included; for GetObject until the response headers.",
		// From a HEAD on a local server to a multi-GiB part copy.
		Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"operation"})
	operationErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_s3_operation_errors_total",
		Help: "S3 API calls that failed after retries; missing keys and cancelled requests are not counted.",
	}, []string{"operation"})
	storageFullErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_s3_storage_full_total",
		Help: "S3 writes refused for want of room (a full disk or a bucket quota), by S3 API call: alert on any.",
	}, []string{"operation"})
)

// observe records one call; use it as `defer observe(op, time.Now(), &err)`.
// A missing key is an answer, not a failure, and a cancelled context means
// our client went away, not that S3 misbehaved.
func observe(op string, start time.Time, errp *error) {
	operationDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	err := *errp
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	// For HeadBucket a 404 means the configured bucket is gone: that is
	// exactly the failure an operator must see.
	if op != "HeadBucket" && (errors.Is(err, ErrNotFound) || isNotFound(err)) {
		return
	}
	operationErrors.WithLabelValues(op).Inc()
	if errors.Is(err, ErrStorageFull) {
		storageFullErrors.WithLabelValues(op).Inc()
	}
}
