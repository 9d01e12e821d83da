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

	"github.com/ha-registry/ha-registry/internal/chain"
	"github.com/ha-registry/ha-registry/internal/proxy"
	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/registry/httpapi"
	"github.com/ha-registry/ha-registry/s3store"
)

// Stack is one registry replica on its own database and bucket.
type Stack struct {
	// Addr is the registry's host:port on loopback.
	Addr string
	// DB is connected as the serving role, as a replica of a deployment
	// with the two roles of docs/auth.md.
	DB    *pgxpool.Pool
	S3    *s3store.Store
	Store *store.Store

	db    testenv.Database
	s3cfg testenv.S3Config
	opts  stackOptions
}

// stackOptions configure a stack's replicas.
type stackOptions struct {
	store store.Config
	authz httpapi.Authorizer
	// policy is the policy the serving chain reads (remotes, virtual
	// names, scanning rules); nil: an empty one.
	policy func() *policy.Policy
	// access, when set, reads a virtual name's sources with the caller's
	// rights, as serve does with authentication on.
	access proxy.Access
	// instrument, when set, wraps the serving chain to observe the calls
	// it receives (a counter); it must pass each call on.
	instrument func(registry.Store) registry.Store
}

// Start brings up a database migrated as its owner with grants to the
// serving role, a bucket and a registry serving them as the serving role
// on a free loopback port, all torn down when t ends.
func Start(t testing.TB) *Stack {
	t.Helper()
	return start(t, testenv.PostgresDatabase(t), testenv.S3(t), stackOptions{store: store.Config{AutoMount: true}})
}

// StartWith is [Start] with the store configured by cfg; the stack's
// replicas share it.
func StartWith(t testing.TB, cfg store.Config) *Stack {
	t.Helper()
	return start(t, testenv.PostgresDatabase(t), testenv.S3(t), stackOptions{store: cfg})
}

// StartAuth is [Start] with authz guarding the API.
func StartAuth(t testing.TB, authz httpapi.Authorizer) *Stack {
	t.Helper()
	return start(t, testenv.PostgresDatabase(t), testenv.S3(t), stackOptions{store: store.Config{AutoMount: true}, authz: authz})
}

// StartPolicy is [Start] with the serving chain reading the policy pol
// returns (remotes, virtual names, scanning rules).
func StartPolicy(t testing.TB, pol func() *policy.Policy) *Stack {
	t.Helper()
	return start(t, testenv.PostgresDatabase(t), testenv.S3(t), stackOptions{store: store.Config{AutoMount: true}, policy: pol})
}

// Replica starts another replica serving the same database and bucket as
// s, with its own connections, as a second process would.
func (s *Stack) Replica(t testing.TB) *Stack {
	t.Helper()
	return start(t, s.db, s.s3cfg, s.opts)
}

func start(t testing.TB, db testenv.Database, cfg testenv.S3Config, opts stackOptions) *Stack {
	stcfg := opts.store
	ctx := context.Background()
	migrateSplit(t, db)
	pool, err := pgxpool.New(ctx, db.Serving)
	if err != nil {
		t.Fatalf("connecting to postgres: %v", err)
	}
	t.Cleanup(pool.Close)
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
	log := zerolog.Nop()
	if os.Getenv("REGISTRY_TEST_LOG") != "" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr})
	}
	pol := opts.policy
	if pol == nil {
		empty := &policy.Policy{}
		pol = func() *policy.Policy { return empty }
	}
	// The API is served through the chain serve builds, so that what is
	// tested is what is served.
	api, _ := chain.New(chain.Config{Index: st, Policy: pol, Log: log, Access: opts.access})
	if opts.instrument != nil {
		api = opts.instrument(api)
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
	return &Stack{Addr: ln.Addr().String(), DB: pool, S3: s3, Store: st, db: db, s3cfg: cfg, opts: opts}
}

// migrateSplit migrates db as its owner and grants the serving role, as
// `registry migrate --grant-to` does.
func migrateSplit(t testing.TB, db testenv.Database) {
	t.Helper()
	ctx := context.Background()
	owner, err := pgxpool.New(ctx, db.Owner)
	if err != nil {
		t.Fatalf("connecting to postgres: %v", err)
	}
	defer owner.Close()
	if _, err := schema.Migrate(ctx, owner); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	if err := schema.Grant(ctx, owner, testenv.ServingRole); err != nil {
		t.Fatalf("granting the serving role: %v", err)
	}
}

// OwnerDB connects to the stack's database as the role that owns the
// schema, for what only the owner may do, closed when t ends.
func (s *Stack) OwnerDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), s.db.Owner)
	if err != nil {
		t.Fatalf("connecting to postgres: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
