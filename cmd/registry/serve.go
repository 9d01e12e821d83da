// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/chain"
	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry/httpapi"
)

// defaultUploadConns bounds the uploads one replica streams at once; more
// wait for a connection. With the main pool's 10, three replicas stay under
// PostgreSQL's default max_connections of 100.
const defaultUploadConns = 20

func serveCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: ":5000", EnvVars: []string{"REGISTRY_LISTEN"}, Usage: "address to serve on"},
		&cli.BoolFlag{Name: "migrate", EnvVars: []string{"REGISTRY_MIGRATE"}, Usage: "apply database migrations before serving"},
		&cli.BoolFlag{Name: "auto-mount", Value: true, EnvVars: []string{"REGISTRY_AUTO_MOUNT"},
			Usage: "let a mount without from= link a blob held by any repository"},
		&cli.DurationFlag{Name: "drain-delay", Value: 0, EnvVars: []string{"REGISTRY_DRAIN_DELAY"},
			Usage: "after SIGTERM, keep serving this long with /readyz failing, so load balancers stop sending requests"},
		&cli.DurationFlag{Name: "body-idle-timeout", Value: httpapi.DefaultBodyIdleTimeout, EnvVars: []string{"REGISTRY_BODY_IDLE_TIMEOUT"},
			Usage: "fail a request whose body sends nothing for this long, freeing the upload session it holds"},
		&cli.IntFlag{Name: "upload-conns", Value: defaultUploadConns, EnvVars: []string{"REGISTRY_UPLOAD_CONNS"},
			Usage: "PostgreSQL connections for uploads in flight (each holds one while its body streams), apart from the main pool"},
		&cli.IntFlag{Name: "memory-limit", EnvVars: []string{"REGISTRY_MEMORY_LIMIT"},
			Usage: "fixed soft memory limit of the Go runtime in MiB (0: 48 + 8 per upload in flight); GOMEMLIMIT, when set, wins"},
		&cli.BoolFlag{Name: "s3-redirect", EnvVars: []string{"REGISTRY_S3_REDIRECT"},
			Usage: "answer blob GETs with a redirect to a presigned S3 URL instead of streaming the bytes"},
		&cli.StringFlag{Name: "s3-public-endpoint", EnvVars: []string{"REGISTRY_S3_PUBLIC_ENDPOINT"},
			Usage: "S3 base URL as clients reach it, for presigned redirects; default --s3-endpoint"},
		policyFlag(false),
		&cli.DurationFlag{Name: "retention-interval", EnvVars: []string{"REGISTRY_RETENTION_INTERVAL"},
			Usage: "apply the policy file's retention rules this often (0: never); one replica at a time runs it"},
		&cli.DurationFlag{Name: "pull-stats-interval", Value: 30 * time.Second, EnvVars: []string{"REGISTRY_PULL_STATS_INTERVAL"},
			Usage: "how often a replica writes the manifest pulls it served, in one batch, for retention's pulledWithin"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, EnvVars: []string{"REGISTRY_SHUTDOWN_TIMEOUT"},
			Usage: "after the drain delay, how long in-flight requests may take to finish"},
		&cli.StringSliceFlag{Name: "trusted-proxies", EnvVars: []string{"REGISTRY_TRUSTED_PROXIES"},
			Usage: "CIDRs or addresses of the load balancers in front (comma-separated or repeated); from them, the client's address is read from X-Forwarded-For, right to left"},
	}
	flags = append(flags, limitFlags()...)
	flags = append(flags, authFlags()...)
	flags = append(flags, &cli.DurationFlag{Name: "scan-interval", EnvVars: []string{"REGISTRY_SCAN_INTERVAL"},
		Usage: "scan images not scanned with the current vulnerability data this often (0: never); replicas share the work"})
	flags = append(flags, scannerFlags()...)
	flags = append(flags, uploadFlags()...)
	flags = append(flags, gcServeFlags()...)
	flags = append(flags, databaseFlags()...)
	flags = append(flags, s3Flags()...)
	return &cli.Command{
		Name:   "serve",
		Usage:  "serve the OCI distribution API",
		Flags:  flags,
		Action: serve,
	}
}

