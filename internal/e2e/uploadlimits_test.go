// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/s3store"
)

// limitStack starts a stack whose store has cfg's upload limits, guarded
// by authz when it is not nil.
func limitStack(t *testing.T, cfg store.Config, authz *auth.Gate) *Stack {
	t.Helper()
	cfg.AutoMount = true
	opts := stackOptions{store: cfg}
	if authz != nil {
		opts.authz = authz
	}
	return start(t, testenv.PostgresDatabase(t), testenv.S3(t), opts)
}

// callFrom is [call] from the loopback address from (127.0.0.0/8 all
// reaches the stack), so that anonymous requests come from distinct
// clients.
func callFrom(t *testing.T, s *Stack, from, method, path string, headers map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://"+s.Addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", method, path, from, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// openSessions counts the upload rows.
func openSessions(t *testing.T, s *Stack) int {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(context.Background(), `SELECT count(*) FROM uploads`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// stagedBytes is what all sessions keep in PostgreSQL.
func stagedBytes(t *testing.T, s *Stack) int64 {
	t.Helper()
	var n int64
	if err := s.DB.QueryRow(context.Background(), `SELECT coalesce(sum(octet_length(staged)), 0)::bigint FROM uploads`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantTooMany checks a 429 TOOMANYREQUESTS whose message says want.
func wantTooMany(t *testing.T, what string, resp *http.Response, body []byte, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"TOOMANYREQUESTS"`) || !strings.Contains(string(body), want) {
		t.Errorf("%s: %d %s, want 429 TOOMANYREQUESTS saying %q", what, resp.StatusCode, body, want)
	}
}

// TestUploadSessionCaps: beyond the cap of open sessions of a repository,
// or of an anonymous client's address, a POST (and a mount that falls
// back to an upload) gets 429 naming the cap and creates nothing, not
// even the repository; other clients and repositories are not bound, and
// finishing or cancelling a session makes room.
func TestUploadSessionCaps(t *testing.T) {
	s := limitStack(t, store.Config{MaxUploadsPerRepository: 3, MaxUploadsPerClient: 5}, nil)
	const me, other = "127.0.0.1", "127.0.0.2"
	var locs []string
	for range 3 {
		resp, body := callFrom(t, s, me, "POST", "/v2/caps/a/blobs/uploads/", nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		locs = append(locs, resp.Header.Get("Location"))
	}
	before := snapshot(t, s)
	resp, body := callFrom(t, s, other, "POST", "/v2/caps/a/blobs/uploads/", nil, nil)
	wantTooMany(t, "a fourth session in caps/a", resp, body, "repository caps/a has 3 upload sessions open, the cap of open upload sessions per repository")
	unknown := digest.FromString("not stored anywhere")
	resp, body = callFrom(t, s, me, "POST", "/v2/caps/a/blobs/uploads/?mount="+unknown.String()+"&from=caps/b", nil, nil)
	wantTooMany(t, "a mount falling back to a session in caps/a", resp, body, "per repository")

	for range 2 {
		if resp, body := callFrom(t, s, me, "POST", "/v2/caps/b/blobs/uploads/", nil, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST caps/b: %d %s", resp.StatusCode, body)
		}
	}
	before = snapshot(t, s)
	resp, body = callFrom(t, s, me, "POST", "/v2/caps/c/blobs/uploads/", nil, nil)
	wantTooMany(t, "a sixth session of one address", resp, body, "the anonymous client at 127.0.0.1 has 5 upload sessions open, the cap of open upload sessions per client")
	if after := snapshot(t, s); after != before {
		t.Errorf("refused POSTs changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Another address is another client.
	if resp, body := callFrom(t, s, other, "POST", "/v2/caps/c/blobs/uploads/", nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Errorf("another client: %d %s", resp.StatusCode, body)
	}
	// A finished and a cancelled session free their places.
	blob := []byte("a small blob")
	if resp, body := callFrom(t, s, me, "PUT", locs[0]+"?digest="+digest.FromBytes(blob).String(), nil, blob); resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish: %d %s", resp.StatusCode, body)
	}
	if resp, body := callFrom(t, s, me, "DELETE", locs[1], nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	for _, repo := range []string{"caps/a", "caps/c"} {
		if resp, body := callFrom(t, s, me, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil); resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST %s after freeing two places: %d %s", repo, resp.StatusCode, body)
		}
	}
	if n := openSessions(t, s); n != 6 {
		t.Errorf("%d sessions open, want 6", n)
	}
}

// TestUploadSessionCapPerName: with authentication, a user's or robot's
// sessions count against its name, whatever address they come from.
func TestUploadSessionCapPerName(t *testing.T) {
	f := newAuthFixture(t)
	s := limitStack(t, store.Config{MaxUploadsPerClient: 2}, f.gate)
	access := auth.Access{Type: "repository", Name: "team-a/app", Actions: []string{"pull", "push"}}
	alice, ci := signAs(t, f.key, "alice", access), signAs(t, f.key, "ci", access)
	for i, from := range []string{"127.0.0.1", "127.0.0.3"} {
		resp, body := callFrom(t, s, from, "POST", "/v2/team-a/app/blobs/uploads/", map[string]string{"Authorization": "Bearer " + alice}, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("alice's session %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := callFrom(t, s, "127.0.0.4", "POST", "/v2/team-a/app/blobs/uploads/", map[string]string{"Authorization": "Bearer " + alice}, nil)
	wantTooMany(t, "alice's third session", resp, body, "alice has 2 upload sessions open, the cap of open upload sessions per client")
	if resp, body := callFrom(t, s, "127.0.0.1", "POST", "/v2/team-a/app/blobs/uploads/", map[string]string{"Authorization": "Bearer " + ci}, nil); resp.StatusCode != http.StatusAccepted {
		t.Errorf("the robot, from alice's address: %d %s", resp.StatusCode, body)
	}
}

// TestUploadSessionCapsAcrossReplicas: POSTs racing through two replicas
// open exactly as many sessions as each cap allows.
func TestUploadSessionCapsAcrossReplicas(t *testing.T) {
	const racers = 24
	for _, c := range []struct {
		name string
		cfg  store.Config
		repo func(i int) string
	}{
		{"repository", store.Config{MaxUploadsPerRepository: 5}, func(int) string { return "race/one" }},
		{"client", store.Config{MaxUploadsPerClient: 5}, func(i int) string { return fmt.Sprintf("race/r%d", i) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := limitStack(t, c.cfg, nil)
			replicas := []*Stack{a, a.Replica(t)}
			codes := make([]int, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					resp, _ := call(t, replicas[i%2], "POST", "/v2/"+c.repo(i)+"/blobs/uploads/", nil, nil)
					codes[i] = resp.StatusCode
				})
			}
			wg.Wait()
			accepted := 0
			for i, code := range codes {
				switch code {
				case http.StatusAccepted:
					accepted++
				case http.StatusTooManyRequests:
				default:
					t.Errorf("POST %d: %d", i, code)
				}
			}
			if n := openSessions(t, a); accepted != 5 || n != 5 {
				t.Errorf("%d POSTs accepted and %d sessions open under a cap of 5", accepted, n)
			}
		})
	}
}

// patchChunk sends a chunk to an upload session as the next one.
func patchChunk(t *testing.T, s *Stack, loc string, off int, chunk []byte) (*http.Response, []byte) {
	t.Helper()
	return call(t, s, "PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("%d-%d", off, off+len(chunk)-1),
		"Content-Type": "application/octet-stream"}, chunk)
}

// mustStart opens a session and returns its location.
func mustStart(t *testing.T, s *Stack, repo string) string {
	t.Helper()
	resp, body := call(t, s, "POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", repo, resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// TestQuotaBindsOpenSessions: a session opened while its namespace had
// room can neither append nor commit once the namespace is over its byte
// quota (403 DENIED, nothing stored); and a commit whose blob would take
// the namespace past its limit is refused while a smaller one goes.
func TestQuotaBindsOpenSessions(t *testing.T) {
	first := newTestImage(t, 40<<10, nil)
	room := int64(20 << 10)
	p := mustParsePolicy(t, fmt.Sprintf("quotas:\n  - match: team-a/\n    maxBytes: %d\n", first.size+room))
	cur := policy.NewCurrent(p)
	s := quotaStack(t, cur)
	mustPush(t, s, "team-a/one", "v1", first)

	blob := make([]byte, 10<<10)
	rand.Read(blob)
	loc := mustStart(t, s, "team-a/app")
	if resp, body := patchChunk(t, s, loc, 0, blob[:4<<10]); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH with room: %d %s", resp.StatusCode, body)
	}

	// A reload puts the namespace far over its quota.
	cur.Set(mustParsePolicy(t, "quotas:\n  - match: team-a/\n    maxBytes: 1KiB\n"))
	before := snapshot(t, s)
	resp, body := patchChunk(t, s, loc, 4<<10, blob[4<<10:])
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"DENIED"`) || !strings.Contains(string(body), "quota of team-a/ is used up") {
		t.Errorf("PATCH over the quota: %d %s, want 403 DENIED", resp.StatusCode, body)
	}
	resp, body = call(t, s, "PUT", loc+"?digest="+digest.FromBytes(blob[:4<<10]).String(), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"DENIED"`) {
		t.Errorf("commit over the quota: %d %s, want 403 DENIED", resp.StatusCode, body)
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("refused requests changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Back to room for 20 KiB: a 30 KiB blob does not fit, 10 KiB does.
	cur.Set(p)
	big := make([]byte, 30<<10)
	rand.Read(big)
	bigLoc := mustStart(t, s, "team-a/app")
	if resp, body := patchChunk(t, s, bigLoc, 0, big); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH below the limit: %d %s", resp.StatusCode, body)
	}
	before = snapshot(t, s)
	resp, body = call(t, s, "PUT", bigLoc+"?digest="+digest.FromBytes(big).String(), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "quota of team-a/ exceeded") ||
		!strings.Contains(string(body), "this push adds "+policy.FormatSize(int64(len(big)))) {
		t.Errorf("commit of a blob with no room: %d %s, want 403 DENIED saying what it adds", resp.StatusCode, body)
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("the refused commit changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if resp, body := call(t, s, "PUT", loc+"?digest="+digest.FromBytes(blob).String(), nil, blob[4<<10:]); resp.StatusCode != http.StatusCreated {
		t.Errorf("commit of a blob with room, in the session opened first: %d %s", resp.StatusCode, body)
	}
	// A blob the namespace already counts adds nothing and goes even at
	// the limit.
	cur.Set(mustParsePolicy(t, fmt.Sprintf("quotas:\n  - match: team-a/\n    maxBytes: %d\n", first.size+1)))
	layer := first.blobs[1]
	again := mustStart(t, s, "team-a/two")
	if resp, body := call(t, s, "PUT", again+"?digest="+digest.FromBytes(layer).String(), nil, layer); resp.StatusCode != http.StatusCreated {
		t.Errorf("commit of a blob the namespace holds: %d %s", resp.StatusCode, body)
	}
}

// TestStagedBytesCeiling: chunks racing into many sessions through two
// replicas stage no more in PostgreSQL, together, than the ceiling; the
// chunks refused get 429 and leave their sessions as they were; a chunk
// that fills a part (whose bytes go to S3) is not bound; no session
// stages a part's worth.
func TestStagedBytesCeiling(t *testing.T) {
	const mib = 1 << 20
	a := limitStack(t, store.Config{MaxStagedBytes: 3 * mib}, nil)
	replicas := []*Stack{a, a.Replica(t)}
	const sessions = 8
	locs := make([]string, sessions)
	for i := range locs {
		locs[i] = mustStart(t, a, fmt.Sprintf("staged/r%d", i))
	}
	chunk := make([]byte, mib)
	rand.Read(chunk)
	codes := make([]int, sessions)
	bodies := make([][]byte, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			var resp *http.Response
			resp, bodies[i] = patchChunk(t, replicas[i%2], locs[i], 0, chunk)
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	var accepted []int
	for i, code := range codes {
		switch code {
		case http.StatusAccepted:
			accepted = append(accepted, i)
		case http.StatusTooManyRequests:
			if !strings.Contains(string(bodies[i]), "the most allowed is "+policy.FormatSize(3*mib)) {
				t.Errorf("refusal %d does not give the ceiling: %s", i, bodies[i])
			}
			if resp, _ := call(t, a, "GET", locs[i], nil, nil); resp.Header.Get("Range") != "0-0" {
				t.Errorf("a refused chunk moved its session to %s", resp.Header.Get("Range"))
			}
		default:
			t.Errorf("PATCH %d: %d %s", i, code, bodies[i])
		}
	}
	if len(accepted) != 3 || stagedBytes(t, a) != 3*mib {
		t.Fatalf("%d chunks of 1 MiB accepted, %d bytes staged, under a ceiling of 3 MiB", len(accepted), stagedBytes(t, a))
	}
	// A chunk that completes a part stages less than its session did.
	big := make([]byte, 5*mib)
	rand.Read(big)
	if resp, body := patchChunk(t, a, locs[accepted[0]], mib, big); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a chunk filling a part at the ceiling: %d %s", resp.StatusCode, body)
	}
	var maxStaged int
	if err := a.DB.QueryRow(context.Background(), `SELECT max(octet_length(staged)) FROM uploads`).Scan(&maxStaged); err != nil {
		t.Fatal(err)
	}
	if maxStaged >= store.MinPartSize {
		t.Errorf("a session stages %d bytes, a part's worth", maxStaged)
	}
	if got := stagedBytes(t, a); got != 3*mib {
		t.Errorf("%d bytes staged after a part went to S3, want %d", got, 3*mib)
	}
}

// TestIdleUploadsExpireWithoutGC: serve with its defaults (no garbage
// collection passes) but a short upload TTL (REGISTRY_UPLOAD_TTL) ends an idle session, with
// its staged bytes and its S3 multipart upload, and aborts a multipart
// upload no session owns.
func TestIdleUploadsExpireWithoutGC(t *testing.T) {
	c := newCluster(t)
	bin := buildRegistry(t, false)
	c.env = append(c.env, "REGISTRY_UPLOAD_TTL=3s")
	r := c.startReplica(t, "r", bin, testenv.FreeAddr(t))
	s := &Stack{Addr: r.addr}
	resp, body := call(t, s, "POST", "/v2/idle/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	chunk := make([]byte, 6<<20) // one part to S3, 1 MiB staged
	rand.Read(chunk)
	if resp, body := patchChunk(t, s, loc, 0, chunk); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, body)
	}
	ctx := context.Background()
	db, err := pgxpool.New(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var staged int
	var multipart *string
	if err := db.QueryRow(ctx, `SELECT octet_length(staged), multipart_id FROM uploads`).Scan(&staged, &multipart); err != nil {
		t.Fatal(err)
	}
	if staged != 1<<20 || multipart == nil || len(c.multipartUploads(t)) != 1 {
		t.Fatalf("after the PATCH: %d bytes staged, multipart upload %v, bucket's multipart uploads %v", staged, multipart, c.multipartUploads(t))
	}
	// A multipart upload no session owns, as a replica that died leaves.
	st, err := s3store.New(ctx, s3store.Config{Endpoint: c.s3.Endpoint, Region: c.s3.Region, Bucket: c.s3.Bucket,
		PathStyle: true, AccessKey: c.s3.AccessKey, SecretKey: c.s3.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	orphan := st.Layout().BlobData(digest.FromString("never finished"))
	if _, err := st.CreateMultipart(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the idle session and the multipart uploads to go", func() bool {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM uploads`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0 && len(c.multipartUploads(t)) == 0
	})
	if resp, body := call(t, s, "GET", loc, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the expired session: %d %s, want 404", resp.StatusCode, body)
	}
}

// TestSlowMonolithicUploadBlocksNoOther: a monolithic upload whose body
// trickles does not hold up new sessions or other monolithic uploads in
// the same repository (the session caps count under locks, and none may
// be held while a body streams).
func TestSlowMonolithicUploadBlocksNoOther(t *testing.T) {
	s := limitStack(t, store.Config{MaxUploadsPerRepository: 10, MaxUploadsPerClient: 10}, nil)
	mustStart(t, s, "slow/app")
	blob := []byte("a blob that arrives slowly")
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", "http://"+s.Addr+"/v2/slow/app/blobs/uploads/?digest="+digest.FromBytes(blob).String(), pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(blob))
	defer pw.Close() // on failure, ends the slow request at once
	slow := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	if _, err := pw.Write(blob[:5]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the slow request is streaming
	client := &http.Client{Timeout: 5 * time.Second}
	other := []byte("another blob")
	for _, path := range []string{"/v2/slow/app/blobs/uploads/", "/v2/slow/app/blobs/uploads/?digest=" + digest.FromBytes(other).String()} {
		resp, err := client.Post("http://"+s.Addr+path, "application/octet-stream", bytes.NewReader(other))
		if err != nil {
			t.Fatalf("POST %s while a monolithic upload streams into the repository: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated {
			t.Errorf("POST %s: %d", path, resp.StatusCode)
		}
	}
	if _, err := pw.Write(blob[5:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-slow; code != http.StatusCreated {
		t.Errorf("the slow upload: %d, want 201", code)
	}
}
