// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A torture client pushes, retags and deletes over HTTP like a registry
// client, spreading its requests over replicas, and keeps a model of what
// it owns: its manifests, its tags (named c<id>-…, no other client touches
// them) and each tag's history. Manifests it owns are unique to it (each
// has a config of its own); layers come from a small pool every client
// shares, so garbage collection keeps meeting blobs that were just freed
// and are pushed again.

// layerPool is the shared layers' count; small, so that a layer often
// loses its last reference and is pushed again soon after.
const layerPool = 16

// blobBytes of every blob any client pushed, by digest.
var tortureBlobs sync.Map

// layer returns shared layer i.
func layer(i int) ocispec.Descriptor {
	return tortureBlob(ocispec.MediaTypeImageLayer, []byte(fmt.Sprintf("shared layer %d %s", i, strings.Repeat("x", 512*i))))
}

// tortureBlob remembers content and describes it.
func tortureBlob(mediaType string, content []byte) ocispec.Descriptor {
	d := digest.FromBytes(content)
	tortureBlobs.Store(d, content)
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
}

// ownedManifest is a manifest a client pushed and has not deleted.
type ownedManifest struct {
	repo      string
	mediaType string
	content   []byte
	digest    digest.Digest
	blobs     []digest.Digest // config and layers
	children  []*ownedManifest
	subject   digest.Digest
}

type repoTag struct{ repo, tag string }

// tortureClient is one client and its model.
type tortureClient struct {
	t     *testing.T
	id    int
	bases []string
	http  *http.Client
	rng   *rand.Rand
	seq   int
	reqs  int

	manifests map[digest.Digest]*ownedManifest
	tags      map[repoTag]digest.Digest
	history   map[repoTag][]digest.Digest

	ops           map[string]int // operations done, by kind
	blobUnknown   int            // manifest PUTs answered MANIFEST_BLOB_UNKNOWN, then retried
	failures      []string
	verifications int
}

func newTortureClient(t *testing.T, id int, bases []string) *tortureClient {
	return &tortureClient{t: t, id: id, bases: bases, http: &http.Client{Timeout: time.Minute},
		rng:       rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano()))),
		manifests: map[digest.Digest]*ownedManifest{}, tags: map[repoTag]digest.Digest{},
		history: map[repoTag][]digest.Digest{}, ops: map[string]int{}}
}

// fail records a broken promise of the registry.
func (c *tortureClient) fail(format string, args ...any) {
	msg := fmt.Sprintf("client %d, %s: ", c.id, time.Now().Format("15:04:05.000")) + fmt.Sprintf(format, args...)
	c.failures = append(c.failures, msg)
}

// do sends a request to the next replica in turn.
func (c *tortureClient) do(method, path string, header http.Header, body []byte) (*http.Response, []byte) {
	c.reqs++
	base := c.bases[c.reqs%len(c.bases)]
	if strings.HasPrefix(path, "http") {
		path = path[strings.Index(path, "/v2/"):]
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header = header
	if req.Header == nil {
		req.Header = http.Header{}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.fail("%s %s: %v", method, path, err)
		return &http.Response{StatusCode: 0, Header: http.Header{}}, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// pushBlob makes d present in repo: skipped when a HEAD finds it, as
// clients do; else mounted from from (when set), else uploaded.
func (c *tortureClient) pushBlob(repo, from string, d digest.Digest) bool {
	if resp, _ := c.do("HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil, nil); resp.StatusCode == http.StatusOK {
		return true
	}
	v, _ := tortureBlobs.Load(d)
	content := v.([]byte)
	path := "/v2/" + repo + "/blobs/uploads/"
	if from != "" {
		path += "?mount=" + d.String() + "&from=" + from
	}
	resp, body := c.do("POST", path, nil, nil)
	switch resp.StatusCode {
	case http.StatusCreated:
		return true // mounted
	case http.StatusAccepted:
	default:
		c.fail("POST %s: %d %s", path, resp.StatusCode, body)
		return false
	}
	loc := resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, body = c.do("PUT", loc+sep+"digest="+d.String(), http.Header{"Content-Type": {"application/octet-stream"}}, content)
	if resp.StatusCode != http.StatusCreated {
		c.fail("PUT %s: %d %s", loc, resp.StatusCode, body)
		return false
	}
	return true
}

// push pushes m (its blobs and children first) under ref, a tag or its
// digest. A MANIFEST_BLOB_UNKNOWN answer means garbage collection took a
// blob or child between the client's HEAD and its PUT, which the protocol
// allows: the client pushes what is missing again and retries.
func (c *tortureClient) push(m *ownedManifest, ref, mountFrom string) bool {
	for attempt := 0; attempt < 10; attempt++ {
		for i, b := range m.blobs {
			from := ""
			if i == 1 {
				from = mountFrom
			}
			if !c.pushBlob(m.repo, from, b) {
				return false
			}
		}
		for _, child := range m.children {
			if !c.push(child, child.digest.String(), "") {
				return false
			}
		}
		resp, body := c.do("PUT", "/v2/"+m.repo+"/manifests/"+ref, http.Header{"Content-Type": {m.mediaType}}, m.content)
		switch {
		case resp.StatusCode == http.StatusCreated:
			if got := resp.Header.Get("Docker-Content-Digest"); got != m.digest.String() {
				c.fail("PUT %s:%s: digest %s, want %s", m.repo, ref, got, m.digest)
				return false
			}
			return true
		case resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte("MANIFEST_BLOB_UNKNOWN")):
			c.blobUnknown++
		default:
			c.fail("PUT %s:%s: %d %s", m.repo, ref, resp.StatusCode, body)
			return false
		}
	}
	c.fail("PUT %s:%s: MANIFEST_BLOB_UNKNOWN ten times", m.repo, ref)
	return false
}

// newImage makes (but does not push) an image of repo over random shared
// layers, a referrer of subject when set.
func (c *tortureClient) newImage(repo string, subject *ownedManifest) *ownedManifest {
	c.seq++
	config := tortureBlob(ocispec.MediaTypeImageConfig, []byte(fmt.Sprintf(`{"client":%d,"seq":%d}`, c.id, c.seq)))
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config, Layers: []ocispec.Descriptor{}}
	m := &ownedManifest{repo: repo, mediaType: ocispec.MediaTypeImageManifest, blobs: []digest.Digest{config.Digest}}
	if subject != nil {
		man.ArtifactType = "application/vnd.torture.signature"
		man.Subject = &ocispec.Descriptor{MediaType: subject.mediaType, Digest: subject.digest, Size: int64(len(subject.content))}
		m.subject = subject.digest
	} else {
		for _, i := range c.rng.Perm(layerPool)[:1+c.rng.IntN(3)] {
			l := layer(i)
			man.Layers = append(man.Layers, l)
			m.blobs = append(m.blobs, l.Digest)
		}
	}
	m.content, _ = json.Marshal(man)
	m.digest = digest.FromBytes(m.content)
	return m
}

// newIndex makes an index of repo over two new images.
func (c *tortureClient) newIndex(repo string) *ownedManifest {
	m := &ownedManifest{repo: repo, mediaType: ocispec.MediaTypeImageIndex}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for range 2 {
		child := c.newImage(repo, nil)
		m.children = append(m.children, child)
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: child.mediaType, Digest: child.digest, Size: int64(len(child.content))})
	}
	m.content, _ = json.Marshal(idx)
	m.digest = digest.FromBytes(m.content)
	return m
}

