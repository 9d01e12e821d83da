// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
)

// authPolicy is the access rules of the authentication tests: alice's
// team owns team-a, the ci robot pushes there too, bob only reads
// public, which anyone may pull.
const authPolicy = `
groups:
  team-a: [alice]
access:
  - repositories: "team-a/**"
    pull: [group:team-a, ci]
    push: [group:team-a, ci]
    delete: [alice]
  - repositories: "public/**"
    pull: [anonymous]
    push: [alice]
  - repositories: "conformance/**"
    pull: [alice]
    push: [alice]
    delete: [alice]
`

// authFixture is a gate with its key, users and robot.
type authFixture struct {
	gate      *auth.Gate
	key       ed25519.PrivateKey
	robotPass string
	// external signs as a trusted external token service, "external-idp".
	external *auth.Issuer
}

const alicePass, bobPass = "alice-secret", "bob-secret"

func newAuthFixture(t *testing.T) authFixture {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewIssuer("ha-registry", key, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, extKey, _ := ed25519.GenerateKey(rand.Reader)
	external, err := auth.NewIssuer("external-idp", extKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(issuer.Trusted("ha-registry"), external.Trusted("ha-registry"))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string][]byte{}
	for name, pass := range map[string]string{"alice": alicePass, "bob": bobPass} {
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = h
	}
	tok := make([]byte, 32)
	rand.Read(tok)
	robotPass := hex.EncodeToString(tok)
	ids, err := auth.NewIdentities(users, map[string][32]byte{"ci": sha256.Sum256([]byte(robotPass))})
	if err != nil {
		t.Fatal(err)
	}
	p := mustParsePolicy(t, authPolicy)
	return authFixture{key: key, robotPass: robotPass, external: external, gate: &auth.Gate{
		Service: "ha-registry", Verifier: v, Issuer: issuer,
		Identities: func() *auth.Identities { return ids }, Policy: func() *policy.Policy { return p },
		Throttle: auth.NewThrottle(5, time.Minute),
	}}
}

// TestConformanceWithAuth runs the conformance suite through the token
// flow with a user's credentials. Mounts without from= are off: with
// authentication on, a blob is mounted only from a repository the caller
// names and may read.
func TestConformanceWithAuth(t *testing.T) {
	s := StartAuth(t, newAuthFixture(t).gate)
	runConformance(t, s.Addr, map[string]string{
		"OCI_USERNAME": "alice", "OCI_PASSWORD": alicePass,
		"OCI_API_BLOBS_MOUNT_ANONYMOUS": "false",
	})
}

// TestAuthClients: crane, oras and regctl log in and push and pull
// through the token flow, a robot pushes with its token, anyone pulls a
// public repository, and a user is refused a repository the rules keep
// from them.
func TestAuthClients(t *testing.T) {
	f := newAuthFixture(t)
	s := StartAuth(t, f.gate)
	crane, oras, regctl := testenv.Tool(t, "crane"), testenv.Tool(t, "oras"), testenv.Tool(t, "regctl")
	dir := t.TempDir()
	home := func(who string) []string {
		h := filepath.Join(dir, who)
		return []string{"HOME=" + h, "DOCKER_CONFIG=" + filepath.Join(h, "docker")}
	}
	reg := s.Addr
	alice, bob, ci, anon := home("alice"), home("bob"), home("ci"), home("anonymous")

	// crane: log in, push, pull.
	if out, err := command(alice, crane, "append", "--insecure", "-f", layerTar(t, dir, "l0", 4096), "-t", reg+"/team-a/app:v1"); err == nil {
		t.Fatalf("crane pushed without logging in:\n%s", out)
	}
	run(t, alice, crane, "auth", "login", reg, "-u", "alice", "-p", alicePass)
	run(t, alice, crane, "append", "--insecure", "-f", layerTar(t, dir, "l1", 4096), "-t", reg+"/team-a/app:v1")
	want := strings.TrimSpace(run(t, alice, crane, "digest", "--insecure", reg+"/team-a/app:v1"))
	run(t, alice, crane, "copy", "--insecure", reg+"/team-a/app:v1", reg+"/public/app:v1")

	// The robot pushes with its token as password.
	run(t, ci, crane, "auth", "login", reg, "-u", "ci", "-p", f.robotPass)
	run(t, ci, crane, "append", "--insecure", "-f", layerTar(t, dir, "l2", 4096), "-t", reg+"/team-a/ci:build-1")
	if out, err := command(ci, crane, "append", "--insecure", "-f", layerTar(t, dir, "l3", 4096), "-t", reg+"/public/ci:x"); err == nil || !strings.Contains(out, "DENIED") {
		t.Errorf("the robot pushed where it may not: %v\n%s", err, out)
	}

	// Anonymous pulls of public work; of team-a they do not.
	if got := strings.TrimSpace(run(t, anon, crane, "digest", "--insecure", reg+"/public/app:v1")); got != want {
		t.Errorf("anonymous pull of public/app: %s, want %s", got, want)
	}
	if out, err := command(anon, crane, "manifest", "--insecure", reg+"/team-a/app:v1"); err == nil {
		t.Errorf("an anonymous pull of team-a went through:\n%s", out)
	}
	// bob may log in but not read team-a.
	run(t, bob, crane, "auth", "login", reg, "-u", "bob", "-p", bobPass)
	if out, err := command(bob, crane, "manifest", "--insecure", reg+"/team-a/app:v1"); err == nil || !strings.Contains(out, "DENIED") {
		t.Errorf("bob read team-a: %v\n%s", err, out)
	}
	// crane stores credentials without checking them; using wrong ones
	// fails at the token endpoint, even for a public repository.
	run(t, bob, crane, "auth", "login", reg, "-u", "bob", "-p", "wrong")
	if out, err := command(bob, crane, "digest", "--insecure", reg+"/public/app:v1"); err == nil || !strings.Contains(out, "invalid username or password") {
		t.Errorf("a wrong password pulled: %v\n%s", err, out)
	}

	// oras: a file round trip.
	run(t, alice, oras, "login", "--plain-http", reg, "-u", "alice", "-p", alicePass)
	file := filepath.Join(dir, "hello.txt")
	content := []byte("hello through the token flow\n")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, alice, "sh", "-c", "cd "+dir+" && "+oras+" push --plain-http "+reg+"/team-a/files:v1 hello.txt")
	pulled := filepath.Join(dir, "pulled")
	run(t, alice, oras, "pull", "--plain-http", reg+"/team-a/files:v1", "-o", pulled)
	if got, err := os.ReadFile(filepath.Join(pulled, "hello.txt")); err != nil || string(got) != string(content) {
		t.Errorf("oras pulled %q (%v), want %q", got, err, content)
	}

	// regctl: log in, copy, read back.
	run(t, alice, regctl, "registry", "set", reg, "--tls", "disabled")
	run(t, alice, regctl, "registry", "login", reg, "-u", "alice", "-p", alicePass)
	run(t, alice, regctl, "image", "copy", reg+"/team-a/app:v1", reg+"/team-a/regctl:v1")
	if got := strings.TrimSpace(run(t, alice, regctl, "image", "digest", reg+"/team-a/regctl:v1")); got != want {
		t.Errorf("regctl copy digest %s, want %s", got, want)
	}
}

