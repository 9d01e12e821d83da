// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// manifestAccept is what the manifest workloads accept, as pull clients do.
const manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

// Target is a registry to measure.
type Target struct {
	// Name labels the target's results.
	Name string
	// Base is the registry's URL, e.g. http://127.0.0.1:5000.
	Base string
	// PID is the registry's process on this machine, whose memory is
	// recorded; 0 when it is not local.
	PID int

	http *http.Client // follows no redirects
}

// NewTarget returns a target for the registry at base.
func NewTarget(name, base string, pid int) *Target {
	return &Target{Name: name, Base: strings.TrimRight(base, "/"), PID: pid, http: newHTTPClient()}
}

func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// request is one HTTP call and what it must answer.
type request struct {
	method, path string
	header       map[string]string
	body         io.Reader
	length       int64
	want         int
}

// do sends r, checks the status, and drains the body into io.Discard,
// returning the response (body closed) and the bytes read.
func (t *Target) do(ctx context.Context, r request) (*http.Response, int64, error) {
	u := r.path
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = t.Base + u
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, r.body)
	if err != nil {
		return nil, 0, err
	}
	if r.body != nil {
		req.ContentLength = r.length
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != r.want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return resp, 0, fmt.Errorf("%s %s: status %d, want %d: %s", r.method, r.path, resp.StatusCode, r.want, strings.TrimSpace(string(b)))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return resp, n, fmt.Errorf("%s %s: reading the body: %w", r.method, r.path, err)
	}
	return resp, n, nil
}

// location resolves a response's Location against the registry.
func (t *Target) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: no Location", resp.Request.Method, resp.Request.URL.Path)
	}
	base, err := url.Parse(t.Base + "/")
	if err != nil {
		return "", err
	}
	u, err := base.Parse(loc)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// withQuery adds key=value to a URL that may already have a query.
func withQuery(u, key, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + key + "=" + url.QueryEscape(value)
}

// startUpload opens an upload session in repo and returns its URL.
func (t *Target) startUpload(ctx context.Context, repo string) (string, error) {
	resp, _, err := t.do(ctx, request{method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/", want: http.StatusAccepted})
	if err != nil {
		return "", err
	}
	return t.location(resp)
}

// pushMonolithic uploads b as POST then one PUT with the whole body.
func (t *Target) pushMonolithic(ctx context.Context, repo string, b *blob) error {
	loc, err := t.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	_, _, err = t.do(ctx, request{method: http.MethodPut, path: withQuery(loc, "digest", b.digest.String()),
		header: map[string]string{"Content-Type": "application/octet-stream"},
		body:   b.section(0, b.Size()), length: b.Size(), want: http.StatusCreated})
	return err
}

// pushChunked uploads b as POST, a PATCH per chunk, then an empty PUT.
func (t *Target) pushChunked(ctx context.Context, repo string, b *blob, chunk int64) error {
	loc, err := t.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	for off := int64(0); off < b.Size(); off += chunk {
		n := min(chunk, b.Size()-off)
		resp, _, err := t.do(ctx, request{method: http.MethodPatch, path: loc,
			header: map[string]string{"Content-Type": "application/octet-stream",
				"Content-Range": strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)},
			body: b.section(off, n), length: n, want: http.StatusAccepted})
		if err != nil {
			return err
		}
		if loc, err = t.location(resp); err != nil {
			return err
		}
	}
	_, _, err = t.do(ctx, request{method: http.MethodPut, path: withQuery(loc, "digest", b.digest.String()),
		want: http.StatusCreated})
	return err
}

// pushBytes uploads small content monolithically.
func (t *Target) pushBytes(ctx context.Context, repo string, content []byte) (digest.Digest, error) {
	d := digest.FromBytes(content)
	loc, err := t.startUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	_, _, err = t.do(ctx, request{method: http.MethodPut, path: withQuery(loc, "digest", d.String()),
		header: map[string]string{"Content-Type": "application/octet-stream"},
		body:   bytes.NewReader(content), length: int64(len(content)), want: http.StatusCreated})
	return d, err
}

// putManifest stores content under ref (a tag or a digest).
func (t *Target) putManifest(ctx context.Context, repo, ref, mediaType string, content []byte) error {
	_, _, err := t.do(ctx, request{method: http.MethodPut, path: "/v2/" + repo + "/manifests/" + ref,
		header: map[string]string{"Content-Type": mediaType},
		body:   bytes.NewReader(content), length: int64(len(content)), want: http.StatusCreated})
	return err
}

// mount links blob d from repository from into repo.
func (t *Target) mount(ctx context.Context, repo, from string, d digest.Digest) error {
	_, _, err := t.do(ctx, request{method: http.MethodPost,
		path: "/v2/" + repo + "/blobs/uploads/?mount=" + d.String() + "&from=" + url.QueryEscape(from), want: http.StatusCreated})
	return err
}
