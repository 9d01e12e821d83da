// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 limits the multipart copy has to respect.
const (
	maxCopyObjectSize = 5 << 30 // largest object a single CopyObject may copy
	minPartSize       = 5 << 20 // smallest part but the last
	maxPartSize       = 5 << 30
	maxParts          = 10000
)

// Defaults for the zero values of [Config].
const (
	DefaultRetryMaxAttempts    = 5
	DefaultRetryMaxBackoff     = 2 * time.Second
	DefaultDialTimeout         = 3 * time.Second
	DefaultResponseTimeout     = 10 * time.Second
	DefaultSlowResponseTimeout = 5 * time.Minute
	DefaultIdleTimeout         = 30 * time.Second
	DefaultCopyThreshold       = maxCopyObjectSize
	DefaultCopyPartSize        = 32 << 20
	DefaultCopyConcurrency     = 16
	DefaultListPageSize        = 1000
	DefaultMaxIdleConnsPerHost = 100
)

// ErrNotFound is returned, wrapped, when a key does not exist. Match it with
// errors.Is.
var ErrNotFound = errors.New("s3store: object not found")

// ErrInvalidRange is returned, wrapped, by [Store.GetObject] when the offset
// lies beyond the end of the object.
var ErrInvalidRange = errors.New("s3store: range not satisfiable")

// Config says which bucket to use and how to reach it. Zero values of the
// tuning fields take the Default* constants.
type Config struct {
	// Endpoint is the S3 API's base URL, e.g. http://127.0.0.1:9000; empty
	// means AWS, resolved from Region.
	Endpoint string
	// Region signs requests; empty means the SDK's environment lookup
	// (AWS_REGION and the shared config), then us-east-1.
	Region string
	// Bucket must exist; New does not create it.
	Bucket string
	// PathStyle puts the bucket in the URL path instead of the host name,
	// which most S3-compatible servers need.
	PathStyle bool
	// Root is the key prefix of the registry (see [Layout]).
	Root string
	// AccessKey and SecretKey are static credentials; leave both empty for
	// the SDK's standard chain (environment, shared files, instance role).
	AccessKey, SecretKey string
	// PublicEndpoint is the base URL clients reach S3 at, when it differs
	// from Endpoint; presigned URLs are signed for this host.
	PublicEndpoint string

	// RetryMaxAttempts bounds the attempts per request, the first included.
	// Throttling (SlowDown, 503), 5xx answers and connection errors are
	// retried with capped exponential backoff and full jitter.
	RetryMaxAttempts int
	// RetryMaxBackoff caps the delay between two attempts.
	RetryMaxBackoff time.Duration
	// DialTimeout bounds connecting to S3, so an endpoint that swallows
	// packets fails an attempt instead of hanging it.
	DialTimeout time.Duration
	// ResponseTimeout bounds waiting for S3's answer to one operation,
	// its retries included, so that a stalled S3 (it accepts connections
	// and answers nothing) fails requests with an outage within seconds
	// instead of holding their locks and transactions.
	ResponseTimeout time.Duration
	// SlowResponseTimeout is ResponseTimeout for the operations S3 works
	// on before answering: completing a multipart upload and copying,
	// which take minutes for objects of many gigabytes on some servers.
	SlowResponseTimeout time.Duration
	// IdleTimeout bounds how long a body in either direction may move no
	// byte because of S3; a transfer that keeps moving is never cut.
	IdleTimeout time.Duration

	// CopyThreshold is the size above which [Store.Copy] switches from one
	// CopyObject to a multipart copy. It may not exceed 5 GiB, S3's limit.
	CopyThreshold int64
	// CopyPartSize is the smallest part of a multipart copy (at least 5
	// MiB); it grows for objects that would otherwise need over 10,000 parts.
	CopyPartSize int64
	// CopyConcurrency bounds the parts of one copy in flight at once.
	CopyConcurrency int

	// ListPageSize is the MaxKeys of each ListObjectsV2 request (1..1000).
	ListPageSize int32
	// MaxIdleConnsPerHost sizes the keep-alive pool; the SDK's 10 is too
	// few for a registry streaming many blobs at once.
	MaxIdleConnsPerHost int
}

