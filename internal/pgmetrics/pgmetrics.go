// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package pgmetrics measures PostgreSQL operations for Prometheus through
// pgx's tracer hook, so that no query site has to remember to.
package pgmetrics

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	duration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "registry_postgres_operation_duration_seconds",
		Help:    "Latency of PostgreSQL statements, by statement kind.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"operation"})
	failures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_postgres_operation_errors_total",
		Help: "PostgreSQL statements that failed, by statement kind (no rows is not a failure).",
	}, []string{"operation"})
)

// Tracer is a pgx.QueryTracer recording every statement's latency and
// failures. Install it as the pool's ConnConfig.Tracer.
type Tracer struct{}

var _ pgx.QueryTracer = Tracer{}

type startKey struct{}

type started struct {
	at time.Time
	op string
}

// TraceQueryStart notes the statement's kind and start time.
func (Tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, startKey{}, started{at: time.Now(), op: operation(data.SQL)})
}

// TraceQueryEnd records the statement.
func (Tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	s, ok := ctx.Value(startKey{}).(started)
	if !ok {
		return
	}
	duration.WithLabelValues(s.op).Observe(time.Since(s.at).Seconds())
	if data.Err != nil && !errors.Is(data.Err, pgx.ErrNoRows) {
		failures.WithLabelValues(s.op).Inc()
	}
}

// operation is the statement's first keyword, lower case: a label with a
// handful of values, never the SQL text.
func operation(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return "other"
	}
	switch op := strings.ToLower(f[0]); op {
	case "select", "insert", "update", "delete", "begin", "commit", "rollback", "with", "create", "alter", "drop":
		return op
	}
	return "other"
}
