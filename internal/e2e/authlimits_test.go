// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/auth"
)

// tokenCall asks the token endpoint with an Authorization header (none
// when ""), and returns the status, the challenge and the body.
func tokenCall(t *testing.T, s *Stack, query, authorization string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.Addr+"/token?service=ha-registry"+query, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

// basic is an Authorization header with Basic credentials.
func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// randomHex is n random bytes in hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// auditRows counts the audit log's rows.
func auditRows(t *testing.T, s *Stack) int {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM audit_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTokenEndpointRefusesBadRequests: over-long or unprintable names and
// secrets, and too many scopes, are refused with 400 and write nothing to
// the audit log; malformed Basic credentials get a Basic challenge, not an
// anonymous token.
func TestTokenEndpointRefusesBadRequests(t *testing.T) {
	s := StartAuth(t, newAuthFixture(t).gate)
	manyScopes := strings.Repeat("&scope=repository:public/app:pull", 51)
	for _, c := range []struct {
		name, query, authorization string
		status                     int
		challenge                  string
	}{
		{"a 300-byte name", "", basic(strings.Repeat("n", 300), "x"), 400, ""},
		// Random, so that PostgreSQL cannot compress it below the size an
		// index entry may have, as it can a repeated byte.
		{"a 3 KB name", "", basic(randomHex(1500), "x"), 400, ""},
		{"a name with a control character", "", basic("mallory\x1b[2J", "x"), 400, ""},
		{"a name of invalid UTF-8", "", basic("mallory\xff", "x"), 400, ""},
		{"a 2 KB password", "", basic("alice", strings.Repeat("p", 2048)), 400, ""},
		{"51 scopes", manyScopes, "", 400, ""},
		{"Basic, not base64", "", "Basic %%%", 401, `Basic realm="ha-registry"`},
		{"Basic without a colon", "", "Basic YWxpY2U=", 401, `Basic realm="ha-registry"`},
		{"no credentials", "&scope=repository:public/app:pull", "", 200, ""},
	} {
		before := auditRows(t, s)
		status, challenge, body := tokenCall(t, s, c.query, c.authorization)
		if status != c.status || challenge != c.challenge {
			t.Errorf("%s: %d, challenge %q, %s; want %d, challenge %q", c.name, status, challenge, body, c.status, c.challenge)
		}
		if status == 400 && !strings.Contains(body, "INVALID_REQUEST") {
			t.Errorf("%s: body %s, want INVALID_REQUEST", c.name, body)
		}
		if after := auditRows(t, s); after != before {
			t.Errorf("%s: the audit log grew by %d rows, want none", c.name, after-before)
		}
	}
}

// TestFailedLoginAudit: a failed login's name is kept cut to 64 bytes and
// marked unverified, so a password typed as the name is not kept whole.
func TestFailedLoginAudit(t *testing.T) {
	s := StartAuth(t, newAuthFixture(t).gate)
	typo := "Tr0ub4dor&3-" + strings.Repeat("ü", 60) // 132 bytes
	if status, _, body := tokenCall(t, s, "", basic(typo, "x")); status != 401 {
		t.Fatalf("a failed login: %d %s", status, body)
	}
	var identity string
	var unverified bool
	err := s.DB.QueryRow(context.Background(), `SELECT identity, identity_unverified FROM audit_events WHERE action = 'login.failed'`).
		Scan(&identity, &unverified)
	if err != nil {
		t.Fatal(err)
	}
	// 12 bytes and 24 two-byte ü, then the 3-byte ellipsis: 63 bytes, as
	// a 25th ü would make 65.
	want := "Tr0ub4dor&3-" + strings.Repeat("ü", 24) + "…"
	if identity != want || !unverified {
		t.Errorf("stored identity %q (unverified %v), want %q marked unverified", identity, unverified, want)
	}
}

// TestThrottledLoginsAudit: however many attempts the throttle refuses,
// the audit log grows by one row when a count's window opens and one
// when it ends, which holds the number of the others.
func TestThrottledLoginsAudit(t *testing.T) {
	f := newAuthFixture(t)
	const window = 4 * time.Second
	f.gate.Throttle = auth.NewThrottle(2, window)
	s := StartAuth(t, f.gate)
	attempt := func(user string, want int) {
		t.Helper()
		if status, _, body := tokenCall(t, s, "", basic(user, "guess")); status != want {
			t.Fatalf("%s: %d %s, want %d", user, status, body, want)
		}
	}
	start := time.Now()
	attempt("mallory", 401)
	attempt("mallory", 401)
	for range 100 {
		attempt("mallory", 429) // this name from this address
	}
	if n := auditRows(t, s); n != 3 {
		t.Errorf("2 failed logins and 100 refused: %d audit rows, want 3 (one per failure, one for the refusals so far)", n)
	}
	// 2 + 8 failures from this address reach its ceiling of 5 × 2.
	for i := range 8 {
		attempt("user"+strconv.Itoa(i), 401)
	}
	last := time.Now() // the last window opens after this
	for i := range 100 {
		attempt("random-"+strconv.Itoa(i), 429) // from this address
	}
	if time.Since(start) >= window {
		t.Fatalf("the attempts took %v, longer than the throttle's window", time.Since(start))
	}
	if n := auditRows(t, s); n != 12 {
		t.Errorf("10 failed logins and 200 refused: %d audit rows, want 12 (one per failure, one per opened window)", n)
	}

	// Once the windows end, the next request to the endpoint writes one
	// row per window with the number of the refusals not yet written.
	time.Sleep(time.Until(last.Add(window + 500*time.Millisecond)))
	if status, _, _ := tokenCall(t, s, "", ""); status != 200 {
		t.Fatalf("an anonymous token: %d", status)
	}
	rows, err := s.DB.Query(context.Background(), `SELECT identity, identity_unverified, address, attempts, detail FROM audit_events
		WHERE detail LIKE 'too many failed logins%' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type row struct {
		identity   string
		unverified bool
		address    string
		attempts   int
		detail     string
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.identity, &r.unverified, &r.address, &r.attempts, &r.detail); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := []struct {
		identity string
		attempts int
		detail   string
	}{
		{"mallory", 1, "too many failed logins of this name from this address: refused until"},
		{"", 1, "too many failed logins from this address: refused until"},
		{"mallory", 99, "too many failed logins of this name from this address: 99 more attempts refused from"},
		{"", 99, "too many failed logins from this address: 99 more attempts refused from"},
	}
	if len(got) != 4 {
		t.Fatalf("throttle rows: %+v, want 4", got)
	}
	// The two summaries come in either order.
	if got[2].identity == "" {
		got[2], got[3] = got[3], got[2]
	}
	for i, w := range want {
		g := got[i]
		if g.identity != w.identity || g.unverified != (w.identity != "") || g.address != "127.0.0.1" || g.attempts != w.attempts || !strings.HasPrefix(g.detail, w.detail) {
			t.Errorf("throttle row %d: %+v, want identity %q, address 127.0.0.1, %d attempts, detail %q...", i, g, w.identity, w.attempts, w.detail)
		}
	}
}