// getToken asks the token endpoint for scopes as user (anonymous when "").
func getToken(t *testing.T, s *Stack, user, pass string, scopes ...string) (int, string) {
	t.Helper()
	q := "service=ha-registry"
	for _, sc := range scopes {
		q += "&scope=" + sc
	}
	req, _ := http.NewRequest("GET", "http://"+s.Addr+"/token?"+q, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body auth.TokenResponse
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Token
}

func bearerCall(t *testing.T, s *Stack, method, path, token string) (*http.Response, []byte) {
	t.Helper()
	return call(t, s, method, path, map[string]string{"Authorization": "Bearer " + token}, nil)
}

// TestAuthTokens: the registry refuses expired, forged, wrongly scoped and
// wrong-audience tokens; challenges name the scope to ask for; the token
// endpoint grants only what the rules allow and slows down guessing; the
// catalog shows only what the caller may pull; and a mount from a
// repository the caller cannot read becomes an upload.
func TestAuthTokens(t *testing.T) {
	f := newAuthFixture(t)
	s := StartAuth(t, f.gate)
	img := newTestImage(t, 1024, nil)
	code, tok := getToken(t, s, "alice", alicePass, "repository:team-a/app:pull,push")
	if code != http.StatusOK || tok == "" {
		t.Fatalf("alice's token: %d", code)
	}
	mustPushAs(t, s, tok, "team-a/app", img)

	// No token: a challenge naming the scope.
	resp, _ := call(t, s, "GET", "/v2/team-a/app/manifests/v1", nil, nil)
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(ch, `scope="repository:team-a/app:pull"`) || !strings.Contains(ch, `service="ha-registry"`) {
		t.Errorf("no token: %d, challenge %q", resp.StatusCode, ch)
	}
	sign := func(key ed25519.PrivateKey, aud string, now time.Time, access ...auth.Access) string {
		return signToken(t, key, "alice", aud, now, access...)
	}
	pull := auth.Access{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		name, token, wantErr string
		status               int
	}{
		{"valid", sign(f.key, "ha-registry", time.Now(), pull), "", 200},
		{"expired", sign(f.key, "ha-registry", time.Now().Add(-time.Hour), pull), "invalid_token", 401},
		{"forged", sign(other, "ha-registry", time.Now(), pull), "invalid_token", 401},
		{"wrong audience", sign(f.key, "another-registry", time.Now(), pull), "invalid_token", 401},
		{"wrong scope", sign(f.key, "ha-registry", time.Now(), auth.Access{Type: "repository", Name: "team-a/other", Actions: []string{"pull"}}), "insufficient_scope", 401},
		{"garbage", "not-a-token", "invalid_token", 401},
		{"external service", externalToken(t, f.external, "ha-registry", pull), "", 200},
		{"external, wrong audience", externalToken(t, f.external, "elsewhere", pull), "invalid_token", 401},
	} {
		resp, body := bearerCall(t, s, "GET", "/v2/team-a/app/manifests/v1", c.token)
		if resp.StatusCode != c.status || !strings.Contains(resp.Header.Get("WWW-Authenticate"), c.wantErr) {
			t.Errorf("%s token: %d %s, challenge %q", c.name, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
		if c.status == 401 && !strings.Contains(string(body), `"UNAUTHORIZED"`) {
			t.Errorf("%s token: body %s, want UNAUTHORIZED", c.name, body)
		}
	}

	// A pull token is not a push token; bob is denied outright.
	_, pullTok := getToken(t, s, "alice", alicePass, "repository:team-a/app:pull")
	if resp, _ := bearerCall(t, s, "POST", "/v2/team-a/app/blobs/uploads/", pullTok); resp.StatusCode != 401 ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="repository:team-a/app:pull,push"`) {
		t.Errorf("push with a pull token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	_, bobTok := getToken(t, s, "bob", bobPass, "repository:team-a/app:pull")
	if resp, body := bearerCall(t, s, "GET", "/v2/team-a/app/manifests/v1", bobTok); resp.StatusCode != 403 || !strings.Contains(string(body), "bob may not pull team-a/app") {
		t.Errorf("bob's pull of team-a: %d %s", resp.StatusCode, body)
	}

	// The catalog lists only what the caller may pull.
	catalogTok := func(user, pass string) string {
		_, tk := getToken(t, s, user, pass, "registry:catalog:*")
		return tk
	}
	_, publicTok := getToken(t, s, "alice", alicePass, "repository:public/app:pull,push")
	mustPushAs(t, s, publicTok, "public/app", img)
	for _, c := range []struct {
		user, pass string
		want       []string
	}{{"alice", alicePass, []string{"public/app", "team-a/app"}}, {"bob", bobPass, []string{"public/app"}}, {"", "", []string{"public/app"}}} {
		_, body := bearerCall(t, s, "GET", "/v2/_catalog", catalogTok(c.user, c.pass))
		var cat struct{ Repositories []string }
		json.Unmarshal(body, &cat)
		if !slices.Equal(cat.Repositories, c.want) {
			t.Errorf("catalog of %q: %v, want %v", c.user, cat.Repositories, c.want)
		}
	}

	// Mounting from team-a: alice may read it, so the blob is mounted;
	// bob may not, so his mount becomes an upload and tells him nothing.
	mountPath := fmt.Sprintf("/v2/public/mounted/blobs/uploads/?mount=%s&from=team-a/app", digestOf(img.blobs[1]))
	_, aliceTok := getToken(t, s, "alice", alicePass, "repository:public/mounted:pull,push")
	if resp, _ := bearerCall(t, s, "POST", mountPath, aliceTok); resp.StatusCode != http.StatusCreated {
		t.Errorf("alice's mount from team-a: %d, want 201", resp.StatusCode)
	}
	bobPush := signAs(t, f.key, "bob", auth.Access{Type: "repository", Name: "public/mounted", Actions: []string{"pull", "push"}})
	if resp, _ := bearerCall(t, s, "POST", mountPath, bobPush); resp.StatusCode != http.StatusAccepted {
		t.Errorf("bob's mount from team-a, which he cannot read: %d, want 202 (an upload)", resp.StatusCode)
	}

	// Guessing is throttled: after five failures even the right password waits.
	for range 5 {
		if code, _ := getToken(t, s, "alice", "guess", "repository:team-a/app:pull"); code != 401 {
			t.Errorf("a wrong password: %d, want 401", code)
		}
	}
	if code, _ := getToken(t, s, "alice", alicePass, "repository:team-a/app:pull"); code != http.StatusTooManyRequests {
		t.Errorf("login after five failures: %d, want 429", code)
	}
}

// signToken signs a token as the registry's own issuer would, at now.
func signToken(t *testing.T, key ed25519.PrivateKey, subject, aud string, now time.Time, access ...auth.Access) string {
	t.Helper()
	is, err := auth.NewIssuer("ha-registry", key, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tk, _, err := is.Issue(subject, aud, access, now)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// signAs is signToken for the registry's audience, now.
func signAs(t *testing.T, key ed25519.PrivateKey, subject string, access ...auth.Access) string {
	return signToken(t, key, subject, "ha-registry", time.Now(), access...)
}

func digestOf(b []byte) string { return digest.FromBytes(b).String() }

// mustPushAs pushes img under repo:v1 with a bearer token.
func mustPushAs(t *testing.T, s *Stack, token, repo string, img testImage) {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + token}
	for _, b := range img.blobs {
		if resp, body := call(t, s, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), h, b); resp.StatusCode != http.StatusCreated {
			t.Fatalf("push to %s: %d %s", repo, resp.StatusCode, body)
		}
	}
	h["Content-Type"] = ocispec.MediaTypeImageManifest
	if resp, body := call(t, s, "PUT", "/v2/"+repo+"/manifests/v1", h, img.manifest); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push to %s: %d %s", repo, resp.StatusCode, body)
	}
}

// TestAudit: pushes, tag moves, deletions, refusals and failed logins
// are in the audit log with identity, address, repository, digest and
// time, and the log refuses changes.
func TestAudit(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	s := StartAuth(t, f.gate)
	_, tok := getToken(t, s, "alice", alicePass, "repository:team-a/app:pull,push,delete")
	first, second := newTestImage(t, 512, nil), newTestImage(t, 512, nil)
	mustPushAs(t, s, tok, "team-a/app", first)
	mustPushAs(t, s, tok, "team-a/app", second) // moves v1
	if resp, body := bearerCall(t, s, "DELETE", "/v2/team-a/app/manifests/v1", tok); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("tag delete: %d %s", resp.StatusCode, body)
	}
	_, bobTok := getToken(t, s, "bob", bobPass, "repository:team-a/app:pull")
	bearerCall(t, s, "GET", "/v2/team-a/app/manifests/"+second.digest.String(), bobTok)
	getToken(t, s, "mallory", "guess")

	events, err := store.QueryAudit(ctx, s.DB, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ action, identity, repo, digest, tag, detail string }
	var got []row
	for _, e := range events {
		if e.Address != "127.0.0.1" || e.At.IsZero() || time.Since(e.At) > time.Minute {
			t.Errorf("event %+v: want address 127.0.0.1 and a time just now", e)
		}
		got = append(got, row{e.Action, e.Identity, e.Repository, e.Digest, e.Tag, e.Detail})
	}
	slices.Reverse(got)
	d1, d2 := first.digest.String(), second.digest.String()
	want := []row{
		{"push", "alice", "team-a/app", d1, "v1", ""},
		{"push", "alice", "team-a/app", d2, "v1", ""},
		{"tag.move", "alice", "team-a/app", d2, "v1", "from " + d1},
		{"tag.delete", "alice", "team-a/app", d2, "v1", ""},
		{"denied", "bob", "team-a/app", "", "", "bob may not pull team-a/app"},
		{"login.failed", "mallory", "", "", "", "invalid username or password"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(row{})); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
	// By repository and identity.
	if evs, _ := store.QueryAudit(ctx, s.DB, store.AuditFilter{Identity: "bob"}); len(evs) != 1 || evs[0].Action != "denied" {
		t.Errorf("bob's events: %+v", evs)
	}
	// The serving role may not even try (TestServingRoleCannotRewriteTheAuditLog);
	// the owner meets the trigger.
	owner := s.OwnerDB(t)
	for _, sql := range []string{`UPDATE audit_events SET action = 'x'`, `DELETE FROM audit_events`, `TRUNCATE audit_events`} {
		if _, err := owner.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", sql, err)
		}
	}
}

// externalToken is a token of the trusted external token service.
func externalToken(t *testing.T, is *auth.Issuer, aud string, access ...auth.Access) string {
	t.Helper()
	tk, _, err := is.Issue("carol", aud, access, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tk
}
