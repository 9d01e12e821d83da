// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

// TestServeRedirect: with --s3-redirect a blob GET answers 307 with a URL
// presigned for --s3-public-endpoint, and HEAD still answers itself.
func TestServeRedirect(t *testing.T) {
	addr := testenv.FreeAddr(t)
	e := append(env(t), "REGISTRY_S3_REDIRECT=true", "REGISTRY_S3_PUBLIC_ENDPOINT=https://s3.example.test:9443")
	e = migrateSplit(t, e)
	startServe(t, e, addr)
	base := "http://" + addr

	blob := "redirected blob"
	d := digest.FromString(blob)
	resp, err := http.Post(base+"/v2/r/blobs/uploads/?digest="+d.String(), "application/octet-stream", strings.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("monolithic push: %d", resp.StatusCode)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(base + "/v2/r/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("GET blob: %d, want 307", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Host != "s3.example.test:9443" || !strings.HasSuffix(loc.Path, "/data") || loc.Query().Get("X-Amz-Signature") == "" {
		t.Errorf("Location %s: want a presigned URL on the public endpoint", loc)
	}
	req, _ := http.NewRequest(http.MethodHead, base+"/v2/r/blobs/"+d.String(), nil)
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD blob: %d, want 200", resp.StatusCode)
	}
}
