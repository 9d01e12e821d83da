// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"
)

// deliveriesTotal counts this process's delivery attempts; a cluster's
// totals are the sums over its replicas.
var deliveriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "registry_webhook_deliveries_total",
	Help: "Webhook delivery attempts, by result: delivered (answered 2xx), retry (failed, to be retried) or failed (failed the last allowed attempt).",
}, []string{"result"})

func init() {
	// Every result is exported from the start, at 0, for rate() and alerts.
	for _, result := range []string{"delivered", "retry", "failed"} {
		deliveriesTotal.WithLabelValues(result)
	}
}

// The defaults of [Deliverer].
const (
	DefaultBatch       = 10
	DefaultMaxAttempts = 15
	DefaultPoll        = time.Second
	// DefaultTimeout bounds a POST of the default client, and so how long
	// a round holds its row locks per row.
	DefaultTimeout = 10 * time.Second
)

const (
	maxBackoff = 10 * time.Minute
	// shutdownGrace is how long Run lets the round in flight go on once
	// its context ends.
	shutdownGrace = 10 * time.Second
	// recordTimeout bounds writing a round's outcomes and committing.
	recordTimeout = 30 * time.Second
	maxErrorLen   = 500
)

// DefaultBackoff is the wait before the next attempt after attempt
// failures: 1s after the first, doubling, at most 10 minutes.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 20 {
		return maxBackoff
	}
	return min(time.Second<<(attempt-1), maxBackoff)
}