// own adds m, its children and a tag to the model.
func (c *tortureClient) own(m *ownedManifest, tag string) {
	c.manifests[m.digest] = m
	for _, ch := range m.children {
		c.manifests[ch.digest] = ch
	}
	if tag != "" {
		rt := repoTag{m.repo, tag}
		c.tags[rt] = m.digest
		c.history[rt] = append(c.history[rt], m.digest)
	}
}

// untag forgets a tag, its history too (the registry deletes its keys).
func (c *tortureClient) untag(rt repoTag) {
	delete(c.tags, rt)
	delete(c.history, rt)
}

// live is what the client may expect to pull: the manifests its tags
// reach, through indexes and to the referrers of what is reached. The
// others may be gone, to garbage collection with --delete-untagged.
func (c *tortureClient) live() map[digest.Digest]*ownedManifest {
	out := map[digest.Digest]*ownedManifest{}
	var queue []digest.Digest
	for _, d := range c.tags {
		queue = append(queue, d)
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		m := c.manifests[d]
		if m == nil || out[d] != nil {
			continue
		}
		out[d] = m
		for _, ch := range m.children {
			queue = append(queue, ch.digest)
		}
		for _, r := range c.manifests {
			if r.subject == d {
				queue = append(queue, r.digest)
			}
		}
	}
	return out
}

// tagged returns the client's tags sorted, for random choices that do
// not depend on map order.
func (c *tortureClient) tagged() []repoTag {
	out := make([]repoTag, 0, len(c.tags))
	for rt := range c.tags {
		out = append(out, rt)
	}
	slices.SortFunc(out, func(a, b repoTag) int { return strings.Compare(a.repo+":"+a.tag, b.repo+":"+b.tag) })
	return out
}

// verify pulls m byte for byte: by digest, by one of its tags, every blob,
// every child, and its referrers through the referrers API.
func (c *tortureClient) verify(m *ownedManifest) {
	c.verifications++
	refs := []string{m.digest.String()}
	for rt, d := range c.tags {
		if d == m.digest && rt.repo == m.repo {
			refs = append(refs, rt.tag)
			break
		}
	}
	for _, ref := range refs {
		resp, body := c.do("GET", "/v2/"+m.repo+"/manifests/"+ref, http.Header{"Accept": {m.mediaType}}, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, m.content) {
			c.fail("GET %s manifest %s (%s): %d, %d bytes, want %d", m.repo, ref, m.digest, resp.StatusCode, len(body), len(m.content))
		}
	}
	for _, b := range m.blobs {
		v, _ := tortureBlobs.Load(b)
		resp, body := c.do("GET", "/v2/"+m.repo+"/blobs/"+b.String(), nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, v.([]byte)) {
			c.fail("GET %s blob %s of %s: %d %.200s", m.repo, b, m.digest, resp.StatusCode, body)
		}
	}
	for _, ch := range m.children {
		c.verify(ch)
	}
	var want []digest.Digest
	for _, r := range c.manifests {
		if r.subject == m.digest {
			want = append(want, r.digest)
		}
	}
	if len(want) == 0 {
		return
	}
	resp, body := c.do("GET", "/v2/"+m.repo+"/referrers/"+m.digest.String(), nil, nil)
	var idx ocispec.Index
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &idx) != nil {
		c.fail("GET %s referrers of %s: %d %.200s", m.repo, m.digest, resp.StatusCode, body)
		return
	}
	for _, d := range want {
		if !slices.ContainsFunc(idx.Manifests, func(x ocispec.Descriptor) bool { return x.Digest == d }) {
			c.fail("GET %s referrers of %s: %s missing", m.repo, m.digest, d)
		}
		c.verify(c.manifests[d])
	}
}
