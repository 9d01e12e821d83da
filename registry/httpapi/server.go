// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/registry"
)

// Page sizes of the listing endpoints (tags, catalog) when the client does
// not choose, and the most a client may ask for.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 10000
)

// DefaultBodyIdleTimeout is [Options.BodyIdleTimeout]'s default.
const DefaultBodyIdleTimeout = time.Minute

// readyTimeout bounds a /readyz probe; a probe that hangs is a failure.
const readyTimeout = 2 * time.Second

// Options configures [New].
type Options struct {
	// Store is what the API serves. Required.
	Store registry.Store
	// Logger receives one line per request and the details of internal
	// errors.
	Logger zerolog.Logger
	// ReadyCheck, if set, is asked by /readyz after Store.Ready.
	ReadyCheck func(ctx context.Context) error
	// AutoMount makes POST ?mount=<digest> without from= mount the blob
	// from any repository that holds it, sparing the client the upload.
	AutoMount bool
	// DefaultPageSize is the page size of tags and catalog listings when
	// the client sends no n (0: [DefaultPageSize]).
	DefaultPageSize int
	// MaxPageSize caps n (0: [MaxPageSize]). A larger n is capped
	// silently: the spec only forbids answering more than n entries, and
	// the Link header tells the client there is more.
	MaxPageSize int
	// BodyIdleTimeout is how long a request body may send nothing before
	// the request fails (0: [DefaultBodyIdleTimeout]). An upload chunk
	// holds its session, and a database connection, while it streams: a
	// stalled client must not hold them for ever.
	BodyIdleTimeout time.Duration
	// BodyMinRate is the least average rate, in bytes a second, at which
	// a request body must arrive over each BodyRateWindow of time spent
	// waiting for it; a slower body fails the request, which frees its
	// upload session and connection (0: no minimum). The idle timeout
	// only catches a body that stops; this one catches a trickle.
	BodyMinRate int64
	// BodyRateWindow is the window of BodyMinRate (0:
	// [DefaultBodyRateWindow]).
	BodyRateWindow time.Duration
	// UploadsPerClient is how many upload requests that stream into the
	// store (PATCH, PUT, POST with a digest) one caller may have in flight
	// on this replica; more are answered 429 (0: no limit). A caller is
	// its authenticated name, or its address when anonymous.
	UploadsPerClient int
	// ManifestMemory bounds the bytes of manifest bodies held at once on
	// this replica; a PUT beyond it is answered 429 (0: no bound). A body
	// without Content-Length counts as [registry.MaxManifestSize].
	ManifestMemory int64
	// Auth guards every /v2/ request and serves GET /token; nil leaves
	// the registry open, for a trusted network.
	Auth Authorizer
	// Audit records refusals and failed logins (changes are recorded by
	// the store, in their own transactions); nil records nothing.
	Audit func(ctx context.Context, rec AuditRecord)
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client (and whose X-Forwarded-Host and -Proto the gate may
	// use); nil trusts none: the TCP peer is the client.
	TrustedProxies *auth.TrustedProxies
}

// Server is the registry's HTTP handler: the distribution API under /v2/,
// and /healthz, /readyz and /metrics.
type Server struct {
	store      registry.Store
	log        zerolog.Logger
	readyCheck func(ctx context.Context) error
	autoMount  bool
	pageSize   int
	maxPage    int

	bodyIdle time.Duration
	auth     Authorizer
	audit    func(ctx context.Context, rec AuditRecord)
	proxies  *auth.TrustedProxies

	// The per-replica limits (limits.go).
	bodyRate      bodyRate
	uploads       clientSlots
	manifestBytes byteBudget

	routes   map[kind]map[string]handlerFunc
	draining atomic.Bool
	handler  http.Handler
}

var _ http.Handler = (*Server)(nil)

// New returns the handler serving o.Store.
func New(o Options) *Server {
	s := &Server{
		store:      o.Store,
		log:        o.Logger,
		readyCheck: o.ReadyCheck,
		autoMount:  o.AutoMount,
		pageSize:   o.DefaultPageSize,
		maxPage:    o.MaxPageSize,
		bodyIdle:   o.BodyIdleTimeout,
		bodyRate:   bodyRate{min: o.BodyMinRate, window: o.BodyRateWindow},
		uploads:    clientSlots{max: o.UploadsPerClient},
		auth:       o.Auth,
		audit:      o.Audit,
		proxies:    o.TrustedProxies,
	}
	if s.bodyIdle <= 0 {
		s.bodyIdle = DefaultBodyIdleTimeout
	}
	if s.bodyRate.window <= 0 {
		s.bodyRate.window = DefaultBodyRateWindow
	}
	s.manifestBytes.max = o.ManifestMemory
	if s.maxPage <= 0 {
		s.maxPage = MaxPageSize
	}
	if s.pageSize <= 0 {
		s.pageSize = DefaultPageSize
	}
	s.pageSize = min(s.pageSize, s.maxPage)
	s.routes = s.routeTable()

	rt := httprouter.New()
	// These would rewrite or redirect paths before we see them; we parse
	// the raw path ourselves and refuse what is not canonical.
	rt.RedirectTrailingSlash = false
	rt.RedirectFixedPath = false
	rt.HandleOPTIONS = false
	rt.HandleMethodNotAllowed = true
	rt.MethodNotAllowed = http.HandlerFunc(s.methodNotAllowed)
	rt.NotFound = http.HandlerFunc(s.notFound)
	rt.PanicHandler = s.panicked

	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		rt.Handle(m, "/v2", s.v2)
		rt.Handle(m, "/v2/*path", s.v2)
	}
	if s.auth != nil {
		rt.Handle(http.MethodGet, "/token", s.token)
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rt.Handle(m, "/healthz", s.healthz)
		rt.Handle(m, "/readyz", s.readyz)
		rt.Handler(m, "/metrics", s.metrics())
	}
	s.handler = s.observe(rt)
	return s
}

