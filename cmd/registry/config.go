// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/pgmetrics"
	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/s3store"
)

// Every flag has an environment variable, so that a NixOS module or a
// container needs no command line.

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"REGISTRY_LOG_LEVEL"}, Usage: "trace, debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "json", EnvVars: []string{"REGISTRY_LOG_FORMAT"}, Usage: "json or console"},
	}
}

func databaseFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "database-url", EnvVars: []string{"REGISTRY_DATABASE_URL"}, Required: true,
			Usage: "PostgreSQL connection URL (postgres://user:pass@host:port/db)"},
	}
}

func s3Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "s3-endpoint", EnvVars: []string{"REGISTRY_S3_ENDPOINT"}, Usage: "S3 endpoint URL; empty for AWS"},
		&cli.StringFlag{Name: "s3-bucket", EnvVars: []string{"REGISTRY_S3_BUCKET"}, Required: true, Usage: "bucket name"},
		&cli.StringFlag{Name: "s3-region", Value: "us-east-1", EnvVars: []string{"REGISTRY_S3_REGION"}, Usage: "bucket region"},
		&cli.BoolFlag{Name: "s3-path-style", EnvVars: []string{"REGISTRY_S3_PATH_STYLE"}, Usage: "path-style addressing (most S3-compatible servers)"},
		&cli.StringFlag{Name: "s3-prefix", EnvVars: []string{"REGISTRY_S3_PREFIX"}, Usage: "key prefix under which the registry's layout lives"},
		&cli.DurationFlag{Name: "s3-response-timeout", Value: s3store.DefaultResponseTimeout, EnvVars: []string{"REGISTRY_S3_RESPONSE_TIMEOUT"},
			Usage: "how long one S3 operation, its retries included, may wait for an answer before the request fails with 503"},
		&cli.DurationFlag{Name: "s3-slow-response-timeout", Value: s3store.DefaultSlowResponseTimeout, EnvVars: []string{"REGISTRY_S3_SLOW_RESPONSE_TIMEOUT"},
			Usage: "the same for completing a multipart upload and copying, which S3 may work on for minutes"},
		&cli.DurationFlag{Name: "s3-idle-timeout", Value: s3store.DefaultIdleTimeout, EnvVars: []string{"REGISTRY_S3_IDLE_TIMEOUT"},
			Usage: "how long a body sent to or read from S3 may move no byte because of S3; moving transfers are never cut"},
	}
}

// newLogger builds the process logger from the global flags.
func newLogger(c *cli.Context) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level: %w", err)
	}
	var l zerolog.Logger
	switch c.String("log-format") {
	case "json":
		l = zerolog.New(os.Stderr)
	case "console":
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	default:
		return l, fmt.Errorf("--log-format must be json or console, not %q", c.String("log-format"))
	}
	return l.Level(level).With().Timestamp().Logger(), nil
}

// Defaults for what the database URL does not say. pgx's own pool size
// (4, or the CPU count) is too small for a replica serving many pulls at
// once; a connect timeout turns an unreachable database into a fast 503
// instead of a request that hangs on the kernel's SYN retries.
const (
	defaultPoolMaxConns   = 10
	defaultConnectTimeout = 5 * time.Second
)

// serverSessionDefaults are PostgreSQL settings of the registry's sessions
// unless the database URL sets them (a URL parameter of the same name).
// A replica whose host vanishes leaves its backends holding locks inside
// open transactions until the server notices: its TCP keepalives find a
// dead peer within about a minute (30s idle, then 3 probes 10s apart)
// instead of the kernel's two hours. A replica that hangs with its host up
// answers keepalives, so idle_in_transaction_session_timeout ends such a
// transaction; it must exceed the longest time an upload chunk streams
// between two statements (a part of the body read and sent to S3 while its
// session is locked), hence an hour.
var serverSessionDefaults = map[string]string{
	"tcp_keepalives_idle":                 "30",
	"tcp_keepalives_interval":             "10",
	"tcp_keepalives_count":                "3",
	"idle_in_transaction_session_timeout": "3600000",
}

// databaseConfig parses the --database-url value, filling in the defaults
// for what the URL leaves out (pool_max_conns, connect_timeout).
func databaseConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("--database-url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultPoolMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	for k, v := range serverSessionDefaults {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	cfg.ConnConfig.Tracer = pgmetrics.Tracer{}
	return cfg, nil
}

// openDatabase connects to PostgreSQL and checks the connection.
func openDatabase(ctx context.Context, c *cli.Context) (*pgxpool.Pool, error) {
	cfg, err := databaseConfig(c.String("database-url"))
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", redactURL(cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database), err)
	}
	return pool, nil
}

// openStreamPool opens the second pool serve uses for uploads whose
// transactions stay open while their bodies stream (see store.Config), of
// size conns. It connects lazily: openDatabase has already proven the URL.
func openStreamPool(ctx context.Context, c *cli.Context, conns int) (*pgxpool.Pool, error) {
	if conns < 1 {
		return nil, fmt.Errorf("--upload-conns must be at least 1, not %d", conns)
	}
	cfg, err := databaseConfig(c.String("database-url"))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(min(conns, 1<<20))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	return pool, nil
}

func redactURL(host string, port uint16, db string) string {
	return fmt.Sprintf("%s:%d/%s", host, port, db)
}

// openS3 builds the S3 store; credentials come from the standard AWS
// variables and files.
func openS3(ctx context.Context, c *cli.Context) (*s3store.Store, error) {
	return s3store.New(ctx, s3store.Config{
		Endpoint:            c.String("s3-endpoint"),
		Region:              c.String("s3-region"),
		Bucket:              c.String("s3-bucket"),
		PathStyle:           c.Bool("s3-path-style"),
		Root:                strings.Trim(c.String("s3-prefix"), "/"),
		ResponseTimeout:     c.Duration("s3-response-timeout"),
		SlowResponseTimeout: c.Duration("s3-slow-response-timeout"),
		IdleTimeout:         c.Duration("s3-idle-timeout"),
		// Only serve has the flag; elsewhere it reads as "".
		PublicEndpoint: c.String("s3-public-endpoint"),
	})
}

// openMigrated opens the database for a maintenance subcommand, which
// must not run on a schema other than the one this binary was built for;
// the caller closes the pool.
func openMigrated(ctx context.Context, c *cli.Context) (*pgxpool.Pool, error) {
	pool, err := openDatabase(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := schema.Check(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// openStore opens the store for a maintenance subcommand: the database,
// checked to be this binary's schema, and the bucket. The caller closes
// the pool.
func openStore(ctx context.Context, c *cli.Context) (*store.Store, *pgxpool.Pool, error) {
	pool, err := openMigrated(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	s3, err := openS3(ctx, c)
	if err == nil {
		var st *store.Store
		if st, err = store.New(pool, s3, store.Config{}); err == nil {
			return st, pool, nil
		}
	}
	pool.Close()
	return nil, nil, err
}

// storeJobFlags are the flags of a subcommand that works on the store:
// its own, then the database's and the bucket's.
func storeJobFlags(own ...cli.Flag) []cli.Flag {
	return append(append(own, databaseFlags()...), s3Flags()...)
}
