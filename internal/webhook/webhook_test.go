// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"

	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

const dgst = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

var at = time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.FixedZone("CET", 3600))

func push(repo, tag string) Event {
	return Event{Type: policy.EventPush, Repository: repo, Digest: dgst, Tag: tag,
		MediaType: "application/vnd.oci.image.manifest.v1+json", Identity: "alice", At: at}
}

func TestCloudEvent(t *testing.T) {
	// want is a CloudEvent but for its id; nil when CloudEvent must fail.
	want := func(typ, subject, time string, data map[string]any) map[string]any {
		return map[string]any{"specversion": "1.0", "source": "ha-registry", "type": typ, "subject": subject,
			"time": time, "datacontenttype": "application/json", "data": data}
	}
	for _, tc := range []struct {
		name  string
		event Event
		want  map[string]any
	}{
		{"push by tag", push("team-a/app", "v1"), want(TypePushed, "team-a/app:v1", "2026-03-01T11:30:00.123456789Z",
			map[string]any{"repository": "team-a/app", "digest": dgst, "tag": "v1",
				"mediaType": "application/vnd.oci.image.manifest.v1+json", "identity": "alice"})},
		{"anonymous delete of a tag", Event{Type: policy.EventDelete, Repository: "app", Tag: "old", At: at.Truncate(time.Second)},
			want(TypeDeleted, "app:old", "2026-03-01T11:30:00Z", map[string]any{"repository": "app", "tag": "old"})},
		{"delete by digest", Event{Type: policy.EventDelete, Repository: "app", Digest: dgst, Identity: "bob", At: at},
			want(TypeDeleted, "app@"+dgst, "2026-03-01T11:30:00.123456789Z",
				map[string]any{"repository": "app", "digest": dgst, "identity": "bob"})},
		{"unknown type", Event{Type: "pull", Repository: "app", Tag: "v1"}, nil},
		{"neither tag nor digest", Event{Type: policy.EventPush, Repository: "app"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := CloudEvent(tc.event)
			if tc.want == nil || err != nil {
				if (tc.want == nil) != (err != nil) {
					t.Fatalf("CloudEvent = %s, %v", b, err)
				}
				return
			}
			got := decode(t, b)
			id, _ := got["id"].(string)
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
				t.Errorf("id %q is not 16 bytes in hex", id)
			}
			delete(got, "id")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("CloudEvent (-want +got):\n%s", diff)
			}
			if again, _ := CloudEvent(tc.event); decode(t, again)["id"] == id {
				t.Errorf("two CloudEvents of one event share the id %s", id)
			}
		})
	}
}

func TestEnqueueWants(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	hooks := []policy.Webhook{
		hook(t, "http://all.test/", ""),
		hook(t, "http://push.test/", "", policy.EventPush),
		hook(t, "http://delete.test/", "", policy.EventDelete),
		hook(t, "http://team-a.test/", "team-a/**"),
		hook(t, "http://team-a-push.test/", "team-a/*", policy.EventPush),
	}
	for _, tc := range []struct {
		name  string
		hooks []policy.Webhook
		event Event
		want  []string
	}{
		{"push elsewhere", hooks, push("other/app", "v1"), []string{"http://all.test/", "http://push.test/"}},
		{"push in team-a", hooks, push("team-a/app", "v1"),
			[]string{"http://all.test/", "http://push.test/", "http://team-a.test/", "http://team-a-push.test/"}},
		{"push deep in team-a", hooks, push("team-a/tools/lint", "v1"),
			[]string{"http://all.test/", "http://push.test/", "http://team-a.test/"}},
		{"delete in team-a", hooks, Event{Type: policy.EventDelete, Repository: "team-a/app", Tag: "v1"},
			[]string{"http://all.test/", "http://delete.test/", "http://team-a.test/"}},
		{"none match", hooks[2:], push("other/app", "v1"), nil},
		{"no webhooks", nil, push("other/app", "v1"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.Exec(t.Context(), `DELETE FROM webhook_outbox`); err != nil {
				t.Fatal(err)
			}
			mustEnqueue(t, db, tc.hooks, tc.event)
			var urls []string
			ids := map[any]bool{}
			for _, r := range query[stored](t, db, selectStored) {
				urls = append(urls, r.URL)
				ids[decode(t, []byte(r.Event))["id"]] = true
			}
			if diff := cmp.Diff(tc.want, urls); diff != "" {
				t.Errorf("outbox URLs (-want +got):\n%s", diff)
			}
			if len(ids) != len(urls) {
				t.Errorf("%d rows share %d ids", len(urls), len(ids))
			}
		})
	}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	db, rc := fixture(t, nil, push("app", "v1"), push("team-a/app", ""), Event{Type: policy.EventDelete, Repository: "app", Tag: "v1"})
	queued := query[stored](t, db, selectStored)
	if n := must(t)((&Deliverer{DB: db}).DeliverDue(t.Context())); n != 3 {
		t.Fatalf("DeliverDue delivered %d, want 3", n)
	}
	var want []delivery
	for _, s := range queued {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(s.Event)); err != nil {
			t.Fatal(err)
		}
		want = append(want, delivery{"application/cloudevents+json", b.String()})
	}
	got := rc.deliveries()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("receiver got (-want +got):\n%s", diff)
	}
	for i, subject := range []string{"app:v1", "team-a/app@" + dgst, "app:v1"} {
		if i < len(got) && decode(t, []byte(got[i].Body))["subject"] != subject {
			t.Errorf("request %d is not about %s: %s", i, subject, got[i].Body)
		}
	}
	delivered := row{URL: rc.URL, Delivered: true}
	assertOutbox(t, db, []row{delivered, delivered, delivered})
}

