// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/webhook"
	"github.com/ha-registry/ha-registry/policy"
)

// The audit log's actions.
const (
	AuditPush           = "push"            // a manifest stored, once per tag (or once untagged)
	AuditTagMove        = "tag.move"        // a push moved a tag from another manifest (detail: the old digest)
	AuditManifestDelete = "manifest.delete" // a manifest and its tags deleted
	AuditTagDelete      = "tag.delete"      // one tag deleted
	AuditBlobDelete     = "blob.delete"     // a repository's blob link deleted
	AuditDenied         = "denied"          // a request the policy refused (detail: why)
	AuditLoginFailed    = "login.failed"    // wrong credentials or throttled (identity: the name tried, unverified)
)

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Action     string    `json:"action"`
	Identity   string    `json:"identity"`
	Address    string    `json:"address"`
	Repository string    `json:"repository"`
	Digest     string    `json:"digest,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	// Unverified marks an identity no one proved (the name a failed
	// login tried), stored cut to [MaxUnverifiedIdentity] bytes.
	Unverified bool `json:"identity_unverified,omitempty"`
	// Attempts is how many attempts the event stands for: more than 1
	// for the login throttle's refusals, recorded one row per window.
	// 0 when recording means 1.
	Attempts int `json:"attempts"`
}

// MaxUnverifiedIdentity is the most bytes of an unverified identity the
// audit log keeps: enough to tell names apart, too few to keep a password
// typed into the user field whole in a table nobody may delete from.
const MaxUnverifiedIdentity = 64

// cutIdentity shortens an unverified name to MaxUnverifiedIdentity bytes
// of valid UTF-8, ending in "…" when cut.
func cutIdentity(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxUnverifiedIdentity {
		return s
	}
	const ellipsis = "…"
	n := MaxUnverifiedIdentity - len(ellipsis)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + ellipsis
}

// change is what a write did: an audit entry, and the webhook event it
// raises ("" for none).
type change struct {
	AuditEvent
	event     string
	mediaType string
}

// record writes changes to the audit log, and the webhook outbox, in the
// transaction of the write itself: they commit with it or not at all.
// The caller logs the returned events once the transaction commits.
func (s *Store) record(ctx context.Context, tx pgx.Tx, cs []change) ([]AuditEvent, error) {
	who, _ := auth.CallerFrom(ctx)
	var hooks []policy.Webhook
	if s.cfg.Webhooks != nil {
		hooks = s.cfg.Webhooks()
	}
	out := make([]AuditEvent, 0, len(cs))
	for _, c := range cs {
		e := c.AuditEvent
		e.Identity, e.Address, e.Attempts = who.Name, who.Address, 1
		if err := tx.QueryRow(ctx, `INSERT INTO audit_events (action, identity, address, repository, digest, tag, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, at`,
			e.Action, e.Identity, e.Address, e.Repository, e.Digest, e.Tag, e.Detail).Scan(&e.ID, &e.At); err != nil {
			return nil, err
		}
		if c.event != "" && len(hooks) > 0 {
			if err := webhook.Enqueue(ctx, tx, hooks, webhook.Event{Type: c.event, Repository: e.Repository,
				Digest: e.Digest, Tag: e.Tag, MediaType: c.mediaType, Identity: e.Identity, At: e.At}); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// logAudit hands committed events to the structured log.
func (s *Store) logAudit(events []AuditEvent) {
	if s.cfg.AuditLog == nil {
		return
	}
	for _, e := range events {
		s.cfg.AuditLog(e)
	}
}

// RecordAudit appends an event that changed nothing (a refusal, a failed
// login), with the identity and address of the caller in ctx unless the
// event names its own identity. An unverified identity is cut short
// ([MaxUnverifiedIdentity]).
func (s *Store) RecordAudit(ctx context.Context, e AuditEvent) error {
	who, _ := auth.CallerFrom(ctx)
	if e.Identity == "" {
		e.Identity = who.Name
	}
	if e.Address == "" {
		e.Address = who.Address
	}
	if e.Unverified {
		e.Identity = cutIdentity(e.Identity)
	}
	if e.Attempts <= 0 {
		e.Attempts = 1
	}
	err := s.db.QueryRow(ctx, `INSERT INTO audit_events (action, identity, address, repository, digest, tag, detail, identity_unverified, attempts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, at`,
		e.Action, e.Identity, e.Address, e.Repository, e.Digest, e.Tag, e.Detail, e.Unverified, e.Attempts).Scan(&e.ID, &e.At)
	if err != nil {
		return dbErr(err)
	}
	s.logAudit([]AuditEvent{e})
	return nil
}

// AuditFilter selects audit events; zero fields select everything.
type AuditFilter struct {
	Repository string
	Identity   string
	Action     string
	Since      time.Time
	Until      time.Time
	// Limit bounds the events returned, newest first; 0 means 1000.
	Limit int
}

// QueryAudit returns the events f selects, newest first.
func QueryAudit(ctx context.Context, db *pgxpool.Pool, f AuditFilter) ([]AuditEvent, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := db.Query(ctx, `SELECT id, at, action, identity, address, repository, digest, tag, detail,
			identity_unverified, attempts FROM audit_events
		WHERE ($1 = '' OR repository = $1) AND ($2 = '' OR identity = $2) AND ($3 = '' OR action = $3)
			AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5)
		ORDER BY at DESC, id DESC LIMIT $6`, f.Repository, f.Identity, f.Action, since, until, f.Limit)
	if err != nil {
		return nil, dbErr(err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, &e.At, &e.Action, &e.Identity, &e.Address, &e.Repository, &e.Digest, &e.Tag, &e.Detail,
			&e.Unverified, &e.Attempts)
		return e, err
	})
	return evs, dbErr(err)
}