func serve(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	streaming, err := memoryLimit(c.Int("memory-limit"), log)
	if err != nil {
		return err
	}
	lim, err := readLimits(c)
	if err != nil {
		return err
	}
	proxies, err := auth.ParseTrustedProxies(c.StringSlice("trusted-proxies"))
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	pool, err := openDatabase(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	if c.Bool("migrate") {
		applied, err := schema.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			log.Info().Ints("applied", applied).Msg("database migrated")
		}
	}
	if err := schema.Check(ctx, pool); err != nil {
		return err
	}
	pol, err := loadPolicy(c)
	if err != nil {
		return err
	}
	if c.Duration("pull-stats-interval") <= 0 {
		return fmt.Errorf("--pull-stats-interval must be above zero, not %s", c.Duration("pull-stats-interval"))
	}
	cur := policy.NewCurrent(pol)
	if path := c.String("policy-file"); path != "" {
		logPolicy(log, "policy loaded", path, pol)
	}
	var ids atomic.Pointer[auth.Identities]
	gate, err := newGate(c, cur, &ids)
	if err != nil {
		return err
	}
	var reloadIdentities func() error
	if gate != nil {
		reloadIdentities = func() error {
			i, err := loadIdentities(c)
			if err == nil {
				ids.Store(i)
				warnWeakHashes(log, i)
			}
			return err
		}
		warnWeakHashes(log, ids.Load())
		log.Info().Str("service", gate.Service).Bool("token_endpoint", gate.Issuer != nil).Msg("authentication on")
		if gate.Realm == "" {
			log.Warn().Msg("--auth-realm is not set: challenges name a token endpoint derived from the address each connection arrived on, or a trusted proxy's X-Forwarded-Host; set it to the URL clients reach /token at")
		}
	}
	reloadOnHUP(ctx, c.String("policy-file"), cur, reloadIdentities, log)
	s3, err := openS3(ctx, c)
	if err != nil {
		return err
	}
	streamPool, err := openStreamPool(ctx, c, c.Int("upload-conns"))
	if err != nil {
		return err
	}
	defer streamPool.Close()
	stcfg := store.Config{
		AutoMount: c.Bool("auto-mount"), StreamDB: streamPool, StreamWait: lim.uploadConnWait, SessionLockTimeout: lim.uploadLockWait, Redirect: c.Bool("s3-redirect"),
		Streaming: streaming, Quotas: cur.QuotasFor, RecordPulls: true,
		AuditLog: func(e store.AuditEvent) { logAuditEvent(log, e) },
		Webhooks: func() []policy.Webhook { return cur.Get().Webhooks },
	}
	if err := uploadLimits(c, &stcfg); err != nil {
		return err
	}
	st, err := store.New(pool, s3, stcfg)
	if err != nil {
		return err
	}
	// The serving chain over the store (internal/chain says what wraps
	// what, and why).
	chainCfg := chain.Config{Index: st, Policy: cur.Get, Log: log}
	if gate != nil {
		// A virtual name shows each caller only the sources it may pull.
		chainCfg.Access = gate.Allowed
	}
	api, px := chain.New(chainCfg)
	// Deferred before the pools close, and not stopped by the signal: the
	// pulls served while draining are written too.
	defer startPullFlush(context.WithoutCancel(ctx), c.Duration("pull-stats-interval"), log, st.FlushPulls, px.FlushStats)()
	stopScans, err := startScans(ctx, c, pool, st, log)
	if err != nil {
		return err
	}
	defer stopScans()
	defer startWebhooks(ctx, pool, log)()
	stopRetention, err := startRetention(ctx, c.Duration("retention-interval"), pool, st, cur, log)
	if err != nil {
		return err
	}
	defer stopRetention()
	stopGC, err := startGC(ctx, c, pool, s3, log)
	if err != nil {
		return err
	}
	// Before the pools close: a pass in progress is cancelled and waited for.
	defer stopGC()
	stopExpiry, err := startUploadExpiry(ctx, c, pool, s3, log)
	if err != nil {
		return err
	}
	defer stopExpiry()
	opts := httpapi.Options{
		Store: api, Logger: log, AutoMount: c.Bool("auto-mount"),
		BodyIdleTimeout: c.Duration("body-idle-timeout"),
		BodyMinRate:     lim.bodyMinRate, BodyRateWindow: lim.bodyRateWindow,
		UploadsPerClient: lim.uploadsPerClient, ManifestMemory: lim.manifestMemory,
		TrustedProxies: proxies,
	}
	if gate != nil {
		opts.Auth = gate
	}
	opts.Audit = func(ctx context.Context, rec httpapi.AuditRecord) {
		err := st.RecordAudit(ctx, store.AuditEvent{Action: rec.Action, Identity: rec.Identity, Repository: rec.Repository, Detail: rec.Detail,
			Unverified: rec.Unverified, Attempts: rec.Attempts})
		if err != nil {
			log.Error().Err(err).Str("action", rec.Action).Msg("writing an audit event")
		}
	}
	server := httpapi.New(opts)

	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	srv := &http.Server{
		Handler:           server,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info().Str("listen", ln.Addr().String()).Str("version", version).Msg("serving")
	notifyReady(log)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Drain: fail readiness first so balancers move traffic away while we
	// still answer, then stop accepting and let in-flight requests finish.
	server.SetDraining(true)
	notifyStopping(log)
	log.Info().Dur("drain_delay", c.Duration("drain-delay")).Msg("draining")
	time.Sleep(c.Duration("drain-delay"))
	sctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout"))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Cut what is still in flight: its handlers fail and roll back,
		// which returns their database connections, so the deferred
		// pool.Close cannot wait on them and the timeout stays a bound.
		srv.Close()
		log.Warn().Err(err).Msg("cut the requests still in flight after the shutdown timeout")
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}
