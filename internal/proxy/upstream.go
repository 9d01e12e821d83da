// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// manifestAccept is every manifest type the registry stores, so that an
// upstream answers with the manifest as pushed rather than a conversion.
var manifestAccept = strings.Join([]string{
	registry.MediaTypeOCIManifest, registry.MediaTypeOCIIndex,
	registry.MediaTypeDockerManifest, registry.MediaTypeDockerList,
}, ", ")

// ErrUpstream is an upstream that failed to answer usefully: down,
// erroring, or refusing our credentials. A cache serves what it has.
var ErrUpstream = errors.New("upstream registry unavailable")

// Upstream is a registry pulled from.
type Upstream struct {
	base     *url.URL
	user     string
	password string
	client   *http.Client

	mu     sync.Mutex
	tokens map[string]bearerToken // by scope
}

type bearerToken struct {
	value   string
	expires time.Time
}

// NewUpstream returns a client of the registry at rawURL (scheme and
// host, e.g. https://registry-1.docker.io), with Basic credentials when
// user is not empty. client nil means http.Client's default, with no
// overall timeout: blob bodies stream for as long as they take, and the
// caller's context bounds each request.
func NewUpstream(rawURL, user, password string, client *http.Client) (*Upstream, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q is not an http or https URL", rawURL)
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Upstream{base: u, user: user, password: password, client: client, tokens: map[string]bearerToken{}}, nil
}

// Manifest is a manifest pulled from upstream.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Content   []byte
}

// GetManifest pulls repo's manifest by tag or digest. By digest, the
// content must have that digest; by tag, the digest is the upstream's
// Docker-Content-Digest when it gives one in sha256, checked against the
// content, else the content's sha256.
// Errors: registry.ErrManifestUnknown, ErrUpstream.
func (u *Upstream) GetManifest(ctx context.Context, repo, ref string) (Manifest, error) {
	resp, err := u.do(ctx, http.MethodGet, repo, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return Manifest{}, err
	}
	defer resp.Body.Close()
	if err := status(resp, registry.ErrManifestUnknown); err != nil {
		return Manifest{}, err
	}
	content, err := io.ReadAll(io.LimitReader(resp.Body, registry.MaxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: reading a manifest: %v", ErrUpstream, err)
	}
	if len(content) > registry.MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w: manifest %s:%s is over %d bytes", ErrUpstream, repo, ref, registry.MaxManifestSize)
	}
	m := Manifest{MediaType: mediaType(resp.Header.Get("Content-Type")), Content: content}
	want := digest.Digest(ref)
	if want.Validate() != nil {
		want = digest.Digest(resp.Header.Get("Docker-Content-Digest"))
		if want.Validate() != nil || want.Algorithm() != digest.SHA256 {
			want = digest.FromBytes(content)
		}
	}
	if got := want.Algorithm().FromBytes(content); got != want {
		return Manifest{}, fmt.Errorf("%w: manifest %s:%s has digest %s, not %s", ErrUpstream, repo, ref, got, want)
	}
	m.Digest = want
	return m, nil
}

// HeadManifest asks upstream for the digest repo's ref points at, which
// costs no pull against rate limits on Docker Hub.
// Errors: registry.ErrManifestUnknown, ErrUpstream.
func (u *Upstream) HeadManifest(ctx context.Context, repo, ref string) (digest.Digest, error) {
	resp, err := u.do(ctx, http.MethodHead, repo, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if err := status(resp, registry.ErrManifestUnknown); err != nil {
		return "", err
	}
	d := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if d.Validate() != nil {
		return "", fmt.Errorf("%w: HEAD %s:%s gave no digest", ErrUpstream, repo, ref)
	}
	return d, nil
}

// OpenBlob streams blob d of repo; size is its length. The caller checks
// the bytes against d as it reads them.
// Errors: registry.ErrBlobUnknown, ErrUpstream.
func (u *Upstream) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	resp, err := u.do(ctx, http.MethodGet, repo, "/v2/"+repo+"/blobs/"+d.String(), "")
	if err != nil {
		return nil, 0, err
	}
	if err := status(resp, registry.ErrBlobUnknown); err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// StatBlob returns the size of repo's blob d upstream.
// Errors: registry.ErrBlobUnknown, ErrUpstream.
func (u *Upstream) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	resp, err := u.do(ctx, http.MethodHead, repo, "/v2/"+repo+"/blobs/"+d.String(), "")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if err := status(resp, registry.ErrBlobUnknown); err != nil {
		return 0, err
	}
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("%w: HEAD of blob %s gave no length", ErrUpstream, d)
	}
	return resp.ContentLength, nil
}