// TestRetries is not parallel: it checks the counters.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		codes    []int // the receiver's answers, then 200
		max      int
		requests int
		want     row
		counted  map[string]float64
	}{
		{"500 twice then 200", []int{500, 500}, 0, 3,
			row{Attempts: 2, LastError: "500 Internal Server Error", Delivered: true}, map[string]float64{"retry": 2, "delivered": 1}},
		{"MaxAttempts failures", []int{503, 503, 503, 503, 503}, 3, 3,
			row{Attempts: 3, LastError: "503 Service Unavailable", Failed: true}, map[string]float64{"retry": 2, "failed": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, rc := fixture(t, status(tc.codes...), push("app", "v1"))
			before := counters(t)
			d := &Deliverer{DB: db, MaxAttempts: tc.max, Backoff: func(int) time.Duration { return 0 }}
			for range 6 {
				must(t)(d.DeliverDue(t.Context()))
			}
			got := rc.deliveries()
			if len(got) != tc.requests || slices.ContainsFunc(got, func(g delivery) bool { return g != got[0] }) {
				t.Errorf("receiver got %v, want the same event %d times", got, tc.requests)
			}
			tc.want.URL = rc.URL
			assertOutbox(t, db, []row{tc.want})
			if n := must(t)(d.Pending(t.Context())); n != 0 {
				t.Errorf("Pending = %d, want 0", n)
			}
			assertCounted(t, before, tc.counted)
		})
	}
}

func TestTwoReplicasDeliverOnce(t *testing.T) {
	t.Parallel()
	events := make([]Event, 50)
	for i := range events {
		events[i] = push("app", "v"+strconv.Itoa(i))
	}
	db, rc := fixture(t, func(int, http.ResponseWriter, *http.Request) { time.Sleep(2 * time.Millisecond) }, events...)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		d := &Deliverer{DB: mustPool(t, db.Config().ConnString()), Batch: 5, Poll: 5 * time.Millisecond}
		wg.Go(func() { d.Run(ctx) })
	}
	for deadline := time.Now().Add(30 * time.Second); must(t)((&Deliverer{DB: db}).Pending(t.Context())) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("events still pending after 30s")
		}
	}
	cancel()
	wg.Wait()
	seen := map[any]int{}
	for _, g := range rc.deliveries() {
		seen[decode(t, []byte(g.Body))["id"]]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if len(seen) != 50 {
		t.Errorf("receiver got %d distinct events, want 50", len(seen))
	}
}

func TestHangingReceiverRetried(t *testing.T) {
	t.Parallel()
	db, _ := fixture(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done() // until the client gives up
		}
	}, push("app", "v1"))
	d := &Deliverer{DB: db, Client: &http.Client{Timeout: 200 * time.Millisecond}, Backoff: func(int) time.Duration { return 0 }}
	if n := must(t)(d.DeliverDue(t.Context())); n != 0 {
		t.Fatalf("DeliverDue delivered %d to a hanging receiver", n)
	}
	if rows := outbox(t, db); len(rows) != 1 || rows[0].Attempts != 1 || rows[0].Delivered || rows[0].Failed ||
		!strings.Contains(rows[0].LastError, "Client.Timeout") {
		t.Fatalf("outbox after a timeout: %+v", rows)
	}
	if n := must(t)(d.DeliverDue(t.Context())); n != 1 {
		t.Errorf("retry delivered %d, want 1", n)
	}
}

func TestCancelMidBatch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	db, rc := fixture(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 2 {
			cancel()
			<-r.Context().Done()
		}
	}, push("app", "v1"), push("app", "v2"), push("app", "v3"))
	d := &Deliverer{DB: db}
	if n, err := d.DeliverDue(ctx); n != 1 || err != nil {
		t.Fatalf("DeliverDue = %d, %v; want the one sent before the cancel", n, err)
	}
	assertOutbox(t, db, []row{{URL: rc.URL, Delivered: true}, {URL: rc.URL}, {URL: rc.URL}})
	if n := must(t)(d.DeliverDue(t.Context())); n != 2 {
		t.Errorf("next round delivered %d, want the 2 left", n)
	}
}

func TestRunFinishesRoundOnShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	db, rc := fixture(t, func(int, http.ResponseWriter, *http.Request) {
		cancel()
		time.Sleep(300 * time.Millisecond)
	}, push("app", "v1"))
	(&Deliverer{DB: db}).Run(ctx)
	assertOutbox(t, db, []row{{URL: rc.URL, Delivered: true}})
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestRolledBackEnqueueSendsNothing(t *testing.T) {
	t.Parallel()
	db, rc := fixture(t, nil)
	tx, err := db.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, tx, []policy.Webhook{hook(t, rc.URL, "")}, push("app", "v1"))
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := must(t)((&Deliverer{DB: db}).DeliverDue(t.Context())); n != 0 {
		t.Errorf("DeliverDue delivered %d", n)
	}
	assertOutbox(t, db, nil)
	if got := rc.deliveries(); len(got) != 0 {
		t.Errorf("receiver got %v", got)
	}
}

// newDB returns a pool on a new, migrated database.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	db := mustPool(t, testenv.Postgres(t))
	if _, err := schema.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// fixture is a new database whose outbox holds events for one webhook,
// to a receiver that answers with answer.
func fixture(t *testing.T, answer func(int, http.ResponseWriter, *http.Request), events ...Event) (*pgxpool.Pool, *receiver) {
	t.Helper()
	db, rc := newDB(t), newReceiver(t, answer)
	mustEnqueue(t, db, []policy.Webhook{hook(t, rc.URL, "")}, events...)
	return db, rc
}

func mustPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	db, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// hook is a webhook to url for the events (all when none), limited to the
// repositories of glob unless it is "".
func hook(t *testing.T, url, glob string, events ...string) policy.Webhook {
	t.Helper()
	w := policy.Webhook{URL: url, Events: events}
	if glob != "" {
		g, err := policy.ParseGlob(glob)
		if err != nil {
			t.Fatal(err)
		}
		w.Repositories = g
	}
	return w
}

func mustEnqueue(t *testing.T, db Execer, hooks []policy.Webhook, events ...Event) {
	t.Helper()
	for _, e := range events {
		if err := Enqueue(t.Context(), db, hooks, e); err != nil {
			t.Fatal(err)
		}
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

// query returns the rows sql selects, column by field.
func query[T any](t *testing.T, db *pgxpool.Pool, sql string) []T {
	t.Helper()
	rows, _ := db.Query(t.Context(), sql) // an error comes out of CollectRows
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stored is an outbox row's event.
type stored struct{ URL, Event string }

const selectStored = `SELECT url, event::text FROM webhook_outbox ORDER BY id`

// row is the state of an outbox row.
type row struct {
	URL               string
	Attempts          int
	LastError         string
	Delivered, Failed bool
}

func outbox(t *testing.T, db *pgxpool.Pool) []row {
	t.Helper()
	return query[row](t, db, `SELECT url, attempts, last_error, delivered_at IS NOT NULL, failed_at IS NOT NULL
		FROM webhook_outbox ORDER BY id`)
}

func assertOutbox(t *testing.T, db *pgxpool.Pool, want []row) {
	t.Helper()
	if diff := cmp.Diff(want, outbox(t, db), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

// must returns n, failing the test if err is not nil.
func must(t *testing.T) func(n int, err error) int {
	return func(n int, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// receiver is a webhook endpoint that records the requests it gets.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []delivery
}

type delivery struct{ ContentType, Body string }

// newReceiver starts a receiver that answers its nth request (from 1)
// with answer, or 200 when answer is nil or writes nothing.
func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{r.Header.Get("Content-Type"), string(body)})
		n := len(rc.got)
		rc.mu.Unlock()
		if answer != nil {
			answer(n, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// status answers the first requests with codes, then 200.
func status(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= len(codes) {
			w.WriteHeader(codes[n-1])
		}
	}
}

// counters reads registry_webhook_deliveries_total, by result.
func counters(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, result := range []string{"delivered", "retry", "failed"} {
		var m dto.Metric
		if err := deliveriesTotal.WithLabelValues(result).Write(&m); err != nil {
			t.Fatal(err)
		}
		if v := m.GetCounter().GetValue(); v != 0 {
			out[result] = v
		}
	}
	return out
}

// assertCounted checks the counters grew by want since before.
func assertCounted(t *testing.T, before, want map[string]float64) {
	t.Helper()
	for result, v := range before {
		want[result] += v
	}
	if diff := cmp.Diff(want, counters(t)); diff != "" {
		t.Errorf("registry_webhook_deliveries_total (-want +got):\n%s", diff)
	}
}
