// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ha-registry/ha-registry/policy"
)

// The CloudEvents types of the events, and their source.
const (
	TypePushed  = "io.ha-registry.image.pushed"
	TypeDeleted = "io.ha-registry.image.deleted"
	Source      = "ha-registry"
	// ContentType is the Content-Type of a structured-mode CloudEvent.
	ContentType = "application/cloudevents+json"
)

// Event is a change webhooks report.
type Event struct {
	// Type is [policy.EventPush] or [policy.EventDelete].
	Type string
	// Repository is the repository's name, such as team-a/app.
	Repository string
	// Digest is the manifest's digest; "" for a tag deletion.
	Digest string
	// Tag is "" when the change was by digest.
	Tag string
	// MediaType is the manifest's media type, when known.
	MediaType string
	// Identity is who made the change; "" when anonymous or when
	// authentication is off.
	Identity string
	// At is when the change happened; the zero time means now.
	At time.Time
}

// cloudEvent is a CloudEvents 1.0 event in structured mode
// (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md).
type cloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            string    `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            eventData `json:"data"`
}

// eventData is the data of the events.
type eventData struct {
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Tag        string `json:"tag,omitempty"`
	MediaType  string `json:"mediaType,omitempty"`
	Identity   string `json:"identity,omitempty"`
}

// CloudEvent formats e as a CloudEvents 1.0 JSON object, with a new
// random id: call it once per event and webhook, so that receivers can
// deduplicate retries by id. The subject is "repository:tag", or
// "repository@digest" when e has no tag.
func CloudEvent(e Event) ([]byte, error) {
	var typ string
	switch e.Type {
	case policy.EventPush:
		typ = TypePushed
	case policy.EventDelete:
		typ = TypeDeleted
	default:
		return nil, fmt.Errorf("webhook: unknown event type %q", e.Type)
	}
	if e.Repository == "" || (e.Tag == "" && e.Digest == "") {
		return nil, fmt.Errorf("webhook: event needs a repository and a tag or digest")
	}
	subject := e.Repository + "@" + e.Digest
	if e.Tag != "" {
		subject = e.Repository + ":" + e.Tag
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	return json.Marshal(cloudEvent{
		SpecVersion:     "1.0",
		ID:              hex.EncodeToString(id[:]),
		Source:          Source,
		Type:            typ,
		Subject:         subject,
		Time:            at.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data: eventData{
			Repository: e.Repository,
			Digest:     e.Digest,
			Tag:        e.Tag,
			MediaType:  e.MediaType,
			Identity:   e.Identity,
		},
	})
}

// Execer runs a statement: a pgx.Tx, pgx.Conn or pgxpool.Pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Enqueue adds e to the outbox once for each webhook of hooks that wants
// it, each with its own CloudEvent id. Give it the transaction of the
// change e reports, so the rows commit with the change or not at all.
func Enqueue(ctx context.Context, q Execer, hooks []policy.Webhook, e Event) error {
	if e.At.IsZero() {
		e.At = time.Now() // one time for all the webhooks' copies
	}
	for _, h := range hooks {
		if !h.Wants(e.Type, e.Repository) {
			continue
		}
		body, err := CloudEvent(e)
		if err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO webhook_outbox (url, event) VALUES ($1, $2)`,
			h.URL, json.RawMessage(body)); err != nil {
			return fmt.Errorf("webhook: queueing for %s: %w", h.URL, err)
		}
	}
	return nil
}
