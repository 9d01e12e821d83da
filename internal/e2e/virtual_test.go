// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
)

// virtualPolicy adds to the authentication tests' rules a virtual
// namespace over public/ and team-a/ that anyone may pull.
const virtualPolicy = authPolicy + `  - repositories: "mirror/**"
    pull: [anonymous]
virtual:
  - name: "mirror/"
    sources: ["public/", "team-a/"]
`

// pushTaggedAs pushes img's blobs and its manifest under ref with a
// bearer token.
func pushTaggedAs(t *testing.T, s *Stack, token, repo, ref string, img testImage) {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + token}
	for _, b := range img.blobs {
		if resp, body := call(t, s, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), h, b); resp.StatusCode != http.StatusCreated {
			t.Fatalf("push to %s: %d %s", repo, resp.StatusCode, body)
		}
	}
	h["Content-Type"] = ocispec.MediaTypeImageManifest
	if resp, body := call(t, s, "PUT", "/v2/"+repo+"/manifests/"+ref, h, img.manifest); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push to %s: %d %s", repo, resp.StatusCode, body)
	}
}

// TestVirtualNameAccess: a virtual name reads each source with the
// caller's own rights. Through mirror/ an anonymous caller sees public/'s
// content only: team-a's manifests (by tag and digest), blobs, tag list
// and referrers are absent, as if team-a held nothing, and each refusal
// is audited once; alice, of team-a, sees both.
func TestVirtualNameAccess(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	p := mustParsePolicy(t, virtualPolicy)
	f.gate.Policy = func() *policy.Policy { return p }
	s := start(t, testenv.PostgresDatabase(t), testenv.S3(t), stackOptions{store: store.Config{AutoMount: true}, authz: f.gate,
		policy: f.gate.Policy, access: f.gate.Allowed})

	_, push := getToken(t, s, "alice", alicePass, "repository:public/app:pull,push",
		"repository:team-a/app:pull,push", "repository:team-a/hidden:pull,push")
	pub, sec := newTestImage(t, 1024, nil), newTestImage(t, 2048, nil)
	pubSig, secSig := newTestImage(t, 64, &pub), newTestImage(t, 64, &sec)
	pushTaggedAs(t, s, push, "public/app", "v1", pub)
	pushTaggedAs(t, s, push, "public/app", pubSig.digest.String(), pubSig)
	pushTaggedAs(t, s, push, "team-a/app", "secret", sec)
	pushTaggedAs(t, s, push, "team-a/app", secSig.digest.String(), secSig)
	pushTaggedAs(t, s, push, "team-a/hidden", "v1", sec)

	scopes := []string{"repository:mirror/app:pull", "repository:mirror/hidden:pull"}
	_, anon := getToken(t, s, "", "", scopes...)
	_, alice := getToken(t, s, "alice", alicePass, scopes...)
	secLayer := digest.FromBytes(sec.blobs[1]).String()
	type answer struct {
		Status int
		Body   string
	}
	get := func(tok, method, path string) answer {
		resp, body := bearerCall(t, s, method, path, tok)
		if resp.StatusCode != http.StatusOK {
			body = nil // an error's text is not compared
		}
		return answer{resp.StatusCode, string(body)}
	}
	referrers := func(tok string, subject testImage) []digest.Digest {
		resp, body := bearerCall(t, s, "GET", "/v2/mirror/app/referrers/"+subject.digest.String(), tok)
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("referrers: %d %s", resp.StatusCode, body)
		}
		var out []digest.Digest
		for _, m := range idx.Manifests {
			out = append(out, m.Digest)
		}
		return out
	}
	notFound := answer{Status: http.StatusNotFound}

	for _, c := range []struct {
		who, tok, method, path string
		want                   answer
	}{
		{"anonymous", anon, "GET", "/v2/mirror/app/manifests/v1", answer{200, string(pub.manifest)}},
		{"anonymous", anon, "GET", "/v2/mirror/app/manifests/secret", notFound},
		{"anonymous", anon, "GET", "/v2/mirror/app/manifests/" + sec.digest.String(), notFound},
		{"anonymous", anon, "GET", "/v2/mirror/app/blobs/" + secLayer, notFound},
		{"anonymous", anon, "HEAD", "/v2/mirror/app/blobs/" + secLayer, notFound},
		{"anonymous", anon, "GET", "/v2/mirror/hidden/tags/list", notFound},
		{"alice", alice, "GET", "/v2/mirror/app/manifests/secret", answer{200, string(sec.manifest)}},
		{"alice", alice, "GET", "/v2/mirror/app/manifests/" + sec.digest.String(), answer{200, string(sec.manifest)}},
		{"alice", alice, "GET", "/v2/mirror/app/blobs/" + secLayer, answer{200, string(sec.blobs[1])}},
		{"alice", alice, "GET", "/v2/mirror/hidden/tags/list", answer{200, `{"name":"mirror/hidden","tags":["v1"]}`}},
	} {
		if got := get(c.tok, c.method, c.path); got != c.want {
			t.Errorf("%s: %s %s = %d (%d bytes), want %d (%d bytes)", c.who, c.method, c.path, got.Status, len(got.Body), c.want.Status, len(c.want.Body))
		}
	}
	for _, c := range []struct {
		who, tok string
		subject  testImage
		want     []digest.Digest
	}{
		{"anonymous", anon, pub, []digest.Digest{pubSig.digest}},
		{"anonymous", anon, sec, nil},
		{"alice", alice, sec, []digest.Digest{secSig.digest}},
	} {
		if got := referrers(c.tok, c.subject); !cmp.Equal(got, c.want) {
			t.Errorf("%s: referrers of %s through mirror/app = %v, want %v", c.who, c.subject.digest, got, c.want)
		}
	}

	// Each anonymous request that reached team-a is one refusal; the
	// manifest public/ answered reached nothing refused, nor did alice.
	events, err := store.QueryAudit(ctx, s.DB, store.AuditFilter{Action: store.AuditDenied})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]int{}
	for _, e := range events {
		if e.Identity != "" || e.Address != "127.0.0.1" {
			t.Errorf("refusal %+v: want the anonymous caller at 127.0.0.1", e)
		}
		refused[e.Repository+": "+e.Detail]++
	}
	want := map[string]int{
		// Manifest by tag and by digest, blob GET and HEAD, two referrers lists.
		"team-a/app: an anonymous caller may not pull team-a/app (through mirror/app)":          6,
		"team-a/hidden: an anonymous caller may not pull team-a/hidden (through mirror/hidden)": 1,
	}
	if diff := cmp.Diff(want, refused); diff != "" {
		t.Errorf("refusals audited (-want +got):\n%s", diff)
	}
}