// mediaType is a Content-Type without parameters.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt)
}

// status maps an upstream answer: 2xx is nil, 404 is notFound, anything
// else is ErrUpstream with the status.
func status(resp *http.Response, notFound error) error {
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusNotFound:
		return notFound
	default:
		return fmt.Errorf("%w: %s %s: %s", ErrUpstream, resp.Request.Method, resp.Request.URL.Path, resp.Status)
	}
}

// do sends a request with the token cached for repo's pull scope, and on a
// 401 follows the challenge once: a new Bearer token from the realm, or
// Basic credentials.
func (u *Upstream) do(ctx context.Context, method, repo, path, accept string) (*http.Response, error) {
	scope := "repository:" + repo + ":pull"
	send := func(auth string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, u.base.JoinPath(path).String(), nil)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := u.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUpstream, err)
		}
		return resp, nil
	}
	resp, err := send(u.cached(scope))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	auth, err := u.answer(ctx, challenge, scope)
	if err != nil {
		return nil, err
	}
	return send(auth)
}

func (u *Upstream) cached(scope string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.tokens[scope]; ok && time.Now().Before(t.expires) {
		return "Bearer " + t.value
	}
	return ""
}

// answer returns the Authorization value a challenge asks for.
func (u *Upstream) answer(ctx context.Context, challenge, scope string) (string, error) {
	scheme, params := parseChallenge(challenge)
	switch scheme {
	case "basic":
		if u.user == "" {
			return "", fmt.Errorf("%w: it wants credentials and none are configured", ErrUpstream)
		}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(u.user, u.password)
		return req.Header.Get("Authorization"), nil
	case "bearer":
		tok, err := u.fetchToken(ctx, params, scope)
		if err != nil {
			return "", err
		}
		return "Bearer " + tok, nil
	}
	return "", fmt.Errorf("%w: an authentication scheme we do not speak: %q", ErrUpstream, scheme)
}

// fetchToken gets a token from the challenge's realm and caches it.
func (u *Upstream) fetchToken(ctx context.Context, params map[string]string, scope string) (string, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "http" && realm.Scheme != "https") {
		return "", fmt.Errorf("%w: bad token realm %q", ErrUpstream, params["realm"])
	}
	if s := params["scope"]; s != "" {
		scope = s
	}
	q := realm.Query()
	if params["service"] != "" {
		q.Set("service", params["service"])
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	if u.user != "" {
		req.SetBasicAuth(u.user, u.password)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: token endpoint: %v", ErrUpstream, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: token endpoint answered %s", ErrUpstream, resp.Status)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("%w: token endpoint: %v", ErrUpstream, err)
	}
	tok := body.Token
	if tok == "" {
		tok = body.AccessToken
	}
	if tok == "" {
		return "", fmt.Errorf("%w: token endpoint gave no token", ErrUpstream)
	}
	// The spec's default lifetime is 60s; keep a margin for clock skew.
	life := time.Duration(max(body.ExpiresIn, 60)) * time.Second
	u.mu.Lock()
	u.tokens[scope] = bearerToken{value: tok, expires: time.Now().Add(life - 10*time.Second)}
	u.mu.Unlock()
	return tok, nil
}

// parseChallenge reads a WWW-Authenticate value such as
// Bearer realm="https://auth/token",service="registry",scope="a:b:pull".
func parseChallenge(h string) (scheme string, params map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params = map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimLeft(strings.TrimSpace(rest), ",") {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			v, err := strconv.QuotedPrefix(after)
			if err != nil {
				break // an unterminated quote: keep what was read
			}
			val, _ = strconv.Unquote(v)
			after = after[len(v):]
		} else {
			val, after, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
		}
		params[key] = val
		rest = after
	}
	return strings.ToLower(scheme), params
}

// UpstreamName maps a repository name under a remote's prefix to the
// upstream's: Docker Hub keeps official images under library/, so with
// library set a one-component name gets it (dockerhub/nginx → library/nginx).
func UpstreamName(rest string, library bool) string {
	if library && !strings.Contains(rest, "/") {
		return "library/" + rest
	}
	return rest
}
