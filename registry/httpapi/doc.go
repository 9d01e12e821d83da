// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package httpapi serves the OCI distribution API (v1.1) from a
// [registry.Store], plus the operational endpoints /healthz, /readyz and
// /metrics.
//
// Repository names contain slashes, so every /v2 request is routed through
// one catch-all and its escaped path is parsed from the end into one typed
// request value (what it addresses, the repository, the digest or tag, the
// upload id) before anything runs; handlers then dispatch on what was parsed.
// The path is never cleaned or decoded beyond "%3A": anything else
// percent-encoded, and any "." or ".." segment, is refused with NAME_INVALID,
// so a traversal cannot be spelled in any encoding.
//
// Handlers return errors; one function renders them as the spec's JSON error
// body with the status from [registry.Error.HTTPStatus]. Errors that are not
// a [registry.Error] are logged with the request id and answered
// UNKNOWN/500 without their text.
//
// Every request is logged once (without header values beyond the user agent)
// and counted in Prometheus metrics labelled by the parsed route, never the
// raw path.
package httpapi
