// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Code is an error code of the OCI distribution spec ("BLOB_UNKNOWN", ...).
type Code string

// The spec's error codes, plus UNKNOWN and UNAVAILABLE for failures that are
// not the client's.
const (
	CodeBlobUnknown         Code = "BLOB_UNKNOWN"
	CodeBlobUploadInvalid   Code = "BLOB_UPLOAD_INVALID"
	CodeBlobUploadUnknown   Code = "BLOB_UPLOAD_UNKNOWN"
	CodeDigestInvalid       Code = "DIGEST_INVALID"
	CodeManifestBlobUnknown Code = "MANIFEST_BLOB_UNKNOWN"
	CodeManifestInvalid     Code = "MANIFEST_INVALID"
	CodeManifestUnknown     Code = "MANIFEST_UNKNOWN"
	CodeNameInvalid         Code = "NAME_INVALID"
	CodeNameUnknown         Code = "NAME_UNKNOWN"
	CodeSizeInvalid         Code = "SIZE_INVALID"
	CodeUnauthorized        Code = "UNAUTHORIZED"
	CodeDenied              Code = "DENIED"
	CodeUnsupported         Code = "UNSUPPORTED"
	CodeTooManyRequests     Code = "TOOMANYREQUESTS"
	CodeUnknown             Code = "UNKNOWN"
	CodeUnavailable         Code = "UNAVAILABLE"
)

// statusByCode is the one table from error code to HTTP status. The spec
// leaves most statuses to its endpoint table; where it is silent we follow
// the endpoint that returns the code most often:
//   - MANIFEST_BLOB_UNKNOWN is answered with 400: it is a manifest PUT
//     refusal, and the spec's PUT manifest row lists 400 for manifests the
//     registry rejects (distribution agrees; cue-labs answers 404).
//   - UNSUPPORTED is 405 for methods and operations we do not offer.
var statusByCode = map[Code]int{
	CodeBlobUnknown:         http.StatusNotFound,
	CodeBlobUploadInvalid:   http.StatusBadRequest,
	CodeBlobUploadUnknown:   http.StatusNotFound,
	CodeDigestInvalid:       http.StatusBadRequest,
	CodeManifestBlobUnknown: http.StatusBadRequest,
	CodeManifestInvalid:     http.StatusBadRequest,
	CodeManifestUnknown:     http.StatusNotFound,
	CodeNameInvalid:         http.StatusBadRequest,
	CodeNameUnknown:         http.StatusNotFound,
	CodeSizeInvalid:         http.StatusBadRequest,
	CodeUnauthorized:        http.StatusUnauthorized,
	CodeDenied:              http.StatusForbidden,
	CodeUnsupported:         http.StatusMethodNotAllowed,
	CodeTooManyRequests:     http.StatusTooManyRequests,
	CodeUnknown:             http.StatusInternalServerError,
	CodeUnavailable:         http.StatusServiceUnavailable,
}

// Error is a client-facing registry error: a spec code, a message safe to
// show to the client, and optional detail. Errors with the same code match
// each other with [errors.Is], so a wrapped or re-worded error still tests
// equal to its sentinel (errors.Is(err, ErrBlobUnknown)).
type Error struct {
	Code    Code
	Message string
	Detail  any
	// Status overrides the code's status from the table, for the few
	// errors whose status the code does not say: the range errors (the
	// spec answers them with 416 while their body code is
	// BLOB_UPLOAD_INVALID), a manifest too large (413), storage full (507).
	Status int
	// RetryAfter is how long the client should wait before it retries,
	// sent as Retry-After. Every 429 carries one: zero means the HTTP
	// layer's default.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code and status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Status == e.Status
}

// HTTPStatus is the HTTP status the error is answered with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if s, ok := statusByCode[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// WithMessage returns a copy of e whose message is formatted from format and
// args; the copy still matches e with [errors.Is].
func (e *Error) WithMessage(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// WithRetryAfter returns a copy of e telling the client to wait d before
// it retries; the copy still matches e with [errors.Is].
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.RetryAfter = d
	return &c
}

