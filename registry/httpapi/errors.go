// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/registry"
)

// errorBody is the spec's error response (section "Error Codes").
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    registry.Code `json:"code"`
	Message string        `json:"message"`
	Detail  any           `json:"detail,omitempty"`
}

// errPaginationNumberInvalid answers an n that is not a count. The spec
// has no code for it; this is distribution's, which clients already know,
// and the spec tells clients to treat unknown codes as UNKNOWN.
var errPaginationNumberInvalid = &registry.Error{Code: "PAGINATION_NUMBER_INVALID", Message: "n must be a non-negative integer", Status: http.StatusBadRequest}

// DefaultRetryAfter is the Retry-After of a 429 or 503 whose error names
// no wait of its own ([registry.Error.RetryAfter]).
const DefaultRetryAfter = 5 * time.Second

// retryAfter is the Retry-After value for e, in whole seconds (at least
// one), or "" when e is neither a 429 nor a 503 and names no wait. A 503
// is an outage of the moment (a database failing over, S3 away): the
// client should come back, not give up.
func retryAfter(e *registry.Error) string {
	d := e.RetryAfter
	if d <= 0 {
		if st := e.HTTPStatus(); st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable {
			return ""
		}
		d = DefaultRetryAfter
	}
	return strconv.FormatInt(int64(max((d+time.Second-1)/time.Second, 1)), 10)
}

// writeError is the one place errors become responses. A [registry.Error]
// is answered with its code, message and status, a [registry.Outage] with
// 503 UNAVAILABLE; a 429, and any error that names a wait, carry
// Retry-After. Anything else is an internal failure: it is logged with the
// request id and answered UNKNOWN/500 without its text. A client that went
// away is neither answered nor logged as an error.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	rec, _ := w.(*recorder)

	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		x.log.Debug().Err(err).Msg("client went away")
		if rec != nil && !rec.wroteHeader() {
			rec.status = statusClientClosed
		}
		return
	}

	var challenge *auth.ChallengeError
	if errors.As(err, &challenge) {
		w.Header().Set("WWW-Authenticate", challenge.Challenge)
	}
	e := registry.AsError(err)
	if e == registry.ErrUnknown && !errors.Is(err, registry.ErrUnknown) {
		x.log.Error().Err(err).Str("route", x.route).Str("repo", x.repo).Msg("internal error")
	} else if e.HTTPStatus() >= 500 {
		x.log.Warn().Err(err).Str("route", x.route).Str("repo", x.repo).Msg("server-side error")
	}
	errorsTotal.WithLabelValues(string(e.Code)).Inc()

	if rec != nil && rec.wroteHeader() {
		// The body is under way; all we can do is log. Blob responses
		// carry a Content-Length, so the client sees the truncation.
		x.log.Warn().Err(err).Msg("error after the response started")
		return
	}

	body, merr := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	if merr != nil {
		// A detail that cannot be encoded: drop it rather than fail.
		body, _ = json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.Message}}})
	}
	h := w.Header()
	// Headers a handler set for the success it did not reach must not go
	// out with the error.
	for _, k := range []string{"Docker-Content-Digest", "Location", "ETag", "Docker-Upload-UUID", "OCI-Subject", "OCI-Tag"} {
		h.Del(k)
	}
	if v := retryAfter(e); v != "" {
		h.Set("Retry-After", v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.HTTPStatus())
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