// defaultClient does not follow redirects: a 3xx is a failed delivery,
// not a POST turned into a GET.
var defaultClient = &http.Client{
	Timeout:       DefaultTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Deliverer sends the due rows of the outbox. Run one in every replica:
// row locks make each row sent by one of them.
type Deliverer struct {
	DB *pgxpool.Pool
	// Client sends the events; nil means a client with a
	// [DefaultTimeout] that does not follow redirects. Its timeout bounds
	// how long a round holds the rows it claimed.
	Client *http.Client
	Log    zerolog.Logger
	// Batch is how many rows a round claims; 0 means [DefaultBatch].
	Batch int
	// MaxAttempts is how many failed attempts mark a row failed;
	// 0 means [DefaultMaxAttempts].
	MaxAttempts int
	// Backoff is the wait before the next attempt after attempt failures;
	// nil means [DefaultBackoff].
	Backoff func(attempt int) time.Duration
	// Poll is how often Run looks for due rows; 0 means [DefaultPoll].
	Poll time.Duration
}

func (d *Deliverer) batch() int {
	if d.Batch > 0 {
		return d.Batch
	}
	return DefaultBatch
}

func (d *Deliverer) maxAttempts() int {
	if d.MaxAttempts > 0 {
		return d.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (d *Deliverer) backoff(attempt int) time.Duration {
	if d.Backoff != nil {
		return max(d.Backoff(attempt), 0)
	}
	return DefaultBackoff(attempt)
}

func (d *Deliverer) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return defaultClient
}

// outboxRow is a claimed row of webhook_outbox.
type outboxRow struct {
	id       int64
	url      string
	event    []byte
	attempts int
}

// attempt is the outcome of one POST: err nil means delivered.
type attempt struct {
	row outboxRow
	err error
}

// DeliverDue runs one round: it claims up to Batch due rows, POSTs each,
// records the outcomes in the transaction that holds the rows' locks and
// commits, returning how many were delivered (answered 2xx). A failure
// counts an attempt, and sets the next one after Backoff, or marks the
// row failed at MaxAttempts.
//
// If ctx ends during the round, the rows not yet sent stay due and
// untouched, and the outcomes of those sent are still recorded, so no
// row is marked delivered without a 2xx and none that got one is sent
// again.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	tx, err := d.DB.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT id, url, event::text, attempts FROM webhook_outbox
		WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`, d.batch())
	if err != nil {
		return 0, fmt.Errorf("webhook: claiming rows: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (outboxRow, error) {
		var o outboxRow
		var event string
		if err := r.Scan(&o.id, &o.url, &event, &o.attempts); err != nil {
			return o, err
		}
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(event)); err != nil {
			return o, err
		}
		o.event = b.Bytes()
		return o, nil
	})
	if err != nil {
		return 0, fmt.Errorf("webhook: claiming rows: %w", err)
	}
	if len(claimed) == 0 {
		return 0, nil
	}

	var done []attempt
	for _, r := range claimed {
		if ctx.Err() != nil {
			break
		}
		err := d.post(ctx, r)
		if err != nil && ctx.Err() != nil {
			break // interrupted, not failed: the row stays due
		}
		done = append(done, attempt{r, err})
	}
	return d.record(context.WithoutCancel(ctx), tx, done)
}

// record writes the outcomes of a round and commits; it does not follow
// the round's context, so what was sent is recorded even when that ends.
func (d *Deliverer) record(ctx context.Context, tx pgx.Tx, done []attempt) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	counts := map[string]int{}
	for _, a := range done {
		if a.err == nil {
			if _, err := tx.Exec(ctx, `UPDATE webhook_outbox SET delivered_at = clock_timestamp() WHERE id = $1`, a.row.id); err != nil {
				return 0, fmt.Errorf("webhook: recording a delivery: %w", err)
			}
			counts["delivered"]++
			continue
		}
		n := a.row.attempts + 1
		final := n >= d.maxAttempts()
		msg := errorText(a.err)
		if _, err := tx.Exec(ctx, `UPDATE webhook_outbox SET attempts = $2, last_error = $3,
			next_attempt_at = clock_timestamp() + $4::bigint * interval '1 microsecond',
			failed_at = CASE WHEN $5 THEN clock_timestamp() END
			WHERE id = $1`, a.row.id, n, msg, d.backoff(n).Microseconds(), final); err != nil {
			return 0, fmt.Errorf("webhook: recording a failure: %w", err)
		}
		ev := d.Log.Warn()
		result := "retry"
		if final {
			ev = d.Log.Error()
			result = "failed"
		}
		counts[result]++
		ev.Int64("outbox_id", a.row.id).Str("endpoint", endpoint(a.row.url)).Int("attempts", n).
			Bool("final", final).Str("error", msg).Msg("webhook delivery failed")
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("webhook: committing a round: %w", err)
	}
	for result, n := range counts {
		deliveriesTotal.WithLabelValues(result).Add(float64(n))
	}
	return counts["delivered"], nil
}

// post sends one row's event; nil means the receiver answered 2xx.
func (d *Deliverer) post(ctx context.Context, r outboxRow) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.event))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "ha-registry-webhook")
	resp, err := d.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the row has the URL, which may hold a token
		}
		return err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // to reuse the connection
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if s := strings.Join(strings.Fields(string(head)), " "); s != "" {
		return fmt.Errorf("%s: %s", resp.Status, s)
	}
	return errors.New(resp.Status)
}

// errorText is err as last_error holds it: valid UTF-8 without NUL
// (which PostgreSQL's text refuses), at most maxErrorLen characters.
func errorText(err error) string {
	s := strings.ReplaceAll(strings.ToValidUTF8(err.Error(), "\uFFFD"), "\x00", "")
	if r := []rune(s); len(r) > maxErrorLen {
		s = string(r[:maxErrorLen])
	}
	return s
}

// endpoint is a webhook URL for logs: without its query, which may hold
// a token.
func endpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// Run runs rounds every Poll, and at once again after a round that
// delivered a full batch, until ctx ends. The round in flight when ctx
// ends gets a short grace to finish its POSTs and record them, so that a
// graceful shutdown does not cause redeliveries.
func (d *Deliverer) Run(ctx context.Context) {
	poll := d.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		for ctx.Err() == nil {
			n, err := d.round(ctx)
			if err != nil {
				d.Log.Warn().Err(err).Msg("webhook delivery round failed")
				break
			}
			if n < d.batch() {
				break
			}
		}
		timer.Reset(poll)
	}
}

// round runs DeliverDue under a context that ends shutdownGrace after
// ctx does.
func (d *Deliverer) round(ctx context.Context) (int, error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-rctx.Done():
		}
	})
	defer stop()
	return d.DeliverDue(rctx)
}

// Pending returns how many rows are neither delivered nor failed: due,
// or waiting for a retry.
func (d *Deliverer) Pending(ctx context.Context) (int, error) {
	var n int
	err := d.DB.QueryRow(ctx, `SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	return n, nil
}
