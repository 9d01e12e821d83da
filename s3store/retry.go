// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// ErrUnavailable is returned, wrapped, when S3 could not be reached or
// kept failing after the retries: refused or dropped connections, 5xx
// answers, throttling (SlowDown). It says "try again later", not "the
// request is wrong"; the registry answers it with 503. It also satisfies
// the registry's outage contract (an Outage method), so the HTTP layer
// recognizes it without importing this package.
var ErrUnavailable error = outage{}

type outage struct{}

func (outage) Error() string { return "s3store: S3 unavailable" }

// Outage is the message clients get; it names no internals.
func (outage) Outage() string { return "blob storage unavailable, try again later" }

// ErrStorageFull is returned, wrapped, when S3 refused a write for want
// of room: HTTP 507, or the codes S3-compatible servers use for a full
// disk or a bucket quota (XMinioStorageFull, QuotaExceeded,
// InsufficientStorage). No retry helps until an operator acts; the
// registry answers 507. It satisfies the registry's StorageFull contract
// without importing it.
var ErrStorageFull error = storageFull{}

type storageFull struct{}

func (storageFull) Error() string { return "s3store: storage full" }

// StorageFull marks the error for the registry.
func (storageFull) StorageFull() {}

// isStorageFull reports whether S3 answered err for want of room.
func isStorageFull(err error) bool {
	switch apiErrorCode(err) {
	case "XMinioStorageFull", "QuotaExceeded", "InsufficientStorage":
		return true
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusInsufficientStorage
}

// Retry timing. The first retry comes after at most retryBaseDelay (a
// dropped keep-alive connection or a single 5xx is usually gone at once);
// each further retry doubles the bound, up to Config.RetryMaxBackoff. A
// throttled request starts from throttleBaseDelay: SlowDown asks us to
// ease off, and retrying a busy server at once would make it worse. With
// the defaults, the retries of one request wait 1.5 s at most (6 s when
// throttled), so an outage turns into a 503 within seconds, not minutes.
const (
	retryBaseDelay    = 100 * time.Millisecond
	throttleBaseDelay = 500 * time.Millisecond
)

// jitterBackoff is capped exponential backoff with full jitter: the delay
// is uniform in [0, min(max, base * 2^(attempt-1))), which spreads the
// retries of many replicas hitting the same failure.
type jitterBackoff struct {
	max time.Duration
}

// BackoffDelay implements retry.BackoffDelayer; attempt counts from 1.
func (b jitterBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	base := retryBaseDelay
	if isThrottle(err) {
		base = throttleBaseDelay
	}
	return fullJitter(base, b.max, attempt, rand.Float64()), nil
}

// fullJitter is the delay before retry number attempt (from 1) for a draw
// r in [0, 1).
func fullJitter(base, max time.Duration, attempt int, r float64) time.Duration {
	bound := max
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 32 {
		if d := base << (attempt - 1); d > 0 && d < max {
			bound = d
		}
	}
	return time.Duration(r * float64(bound))
}

func isThrottle(err error) bool {
	for _, t := range retry.DefaultThrottles {
		if t.IsErrorThrottle(err) == aws.TrueTernary {
			return true
		}
	}
	return false
}

// isUnavailable reports whether err, as the SDK returned it after its
// retries, means S3 is down or overloaded rather than that the request was
// wrong: the retries ran out, the retry budget is spent, or the error is
// one the SDK retries (connection errors, 5xx, throttling).
func isUnavailable(err error) bool {
	var maxAttempts *retry.MaxAttemptsError
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &maxAttempts) || errors.As(err, &quota) {
		return true
	}
	for _, r := range retry.DefaultRetryables {
		if r.IsErrorRetryable(err) == aws.TrueTernary {
			return true
		}
	}
	return false
}
