// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"context"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
)

// Access reports whether the caller in ctx may take action on repo, as
// the registry's gate decides it for a request naming repo
// ([auth.Gate.Allowed]: the token's claims, else the policy's rules for
// the caller's name).
type Access func(ctx context.Context, repo, action string) bool

// WithAccess makes s read a virtual name's sources with the caller's own
// rights: a source the caller may not pull is skipped as if it did not
// hold the name, and the skip is audited as a refusal. Without it (nil,
// the default) every source is read, as suits a registry with
// authentication off. It returns s.
func (s *Store) WithAccess(allowed Access) *Store {
	s.allowed = allowed
	return s
}

// mayRead reports whether the caller in ctx may read src while reading
// repo. A read of repo itself was judged by the gate already; a source of
// a virtual name is judged here. With audit set, a refused source is
// recorded as the gate records a refused pull.
func (s *Store) mayRead(ctx context.Context, repo, src string, audit bool) bool {
	if src == repo || s.allowed == nil || s.allowed(ctx, src, policy.ActionPull) {
		return true
	}
	if audit {
		s.auditSkip(ctx, repo, src)
	}
	return false
}

// auditSkip records that the caller reached src through the virtual name
// repo and was refused it.
func (s *Store) auditSkip(ctx context.Context, repo, src string) {
	who := "an anonymous caller"
	if c, _ := auth.CallerFrom(ctx); c.Name != "" {
		who = c.Name
	}
	// Not the request's context: a client that hangs up must not keep the
	// refusal out of the log.
	err := s.local.RecordAudit(context.WithoutCancel(ctx), store.AuditEvent{Action: store.AuditDenied, Repository: src,
		Detail: who + " may not pull " + src + " (through " + repo + ")"})
	if err != nil {
		s.log.Error().Err(err).Str("repo", src).Msg("writing an audit event")
	}
}

// readable are the sources of repo the caller in ctx may read, in order,
// without auditing the others: for reads that follow one which did.
func (s *Store) readable(ctx context.Context, repo string) []string {
	var out []string
	for _, src := range s.sources(repo) {
		if s.mayRead(ctx, repo, src, false) {
			out = append(out, src)
		}
	}
	return out
}