// WithDetail returns a copy of e carrying detail in the JSON error body.
func (e *Error) WithDetail(detail any) *Error {
	c := *e
	c.Detail = detail
	return &c
}

// The sentinel errors, one per code. Return them (or a copy from
// WithMessage) from storage and handlers; the HTTP layer renders them.
var (
	ErrBlobUnknown         = &Error{Code: CodeBlobUnknown, Message: "blob unknown to registry"}
	ErrBlobUploadInvalid   = &Error{Code: CodeBlobUploadInvalid, Message: "blob upload invalid"}
	ErrBlobUploadUnknown   = &Error{Code: CodeBlobUploadUnknown, Message: "blob upload unknown to registry"}
	ErrDigestInvalid       = &Error{Code: CodeDigestInvalid, Message: "provided digest did not match uploaded content"}
	ErrManifestBlobUnknown = &Error{Code: CodeManifestBlobUnknown, Message: "manifest references a blob unknown to the repository"}
	ErrManifestInvalid     = &Error{Code: CodeManifestInvalid, Message: "manifest invalid"}
	ErrManifestUnknown     = &Error{Code: CodeManifestUnknown, Message: "manifest unknown"}
	ErrNameInvalid         = &Error{Code: CodeNameInvalid, Message: "invalid repository name"}
	ErrNameUnknown         = &Error{Code: CodeNameUnknown, Message: "repository name not known to registry"}
	ErrSizeInvalid         = &Error{Code: CodeSizeInvalid, Message: "provided length did not match content length"}
	ErrUnauthorized        = &Error{Code: CodeUnauthorized, Message: "authentication required"}
	ErrDenied              = &Error{Code: CodeDenied, Message: "requested access to the resource is denied"}
	ErrUnsupported         = &Error{Code: CodeUnsupported, Message: "the operation is unsupported"}
	ErrTooManyRequests     = &Error{Code: CodeTooManyRequests, Message: "too many requests"}
	ErrUnknown             = &Error{Code: CodeUnknown, Message: "unknown error"}
	ErrUnavailable         = &Error{Code: CodeUnavailable, Message: "service unavailable, try again later"}

	// ErrRangeInvalid answers an out-of-order chunk or an unsatisfiable
	// Range with 416, as the spec requires.
	ErrRangeInvalid = &Error{Code: CodeBlobUploadInvalid, Message: "requested range not satisfiable", Status: http.StatusRequestedRangeNotSatisfiable}

	// ErrManifestTooLarge answers a manifest over MaxManifestSize with 413,
	// as the spec suggests.
	ErrManifestTooLarge = &Error{Code: CodeManifestInvalid, Message: "manifest too large", Status: http.StatusRequestEntityTooLarge}
	// ErrStorageFull answers a write the blob storage refused for want of
	// room with 507 Insufficient Storage: not the client's fault, and no
	// retry helps until an operator frees or adds space.
	ErrStorageFull = &Error{Code: CodeUnavailable, Message: "blob storage is full; ask the registry's operators to free or add space", Status: http.StatusInsufficientStorage}
)

// StorageFull is implemented by errors of a backend that refused a write
// for want of room (a full disk, a bucket quota). Such an error is
// answered with [ErrStorageFull]. Backends satisfy it without importing
// this package.
type StorageFull interface {
	error
	StorageFull()
}

// Outage is implemented by errors of a backend that is down or overloaded
// for now, such as the S3 store's. Such an error is answered UNAVAILABLE
// (503) with the message Outage returns, which must name no internals, so
// clients retry later instead of giving up on a 500. Backends satisfy it
// without importing this package.
type Outage interface {
	error
	Outage() string
}

// AsError returns the *Error in err's chain, or [ErrUnavailable] for an
// [Outage] in it. Anything else, which only the log may describe, becomes
// [ErrUnknown], so internals never reach a client.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var full StorageFull
	if errors.As(err, &full) {
		return ErrStorageFull
	}
	var o Outage
	if errors.As(err, &o) {
		return ErrUnavailable.WithMessage("%s", o.Outage())
	}
	return ErrUnknown
}
