// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/registry"
)

// The HTTP metrics. Labels are bounded: route is the parsed kind, method is
// one of the methods we route (or "other"), status is a status code, code
// an error code of the spec.
var (
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_http_requests_total",
		Help: "HTTP requests answered, by route, method and status.",
	}, []string{"route", "method", "status"})

	requestDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "registry_http_request_duration_seconds",
		Help: "Time from request to the end of the response, by route and method.",
		// Blob transfers take minutes; manifest reads milliseconds.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	}, []string{"route", "method"})

	requestBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_http_request_bytes_total",
		Help: "Request body bytes received (blob and manifest uploads), by route.",
	}, []string{"route"})

	responseBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_http_response_bytes_total",
		Help: "Response body bytes sent (blob and manifest downloads), by route.",
	}, []string{"route"})

	errorsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_http_errors_total",
		Help: "Error responses, by OCI error code.",
	}, []string{"code"})

	degradedGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "registry_degraded",
		Help: "1 while the last readiness probe found the dependency away and the replica serving without it.",
	}, []string{"dependency"})
)

// degradable are the dependencies a replica serves without, so that the
// gauge shows each at 0 before it is ever away.
var degradable = []string{"s3"}

// setDegraded records the last readiness probe's finding (nil: whole).
func setDegraded(d *registry.DegradedError) {
	for _, dep := range degradable {
		v := 0.0
		if d != nil && d.Dependency == dep {
			v = 1
		}
		degradedGauge.WithLabelValues(dep).Set(v)
	}
}

// statusClientClosed is recorded (never sent) when the client went away
// before we answered, as nginx does, so such requests are not counted as
// server errors.
const statusClientClosed = 499

// exchange is what the log line and the metrics need to know of one
// request; the handlers fill in route and repo once the path is parsed.
type exchange struct {
	id    string
	route string
	repo  string
	// caller is the authenticated user or robot, "" when anonymous or
	// when authentication is off.
	caller string
	// log carries the request id into handler and error logs.
	log zerolog.Logger
}

type exchangeKey struct{}

// exchangeFrom returns the request's exchange; requests that did not come
// through [Server.ServeHTTP] (none do in production) get a throwaway one.
func exchangeFrom(ctx context.Context) *exchange {
	if x, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		return x
	}
	return &exchange{route: "unknown", log: zerolog.Nop()}
}

// recorder remembers the status and counts the body bytes of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// wroteHeader reports whether the status line is gone, after which an
// error can only be logged.
func (w *recorder) wroteHeader() bool { return w.status != 0 }

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines for long blob transfers).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts request body bytes as the handler reads them, and
// gives every read idle time to arrive: the deadline moves on with each
// read, so a large body streams for as long as bytes keep coming. With a
// minimum rate ([bodyRate]), a read may also wait no longer than the
// rate's window allows, and a body that falls below it fails.
type countingBody struct {
	io.ReadCloser
	n    int64
	eof  bool // the body ended
	cut  bool // a read failed: what follows is not to be waited for
	rc   *http.ResponseController
	idle time.Duration
	rate *rateMeter // nil: no minimum rate
}

func (b *countingBody) Read(p []byte) (int, error) {
	wait, byRate := b.idle, false
	if b.rate != nil {
		if left := b.rate.left(); left < wait {
			wait, byRate = left, true
		}
	}
	start := time.Now()
	// Writers that cannot set deadlines (tests' recorders) go without.
	_ = b.rc.SetReadDeadline(start.Add(wait))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	b.eof = b.eof || err == io.EOF
	if b.rate != nil && (b.rate.read(time.Since(start), n) || byRate && isDeadline(err)) {
		b.cut = true
		return n, b.rate.tooSlow()
	}
	b.cut = b.cut || err != nil && err != io.EOF
	return n, err
}

// drain bounds what is left after the handler: net/http reads a body the
// handler left unread before it answers, to keep the connection, and a
// body that trickles would hold the answer (a refusal) back for ever. A
// body already cut gets no more time at all.
func (b *countingBody) drain() {
	switch {
	case b.eof:
	case b.cut:
		_ = b.rc.SetReadDeadline(time.Now())
	default:
		_ = b.rc.SetReadDeadline(time.Now().Add(drainGrace))
	}
}

// requestIDRE is what we accept as a caller's X-Request-Id: short and
// harmless in a log line. Anything else is replaced.
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); requestIDRE.MatchString(id) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// methodLabel bounds the method label to the methods we route.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}

// observe runs next and then writes the request's log line and metrics. The
// log line names the method, path (without query), route, repository,
// status, sizes, duration, remote address, user agent and request id, and
// no other header: credentials travel in headers.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		x := &exchange{
			id:    id,
			route: "unknown",
			log:   s.log.With().Str("request_id", id).Logger(),
		}
		w.Header().Set("X-Request-Id", id)
		rec := &recorder{ResponseWriter: w}
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body, rc: http.NewResponseController(rec), idle: s.bodyIdle}
			if s.bodyRate.min > 0 {
				body.rate = &rateMeter{rate: s.bodyRate}
			}
			r.Body = body
		}
		r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))

		next.ServeHTTP(rec, r)
		if body != nil {
			body.drain()
		}

		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		var in int64
		if body != nil {
			in = body.n
		}
		elapsed := time.Since(start)
		method := methodLabel(r.Method)
		requestsTotal.WithLabelValues(x.route, method, strconv.Itoa(status)).Inc()
		requestDuration.WithLabelValues(x.route, method).Observe(elapsed.Seconds())
		requestBytes.WithLabelValues(x.route).Add(float64(in))
		responseBytes.WithLabelValues(x.route).Add(float64(rec.bytes))

		ev := s.log.Info()
		switch {
		case status >= 500 && status != statusClientClosed:
			ev = s.log.Warn()
		case x.route == "health" || x.route == "metrics":
			// Probes and scrapes arrive every few seconds.
			ev = s.log.Debug()
		}
		if peer, ok := auth.ProxyPeer(r.Context()); ok {
			// remote is then the client the proxy named.
			ev = ev.Str("proxy", peer)
		}
		ev.Str("request_id", id).
			Str("method", r.Method).
			Str("path", r.URL.EscapedPath()).
			Str("route", x.route).
			Str("repo", x.repo).
			Str("caller", x.caller).
			Int("status", status).
			Int64("bytes_in", in).
			Int64("bytes_out", rec.bytes).
			Dur("duration", elapsed).
			Str("remote", r.RemoteAddr).
			Str("user_agent", r.UserAgent()).
			Msg("request")
	})
}
