// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/proxy"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/registry"
)

// countingTransport counts the requests to the token endpoint.
type countingTransport struct{ tokens atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/token" {
		c.tokens.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestUpstreamClient pulls from this registry with authentication on, as
// the pull-through cache will from Docker Hub: anonymously where the
// rules allow, with credentials elsewhere, reusing its token, and with
// clear errors for unknown content, refused credentials and a registry
// that is down.
func TestUpstreamClient(t *testing.T) {
	ctx := context.Background()
	f := newAuthFixture(t)
	s := StartAuth(t, f.gate)
	img := newTestImage(t, 4096, nil)
	for _, repo := range []string{"public/app", "team-a/app"} {
		_, tok := getToken(t, s, "alice", alicePass, "repository:"+repo+":pull,push")
		mustPushAs(t, s, tok, repo, img)
	}
	base := "http://" + s.Addr

	counter := &countingTransport{}
	anon, err := proxy.NewUpstream(base, "", "", &http.Client{Transport: counter})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := anon.GetManifest(ctx, "public/app", "v1")
		if err != nil || m.Digest != img.digest || string(m.Content) != string(img.manifest) || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
			t.Fatalf("anonymous GetManifest: %+v, %v", m.Digest, err)
		}
	}
	if n := counter.tokens.Load(); n != 1 {
		t.Errorf("two pulls asked for %d tokens, want 1 (the token is reused)", n)
	}
	if d, err := anon.HeadManifest(ctx, "public/app", "v1"); err != nil || d != img.digest {
		t.Errorf("HeadManifest: %s, %v", d, err)
	}
	if m, err := anon.GetManifest(ctx, "public/app", img.digest.String()); err != nil || m.Digest != img.digest {
		t.Errorf("GetManifest by digest: %s, %v", m.Digest, err)
	}
	layer := img.blobs[1]
	body, size, err := anon.OpenBlob(ctx, "public/app", digest.FromBytes(layer))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if string(got) != string(layer) || size != int64(len(layer)) {
		t.Errorf("OpenBlob: %d bytes (size %d), want %d", len(got), size, len(layer))
	}

	// Unknown content is the registry's own not-found errors.
	if _, err := anon.GetManifest(ctx, "public/app", "nope"); !errors.Is(err, registry.ErrManifestUnknown) {
		t.Errorf("unknown tag: %v", err)
	}
	if _, _, err := anon.OpenBlob(ctx, "public/app", digest.FromString("nope")); !errors.Is(err, registry.ErrBlobUnknown) {
		t.Errorf("unknown blob: %v", err)
	}
	// team-a needs credentials: anonymous is refused, alice is not.
	if _, err := anon.GetManifest(ctx, "team-a/app", "v1"); !errors.Is(err, proxy.ErrUpstream) || !strings.Contains(err.Error(), "403") {
		t.Errorf("anonymous pull of team-a: %v, want ErrUpstream with the registry's 403", err)
	}
	alice, _ := proxy.NewUpstream(base, "alice", alicePass, nil)
	if m, err := alice.GetManifest(ctx, "team-a/app", "v1"); err != nil || m.Digest != img.digest {
		t.Errorf("alice's pull of team-a: %v", err)
	}
	wrong, _ := proxy.NewUpstream(base, "alice", "wrong", nil)
	if _, err := wrong.GetManifest(ctx, "public/app", "v1"); !errors.Is(err, proxy.ErrUpstream) || !strings.Contains(err.Error(), "token endpoint answered 401") {
		t.Errorf("wrong credentials: %v", err)
	}
	down, _ := proxy.NewUpstream("http://"+testenv.FreeAddr(t), "", "", nil)
	if _, err := down.GetManifest(ctx, "public/app", "v1"); !errors.Is(err, proxy.ErrUpstream) {
		t.Errorf("a registry that is down: %v", err)
	}
}
