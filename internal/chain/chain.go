// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package chain builds the serving chain: the stack of [registry.Layer]s
// between the HTTP layer and the index store, in one order written once.
// `registry serve` and every test that serves the API build it here, so
// that what is tested is what is served.
//
// From the inside out:
//
//	index store (internal/store: PostgreSQL + S3)
//	  → pull-through cache (internal/proxy)
//	  → scan gate (internal/scan)
//	  → [trust gate, a later issue: here]
//	  → HTTP layer (registry/httpapi)
//
// Each layer embeds [registry.Undecided] and writes each contract method
// it serves, so a method a layer did not decide on is refused; optional
// abilities such as [registry.BlobRedirector] are found through the
// layers that pass them with [registry.Ability].
package chain

import (
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/proxy"
	"github.com/ha-registry/ha-registry/internal/scan"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// Config is what the chain's layers need.
type Config struct {
	// Index is the store the chain serves from.
	Index *store.Store
	// Policy returns the policy in force: its remotes, virtual names and
	// scanning rules.
	Policy func() *policy.Policy
	// Log receives the cache's upstream errors.
	Log zerolog.Logger
	// Access, when set, reads a virtual name's sources with the caller's
	// own rights ([proxy.Store.WithAccess]); nil, as with authentication
	// off, reads every source.
	Access proxy.Access
}

// New builds the serving chain over c.Index and returns its outermost
// layer, for the HTTP layer, and the pull-through cache inside it, whose
// hit statistics `serve` flushes.
func New(c Config) (registry.Store, *proxy.Store) {
	// The pull-through cache sits right on the index store: it resolves
	// a remote or virtual name into the repositories that hold the
	// content (caching a remote's as it reads), refuses every write into
	// such a name, and redirects only to blobs the bucket holds of
	// sources the caller may read. Everything above it sees names as the
	// client wrote them, with content behind them.
	cache := proxy.New(c.Index, c.Policy, c.Log)
	if c.Access != nil {
		cache.WithAccess(c.Access)
	}
	// The scan gate sits above the cache, so that its rules judge every
	// pull under the name the client asked for, cached and virtual
	// content included: the rule of the name pulled applies.
	var api registry.Store = scan.NewGate(cache, c.Index, c.Policy)
	// The trust gate (signature policy, a later issue) slots in here,
	// above the scan gate: both judge manifest pulls under the name the
	// client asked for, so their order only decides which refusal a
	// client sees when both refuse; below the cache it would miss cached
	// and virtual content. It must be a registry.Layer like the two
	// below it.
	return api, cache
}
