// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The garbage collection metrics, per process: a replica counts the
// passes it ran, so a cluster's totals are the sums over its replicas.
// Dry runs count only as passes.
var (
	passesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_gc_passes_total",
		Help: "Garbage collection passes, by result: completed, failed, skipped (another runner or rebuild-db held the lock) or dry-run.",
	}, []string{"result"})
	removedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_gc_removed_total",
		Help: "What garbage collection removed, by kind: manifest, blob-link, blob, upload, multipart-upload, unknown-object.",
	}, []string{"kind"})
	removedObjects = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_gc_removed_objects_total",
		Help: "Bucket objects garbage collection deleted, by the kind of what they belonged to.",
	}, []string{"kind"})
	removedBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_gc_removed_bytes_total",
		Help: "Bucket bytes garbage collection freed, by kind.",
	}, []string{"kind"})
	keptTotal = promauto.NewCounter(prometheus.CounterOpts{
		Name: "registry_gc_kept_total",
		Help: "Candidates garbage collection left for a later pass: a request held their lock, or they were referenced again.",
	})
	passDuration = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "registry_gc_pass_duration_seconds",
		Help: "Duration of garbage collection passes that ran (not skipped ones).",
		// From an empty registry to a bucket of millions of objects.
		Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
	})
	rebuildRequired = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "registry_gc_rebuild_required",
		Help: "1 when this process's last garbage collection pass found that the database went back in time (a failover, a restore) and deleted nothing by the index: run registry rebuild-db.",
	})
	lastCompleted = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "registry_gc_last_completed_timestamp_seconds",
		Help: "When this process last completed a garbage collection pass (Unix time).",
	})
)

// record counts a pass in the metrics.
func record(s Summary, err error) {
	switch {
	case s.Skipped != "":
		passesTotal.WithLabelValues("skipped").Inc()
		return
	case s.DryRun:
		passesTotal.WithLabelValues("dry-run").Inc()
		return
	case err != nil:
		passesTotal.WithLabelValues("failed").Inc()
	default:
		passesTotal.WithLabelValues("completed").Inc()
		lastCompleted.Set(float64(time.Now().Unix()))
	}
	passDuration.Observe(s.Duration.Seconds())
	recordRemovals(s)
}

// recordRemovals counts what a pass, or an upload expiry, removed.
func recordRemovals(s Summary) {
	keptTotal.Add(float64(s.Kept))
	for _, it := range s.Removed {
		removedTotal.WithLabelValues(string(it.Kind)).Inc()
		removedObjects.WithLabelValues(string(it.Kind)).Add(float64(len(it.Objects)))
		removedBytes.WithLabelValues(string(it.Kind)).Add(float64(it.Bytes))
	}
}
