// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/policy"
)

// errorCodes are the codes of an error body.
func errorCodes(body []byte) []string {
	var e struct{ Errors []struct{ Code string } }
	json.Unmarshal(body, &e)
	var codes []string
	for _, x := range e.Errors {
		codes = append(codes, x.Code)
	}
	return codes
}

// TestChainRefusesWritesIntoRemoteAndVirtualNames: through the serving
// chain, every write method of the API into a remote (pull-through) name
// and into a virtual name is refused with DENIED and changes nothing,
// including the calls on an upload id that a local push opened (PATCH,
// PUT, DELETE, GET status), which used to reach the store unseen; reads
// through the virtual name, blob redirects (through the cache and the scan
// gate) included, still work, and the local upload still completes.
func TestChainRefusesWritesIntoRemoteAndVirtualNames(t *testing.T) {
	pol := mustParsePolicy(t, `
remotes:
  - prefix: "hub/"
    url: http://`+testenv.FreeAddr(t)+`
virtual:
  - name: "v/"
    sources: ["local/"]
`)
	s := start(t, testenv.PostgresDatabase(t), testenv.S3(t), stackOptions{
		store: store.Config{AutoMount: true, Redirect: true}, policy: policy.NewCurrent(pol).Get})
	img := newTestImage(t, 1024, nil)
	mustPush(t, s, "local/app", "v1", img)
	layer := img.blobs[1]
	ld := digest.FromBytes(layer)

	resp, body := call(t, s, "POST", "/v2/local/app/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("opening a local upload: %d %s", resp.StatusCode, body)
	}
	uploadPath := resp.Header.Get("Location") // /v2/local/app/blobs/uploads/<id>[?...]
	if !strings.HasPrefix(uploadPath, "/v2/local/app/blobs/uploads/") {
		t.Fatalf("upload Location %q", uploadPath)
	}
	chunk := []byte("chunk of a blob")
	chunkDigest := digest.FromBytes(chunk)
	before := snapshot(t, s)

	for _, name := range []string{"hub/app", "v/app"} {
		upload := strings.Replace(uploadPath, "/v2/local/app/", "/v2/"+name+"/", 1)
		sep := "?"
		if strings.Contains(upload, "?") {
			sep = "&"
		}
		octets := map[string]string{"Content-Type": "application/octet-stream"}
		writes := []struct {
			method, path string
			headers      map[string]string
			body         []byte
		}{
			{"POST", "/v2/" + name + "/blobs/uploads/", nil, nil},
			{"POST", "/v2/" + name + "/blobs/uploads/?digest=" + chunkDigest.String(), octets, chunk},
			{"POST", "/v2/" + name + "/blobs/uploads/?mount=" + ld.String() + "&from=local/app", nil, nil},
			{"POST", "/v2/" + name + "/blobs/uploads/?mount=" + ld.String(), nil, nil},
			{"GET", upload, nil, nil},
			{"PATCH", upload, map[string]string{"Content-Type": "application/octet-stream",
				"Content-Range": "0-" + strconv.Itoa(len(chunk)-1)}, chunk},
			{"PUT", upload + sep + "digest=" + chunkDigest.String(), octets, chunk},
			{"DELETE", upload, nil, nil},
			{"PUT", "/v2/" + name + "/manifests/v2", map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, img.manifest},
			{"PUT", "/v2/" + name + "/manifests/" + img.digest.String(), map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}, img.manifest},
			{"DELETE", "/v2/" + name + "/manifests/v1", nil, nil},
			{"DELETE", "/v2/" + name + "/manifests/" + img.digest.String(), nil, nil},
			{"DELETE", "/v2/" + name + "/blobs/" + ld.String(), nil, nil},
		}
		for _, w := range writes {
			resp, body := call(t, s, w.method, w.path, w.headers, w.body)
			if codes := errorCodes(body); resp.StatusCode != http.StatusForbidden || len(codes) != 1 || codes[0] != "DENIED" {
				t.Errorf("%s %s: %d %s, want 403 DENIED", w.method, w.path, resp.StatusCode, bytes.TrimSpace(body))
			}
		}
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("refused writes changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// Reads through the virtual name pass, blob redirects included.
	for _, path := range []string{"/v2/v/app/manifests/v1", "/v2/v/app/manifests/" + img.digest.String(), "/v2/v/app/tags/list",
		"/v2/v/app/referrers/" + img.digest.String()} {
		if resp, body := call(t, s, "GET", path, map[string]string{"Accept": ocispec.MediaTypeImageManifest}, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, name := range []string{"v/app", "local/app"} {
		resp, err := noFollow.Get("http://" + s.Addr + "/v2/" + name + "/blobs/" + ld.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect {
			t.Fatalf("GET blob through %s: %d, want 307 to the bucket", name, resp.StatusCode)
		}
		got, err := http.Get(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if got.StatusCode != http.StatusOK || !bytes.Equal(b, layer) {
			t.Errorf("following the redirect of %s: %d, %d bytes, want the layer's %d", name, got.StatusCode, len(b), len(layer))
		}
	}
	// A blob of no source the cache holds is not redirected: nothing to
	// send the client to.
	if resp, _ := call(t, s, "GET", "/v2/v/app/blobs/"+chunkDigest.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET an unknown blob through v/app: %d, want 404", resp.StatusCode)
	}

	// The local upload the refused calls named is untouched: it completes.
	resp, body = call(t, s, "PATCH", uploadPath, map[string]string{"Content-Type": "application/octet-stream"}, chunk)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH the local upload: %d %s", resp.StatusCode, body)
	}
	next := resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(next, "?") {
		sep = "&"
	}
	if resp, body := call(t, s, "PUT", next+sep+"digest="+chunkDigest.String(), nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("completing the local upload: %d %s", resp.StatusCode, body)
	}
}