// ServeHTTP implements [http.Handler]. The client's address is settled
// first, so that every layer sees the same one.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, s.resolveClient(r))
}

// SetDraining makes /readyz answer 503 (true) so that load balancers stop
// sending new requests while in-flight ones finish, or ready again (false).
func (s *Server) SetDraining(draining bool) { s.draining.Store(draining) }

// handlerFunc is a /v2 handler: it writes a success or returns an error for
// [writeError].
type handlerFunc func(w http.ResponseWriter, r *http.Request, req request) error

// routeTable maps each kind to its handlers by method; a method missing
// here is answered 405 UNSUPPORTED.
func (s *Server) routeTable() map[kind]map[string]handlerFunc {
	return map[kind]map[string]handlerFunc{
		kindBase:    {http.MethodGet: s.getBase, http.MethodHead: s.getBase},
		kindCatalog: {http.MethodGet: s.getCatalog},
		kindBlob:    {http.MethodGet: s.getBlob, http.MethodHead: s.getBlob, http.MethodDelete: s.deleteBlob},
		kindUploads: {http.MethodPost: s.postUpload},
		kindUpload: {
			http.MethodGet:    s.getUpload,
			http.MethodPatch:  s.patchUpload,
			http.MethodPut:    s.putUpload,
			http.MethodDelete: s.deleteUpload,
		},
		kindManifest: {
			http.MethodGet:    s.getManifest,
			http.MethodHead:   s.getManifest,
			http.MethodPut:    s.putManifest,
			http.MethodDelete: s.deleteManifest,
		},
		kindTags:      {http.MethodGet: s.getTags},
		kindReferrers: {http.MethodGet: s.getReferrers},
	}
}

// v2 serves every /v2 path: it parses the raw path into a request and
// dispatches on its kind and the method.
func (s *Server) v2(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	// The spec's version header, on every /v2 answer including errors.
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	x := exchangeFrom(r.Context())

	req, err := parsePath(r.URL.EscapedPath())
	x.route, x.repo = req.kind.route(), req.repo
	if err != nil {
		writeError(w, r, err)
		return
	}
	h, ok := s.routes[req.kind][r.Method]
	if !ok {
		writeError(w, r, registry.ErrUnsupported.WithMessage("method %s is not allowed here", r.Method))
		return
	}
	r, err = s.authorize(r, req)
	if err == nil {
		err = h(w, r, req)
	}
	if err != nil {
		s.auditRefusal(r, req.repo, err)
		writeError(w, r, err)
	}
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	}
	writeError(w, r, registry.ErrUnsupported.WithMessage("method %s is not allowed here", r.Method))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, errNoRoute)
}

func (s *Server) panicked(w http.ResponseWriter, r *http.Request, v any) {
	if v == http.ErrAbortHandler {
		// net/http's way to drop a connection; not ours to swallow.
		panic(v)
	}
	writeError(w, r, fmt.Errorf("panic: %v", v))
}

// getBase answers the version check.
//
// end-1: GET /v2/ → 200.
func (s *Server) getBase(w http.ResponseWriter, r *http.Request, _ request) error {
	writeJSON(w, r, http.StatusOK, "application/json", struct{}{})
	return nil
}

// healthz answers 200 while the process serves at all (liveness).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	exchangeFrom(r.Context()).route = "health"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("ok\n"))
	}
}

// readyz answers 200 when the store's dependencies answer within
// readyTimeout and we are not draining, else 503 (readiness). The reason
// goes to the log, not to the caller.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	x := exchangeFrom(r.Context())
	x.route = "health"
	status, text := http.StatusOK, "ok\n"
	var degraded *registry.DegradedError
	err := s.ready(r.Context())
	switch {
	case s.draining.Load():
		status, text = http.StatusServiceUnavailable, "draining\n"
	case errors.As(err, &degraded):
		// Still ready: what needs the dependency fails fast with 503,
		// the rest is served.
		x.log.Warn().Err(err).Msg("serving degraded")
		text = "degraded: " + degraded.Dependency + " unavailable\n"
	case err != nil:
		x.log.Warn().Err(err).Msg("not ready")
		status, text = http.StatusServiceUnavailable, "not ready\n"
	}
	if !s.draining.Load() {
		setDegraded(degraded)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(text))
	}
}

func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		return err
	}
	if s.readyCheck != nil {
		return s.readyCheck(ctx)
	}
	return nil
}

// metrics serves the default Prometheus registry, where the metrics of
// this package and of the other packages register.
func (s *Server) metrics() http.Handler {
	h := promhttp.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exchangeFrom(r.Context()).route = "metrics"
		h.ServeHTTP(w, r)
	})
}

// writeJSON answers v as JSON with the given status and Content-Type; a
// HEAD answer carries the headers only.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, fmt.Errorf("encoding the response: %w", err))
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
