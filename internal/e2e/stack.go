// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/registry/httpapi"
	"github.com/ha-registry/ha-registry/s3store"
)

// Stack is one registry replica on its own database and bucket.
type Stack struct {
	// Addr is the registry's host:port on loopback.
	Addr  string
	DB    *pgxpool.Pool
	S3    *s3store.Store
	Store *store.Store

	dbURL string
	s3cfg testenv.S3Config
	opts  stackOptions
}

// stackOptions configure a stack's replicas.
type stackOptions struct {
	store store.Config
	authz httpapi.Authorizer
	// wrap, when set, serves the API from what it makes of the store.
	wrap func(*store.Store) registry.Store
}

// Start brings up a migrated database, a bucket and a registry serving
// them on a free loopback port, all torn down when t ends.
func Start(t testing.TB) *Stack {
	t.Helper()
	return start(t, testenv.Postgres(t), testenv.S3(t), stackOptions{store: store.Config{AutoMount: true}})
}

// StartWith is [Start] with the store configured by cfg; the stack's
// replicas share it.
func StartWith(t testing.TB, cfg store.Config) *Stack {
	t.Helper()
	return start(t, testenv.Postgres(t), testenv.S3(t), stackOptions{store: cfg})
}

// StartAuth is [Start] with authz guarding the API.
func StartAuth(t testing.TB, authz httpapi.Authorizer) *Stack {
	t.Helper()
	return start(t, testenv.Postgres(t), testenv.S3(t), stackOptions{store: store.Config{AutoMount: true}, authz: authz})
}

// StartWrapped is [Start] serving the API from wrap's store over the
// local one (a pull-through cache).
func StartWrapped(t testing.TB, wrap func(*store.Store) registry.Store) *Stack {
	t.Helper()
	return start(t, testenv.Postgres(t), testenv.S3(t), stackOptions{store: store.Config{AutoMount: true}, wrap: wrap})
}

// Replica starts another replica serving the same database and bucket as
// s, with its own connections, as a second process would.
func (s *Stack) Replica(t testing.TB) *Stack {
	t.Helper()
	return start(t, s.dbURL, s.s3cfg, s.opts)
}

func start(t testing.TB, dbURL string, cfg testenv.S3Config, opts stackOptions) *Stack {
	stcfg := opts.store
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("connecting to postgres: %v", err)
	}
	t.Cleanup(pool.Close)
	if _, err := schema.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	s3, err := s3store.New(ctx, s3store.Config{
		Endpoint: cfg.Endpoint, Region: cfg.Region, Bucket: cfg.Bucket, PathStyle: true,
		AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
	})
	if err != nil {
		t.Fatalf("s3store: %v", err)
	}
	st, err := store.New(pool, s3, stcfg)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	var api registry.Store = st
	if opts.wrap != nil {
		api = opts.wrap(st)
	}
	log := zerolog.Nop()
	if os.Getenv("REGISTRY_TEST_LOG") != "" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &http.Server{
		Handler: httpapi.New(httpapi.Options{Store: api, Logger: log, AutoMount: stcfg.AutoMount, Auth: opts.authz,
			Audit: func(ctx context.Context, rec httpapi.AuditRecord) {
				if err := st.RecordAudit(ctx, store.AuditEvent{Action: rec.Action, Identity: rec.Identity,
					Repository: rec.Repository, Detail: rec.Detail, Unverified: rec.Unverified, Attempts: rec.Attempts}); err != nil {
					t.Errorf("audit: %v", err)
				}
			}}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &Stack{Addr: ln.Addr().String(), DB: pool, S3: s3, Store: st, dbURL: dbURL, s3cfg: cfg, opts: opts}
}