// withDefaults fills zero fields and rejects impossible ones.
func (c Config) withDefaults() (Config, error) {
	if c.Bucket == "" {
		return c, errors.New("s3store: bucket not configured")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return c, errors.New("s3store: access key and secret key must be set together")
	}
	c.Root = strings.Trim(c.Root, "/")
	if c.RetryMaxAttempts <= 0 {
		c.RetryMaxAttempts = DefaultRetryMaxAttempts
	}
	if c.RetryMaxBackoff <= 0 {
		c.RetryMaxBackoff = DefaultRetryMaxBackoff
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	if c.SlowResponseTimeout <= 0 {
		c.SlowResponseTimeout = DefaultSlowResponseTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.CopyThreshold <= 0 {
		c.CopyThreshold = DefaultCopyThreshold
	}
	if c.CopyThreshold > maxCopyObjectSize {
		return c, fmt.Errorf("s3store: copy threshold %d exceeds S3's CopyObject limit of 5 GiB", c.CopyThreshold)
	}
	if c.CopyPartSize <= 0 {
		c.CopyPartSize = DefaultCopyPartSize
	}
	if c.CopyPartSize < minPartSize || c.CopyPartSize > maxPartSize {
		return c, fmt.Errorf("s3store: copy part size %d outside S3's 5 MiB .. 5 GiB", c.CopyPartSize)
	}
	if c.CopyConcurrency <= 0 {
		c.CopyConcurrency = DefaultCopyConcurrency
	}
	if c.ListPageSize <= 0 || c.ListPageSize > 1000 {
		c.ListPageSize = DefaultListPageSize
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	return c, nil
}

// Store is the registry's only door to S3: every object it reads or writes
// goes through one. It is safe for concurrent use.
type Store struct {
	cfg     Config
	client  *s3.Client
	presign *s3.PresignClient
	layout  Layout

	// batchDeleteRefused is set once the server has refused DeleteObjects,
	// so later prefix deletes go straight to single deletes.
	batchDeleteRefused atomic.Bool
}

// New builds a Store. It does not contact S3; use [Store.Ping] for that.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = cfg.MaxIdleConnsPerHost
		if t.MaxIdleConns < cfg.MaxIdleConnsPerHost {
			t.MaxIdleConns = cfg.MaxIdleConnsPerHost
		}
	}).WithDialerOptions(func(d *net.Dialer) {
		d.Timeout = cfg.DialTimeout
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.RetryMaxAttempts
				o.MaxBackoff = cfg.RetryMaxBackoff
				o.Backoff = jitterBackoff{max: cfg.RetryMaxBackoff}
			})
		}),
		// The SDK's default CRC checksums on uploads and its validation of
		// response checksums are not understood by every S3-compatible
		// server; only send them where the API requires one.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3store: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	clientFor := func(endpoint string) *s3.Client {
		return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			o.UsePathStyle = cfg.PathStyle
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
		})
	}
	s := &Store{
		cfg:    cfg,
		client: clientFor(cfg.Endpoint),
		layout: Layout{Root: cfg.Root},
	}
	presignEndpoint := cfg.Endpoint
	if cfg.PublicEndpoint != "" {
		presignEndpoint = cfg.PublicEndpoint
	}
	s.presign = s3.NewPresignClient(clientFor(presignEndpoint))
	return s, nil
}

// Layout returns the key builder for the configured root.
func (s *Store) Layout() Layout { return s.layout }

// Bucket returns the configured bucket name.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// Ping checks that the bucket is reachable with the configured credentials,
// for readiness probes.
func (s *Store) Ping(ctx context.Context) (err error) {
	defer observe("HeadBucket", time.Now(), &err)
	ctx, w := s.watch(ctx, s.cfg.ResponseTimeout)
	defer w.release()
	_, err = s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.cfg.Bucket})
	if cut := w.cut("HeadBucket", s.cfg.Bucket, err); cut != nil {
		return cut
	}
	if err != nil && isUnavailable(err) {
		return fmt.Errorf("%w: head bucket %q: %w", ErrUnavailable, s.cfg.Bucket, err)
	}
	if err != nil {
		return fmt.Errorf("s3store: head bucket %q: %w", s.cfg.Bucket, err)
	}
	return nil
}

// unsignedPayload signs a request without hashing its body. Over plain HTTP
// the SDK would otherwise read the body twice (hash, then send), which a
// stream cannot do, and hash every part needlessly.
var unsignedPayload = s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

// apiErrorCode returns the S3 error code in err's chain, or "".
func apiErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// isNotFound reports whether err says the key (or upload) does not exist.
// HEAD answers carry no body, so a 404 there arrives as "NotFound".
func isNotFound(err error) bool {
	switch apiErrorCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchUpload":
		return true
	}
	var respErr *awshttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusNotFound &&
		apiErrorCode(err) != "NoSuchBucket"
}

// wrap gives err the operation and key, turning "does not exist" into
// [ErrNotFound] so callers need not know S3 error codes.
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if apiErrorCode(err) == "InvalidRange" {
		return fmt.Errorf("%w: %s", ErrInvalidRange, key)
	}
	if isStorageFull(err) {
		return fmt.Errorf("%w: %s %q: %w", ErrStorageFull, op, key, err)
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %s %q: %w", ErrUnavailable, op, key, err)
	}
	return fmt.Errorf("s3store: %s %q: %w", op, key, err)
}
