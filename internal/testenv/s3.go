// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Config describes an S3 endpoint and a bucket on it (path-style).
type S3Config struct {
	Endpoint, Region, Bucket, AccessKey, SecretKey string
}

var (
	s3Once      sync.Once
	s3Server    S3Config
	s3Err       error
	bucketSeq   atomic.Int64
	errNoVersGW = fmt.Errorf("versitygw is not installed")
)

// S3 returns a fresh, empty bucket on the process's shared S3 server.
func S3(t testing.TB) S3Config {
	t.Helper()
	s3Once.Do(func() {
		if e := os.Getenv("REGISTRY_TEST_S3_ENDPOINT"); e != "" {
			s3Server = S3Config{Endpoint: e, Region: envOr("REGISTRY_TEST_S3_REGION", "us-east-1"),
				AccessKey: os.Getenv("REGISTRY_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("REGISTRY_TEST_S3_SECRET_KEY")}
			return
		}
		s3Server, s3Err = startVersityGW()
	})
	if s3Err == errNoVersGW {
		missing(t, "%v", s3Err)
	}
	if s3Err != nil {
		t.Fatalf("starting the S3 server: %v", s3Err)
	}
	cfg := s3Server
	cfg.Bucket = fmt.Sprintf("test-%d-%d", os.Getpid(), bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &cfg.Bucket}); err != nil {
		t.Fatalf("creating bucket %s: %v", cfg.Bucket, err)
	}
	return cfg
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// client is a plain SDK client for the test environment's own use.
func client(cfg S3Config) *s3.Client {
	return s3.New(s3.Options{
		Region:                     cfg.Region,
		BaseEndpoint:               aws.String(cfg.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func startVersityGW() (S3Config, error) {
	bin, err := lookTool("versitygw")
	if err != nil {
		return S3Config{}, errNoVersGW
	}
	dir, err := os.MkdirTemp("", "registry-s3-")
	if err != nil {
		return S3Config{}, err
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return S3Config{}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return S3Config{}, err
	}
	cfg := S3Config{Endpoint: "http://" + addr, Region: "us-east-1", AccessKey: "registrytest", SecretKey: "registrytestsecret"}
	srv, err := startServer(filepath.Join(dir, "versitygw.log"), nil, bin,
		"--access", cfg.AccessKey, "--secret", cfg.SecretKey, "--region", cfg.Region,
		"--port", addr, "--quiet", "posix", root)
	if err != nil {
		return S3Config{}, err
	}
	atExit(func() { srv.stop(); os.RemoveAll(dir) })
	err = waitFor(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client(cfg).ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	})
	if err != nil {
		return S3Config{}, fmt.Errorf("versitygw did not become ready: %v\n%s", err, strings.TrimSpace(srv.tail()))
	}
	return cfg, nil
}
