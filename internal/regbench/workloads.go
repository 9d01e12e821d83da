// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/s3store"
)

// Config sizes the content a [Fixture] prepares.
type Config struct {
	// BlobSize is the size of every pushed and pulled blob.
	BlobSize int64
	// Tags, Referrers and Repositories are how many tags the tags list
	// answers, how many artifacts refer to the image, and how many
	// repositories the catalog lists.
	Tags, Referrers, Repositories int
	// S3PartSize is the part size of the direct S3 multipart upload.
	S3PartSize int64
}

// DefaultConfig is what `make bench-compare` measures.
var DefaultConfig = Config{BlobSize: 64 << 20, Tags: 100, Referrers: 10, Repositories: 50, S3PartSize: 5 << 20}

// Repositories the fixture uses.
const (
	imageRepo = "regbench/app"
	pushRepo  = "regbench/push"
	s3Prefix  = "regbench/"
	mainTag   = "latest"
)

// Fixture is the content prepared on a target (and S3) for the workloads.
type Fixture struct {
	cfg      Config
	target   *Target
	s3       *s3store.Store
	src      *blobSource
	seq      *atomic.Uint64 // shared with the fixture's copies (WithTarget)
	pull     digest.Digest  // a BlobSize blob in imageRepo
	manifest digest.Digest  // the image tagged mainTag in imageRepo
	s3Key    string         // a BlobSize object in the bucket

	mu     sync.Mutex
	pushed []digest.Digest // by the push workloads, see TakePushed
}

// pushedOK records a blob pushed by a workload.
func (f *Fixture) pushedOK(d digest.Digest, err error) error {
	if err == nil {
		f.mu.Lock()
		f.pushed = append(f.pushed, d)
		f.mu.Unlock()
	}
	return err
}

// TakePushed returns the digests of the blobs the push workloads stored
// since the last call, so that a long benchmark can delete their objects
// and keep the disk from filling.
func (f *Fixture) TakePushed() []digest.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pushed
	f.pushed = nil
	return p
}

// Prepare uploads what the workloads read: on target (when not nil) an
// image with tags, referrers and repositories for the listings and a blob
// to pull; in s3 (when not nil) an object to GET.
func Prepare(ctx context.Context, target *Target, s3 *s3store.Store, cfg Config) (*Fixture, error) {
	nonce := uint64(time.Now().UnixNano())
	src, err := newBlobSource(cfg.BlobSize, nonce)
	if err != nil {
		return nil, err
	}
	f := &Fixture{cfg: cfg, target: target, s3: s3, src: src, seq: new(atomic.Uint64)}
	big := f.next()
	if s3 != nil {
		f.s3Key = fmt.Sprintf("%spull-%d", s3Prefix, nonce)
		if err := s3.PutObject(ctx, f.s3Key, big.section(0, big.Size()), big.Size()); err != nil {
			return nil, fmt.Errorf("putting the S3 object: %w", err)
		}
	}
	if target != nil {
		if err := f.prepareRegistry(ctx, big); err != nil {
			return nil, fmt.Errorf("preparing %s: %w", target.Name, err)
		}
	}
	return f, nil
}

// WithTarget returns a fixture for another registry serving the same
// database and bucket as f's (a replica), reading the content f prepared.
func (f *Fixture) WithTarget(t *Target) *Fixture {
	return &Fixture{cfg: f.cfg, target: t, s3: f.s3, src: f.src, seq: f.seq,
		pull: f.pull, manifest: f.manifest, s3Key: f.s3Key}
}

// next returns a blob never pushed before.
func (f *Fixture) next() *blob { return f.src.blob(f.seq.Add(1)) }

func (f *Fixture) prepareRegistry(ctx context.Context, big *blob) error {
	t := f.target
	if err := t.pushMonolithic(ctx, imageRepo, big); err != nil {
		return err
	}
	f.pull = big.digest
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configD, err := t.pushBytes(ctx, imageRepo, config)
	if err != nil {
		return err
	}
	empty := []byte("{}")
	emptyD, err := t.pushBytes(ctx, imageRepo, empty)
	if err != nil {
		return err
	}
	image := imageManifest(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: configD, Size: int64(len(config))},
		ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: big.digest, Size: big.Size()}, nil, "")
	f.manifest = digest.FromBytes(image)
	for i := range max(f.cfg.Tags, 1) {
		tag := mainTag
		if i > 0 {
			tag = fmt.Sprintf("v%d", i)
		}
		if err := t.putManifest(ctx, imageRepo, tag, ocispec.MediaTypeImageManifest, image); err != nil {
			return err
		}
	}
	subject := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: f.manifest, Size: int64(len(image))}
	emptyDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: emptyD, Size: int64(len(empty))}
	for i := range f.cfg.Referrers {
		art := imageManifest(emptyDesc, emptyDesc, subject, fmt.Sprintf("application/vnd.regbench.sig.%d", i))
		if err := t.putManifest(ctx, imageRepo, digest.FromBytes(art).String(), ocispec.MediaTypeImageManifest, art); err != nil {
			return err
		}
	}
	for i := range f.cfg.Repositories {
		repo := fmt.Sprintf("regbench/catalog-%03d", i)
		for _, d := range []digest.Digest{configD, big.digest} {
			if err := t.mount(ctx, repo, imageRepo, d); err != nil {
				return err
			}
		}
		if err := t.putManifest(ctx, repo, mainTag, ocispec.MediaTypeImageManifest, image); err != nil {
			return err
		}
	}
	return nil
}

// imageManifest is an OCI image manifest with one layer.
func imageManifest(config, layer ocispec.Descriptor, subject *ocispec.Descriptor, artifactType string) []byte {
	b, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: config, Layers: []ocispec.Descriptor{layer}, Subject: subject,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// Workload is one kind of operation to measure.
type Workload struct {
	Name string
	// Blob says that the workload moves BlobSize bytes per operation, so
	// its throughput is quoted in MiB/s.
	Blob bool
	// S3 says that it goes straight to S3, not to the registry.
	S3 bool
	op func(f *Fixture) Op
}

// Op returns the workload's operation on f.
func (w Workload) Op(f *Fixture) Op { return w.op(f) }

// Workloads are every workload, by name in the order they are reported.
var Workloads = []Workload{
	{Name: "push-monolithic", Blob: true, op: func(f *Fixture) Op {
		return func(ctx context.Context, c *Call) error {
			b := f.next()
			c.Begin()
			c.Bytes = b.Size()
			return f.pushedOK(b.digest, f.target.pushMonolithic(ctx, pushRepo, b))
		}
	}},
	{Name: "push-chunked-5MiB", Blob: true, op: func(f *Fixture) Op { return f.chunked(5 << 20) }},
	{Name: "push-chunked-16MiB", Blob: true, op: func(f *Fixture) Op { return f.chunked(16 << 20) }},
	{Name: "pull-streamed", Blob: true, op: func(f *Fixture) Op {
		return func(ctx context.Context, c *Call) error {
			_, n, err := f.target.do(ctx, request{method: http.MethodGet, path: "/v2/" + imageRepo + "/blobs/" + f.pull.String(), want: http.StatusOK})
			c.Bytes, c.RegistryBytes = n, n
			return f.checkSize(n, err)
		}
	}},
	{Name: "pull-redirected", Blob: true, op: func(f *Fixture) Op {
		return func(ctx context.Context, c *Call) error {
			resp, n, err := f.target.do(ctx, request{method: http.MethodGet, path: "/v2/" + imageRepo + "/blobs/" + f.pull.String(), want: http.StatusTemporaryRedirect})
			c.RegistryBytes = n
			if err != nil {
				return err
			}
			loc, err := f.target.location(resp)
			if err != nil {
				return err
			}
			_, n, err = f.target.do(ctx, request{method: http.MethodGet, path: loc, want: http.StatusOK})
			c.Bytes = n
			return f.checkSize(n, err)
		}
	}},
	{Name: "manifest-get-tag", op: func(f *Fixture) Op { return f.manifestOp(http.MethodGet, mainTag) }},
	{Name: "manifest-head-tag", op: func(f *Fixture) Op { return f.manifestOp(http.MethodHead, mainTag) }},
	{Name: "manifest-get-digest", op: func(f *Fixture) Op { return f.manifestOp(http.MethodGet, "") }},
	{Name: "manifest-head-digest", op: func(f *Fixture) Op { return f.manifestOp(http.MethodHead, "") }},
	{Name: "tags-list", op: func(f *Fixture) Op { return f.get("/v2/" + imageRepo + "/tags/list") }},
	{Name: "referrers", op: func(f *Fixture) Op { return f.get("/v2/" + imageRepo + "/referrers/" + f.manifest.String()) }},
	{Name: "catalog", op: func(f *Fixture) Op { return f.get("/v2/_catalog?n=1000") }},
	{Name: "s3-get", Blob: true, S3: true, op: func(f *Fixture) Op {
		return func(ctx context.Context, c *Call) error {
			rc, err := f.s3.GetObject(ctx, f.s3Key, 0, -1)
			if err != nil {
				return err
			}
			defer rc.Close()
			n, err := io.Copy(io.Discard, rc)
			c.Bytes = n
			return f.checkSize(n, err)
		}
	}},
	{Name: "s3-multipart", Blob: true, S3: true, op: func(f *Fixture) Op {
		return func(ctx context.Context, c *Call) error {
			b := f.next()
			c.Begin()
			c.Bytes = b.Size()
			return f.pushedOK(b.digest, f.s3Multipart(ctx, b))
		}
	}},
	{Name: "s3-multipart-copy", Blob: true, S3: true, op: func(f *Fixture) Op {
		return func(ctx context.Context, c *Call) error {
			b := f.next()
			c.Begin()
			c.Bytes = b.Size()
			return f.pushedOK(b.digest, f.s3MultipartCopy(ctx, b))
		}
	}},
}

// WorkloadByName finds a workload.
func WorkloadByName(name string) (Workload, bool) {
	for _, w := range Workloads {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

func (f *Fixture) checkSize(n int64, err error) error {
	if err == nil && n != f.cfg.BlobSize {
		return fmt.Errorf("read %d bytes of a %d-byte blob", n, f.cfg.BlobSize)
	}
	return err
}

func (f *Fixture) chunked(chunk int64) Op {
	return func(ctx context.Context, c *Call) error {
		b := f.next()
		c.Begin()
		c.Bytes = b.Size()
		return f.pushedOK(b.digest, f.target.pushChunked(ctx, pushRepo, b, chunk))
	}
}

// manifestOp reads the image manifest by tag, or by digest when tag is "".
func (f *Fixture) manifestOp(method, tag string) Op {
	ref := tag
	if ref == "" {
		ref = f.manifest.String()
	}
	r := request{method: method, path: "/v2/" + imageRepo + "/manifests/" + ref,
		header: map[string]string{"Accept": manifestAccept}, want: http.StatusOK}
	return func(ctx context.Context, c *Call) error {
		_, n, err := f.target.do(ctx, r)
		c.Bytes, c.RegistryBytes = n, n
		return err
	}
}

func (f *Fixture) get(path string) Op {
	r := request{method: http.MethodGet, path: path, want: http.StatusOK}
	return func(ctx context.Context, c *Call) error {
		_, n, err := f.target.do(ctx, r)
		c.Bytes, c.RegistryBytes = n, n
		return err
	}
}

// S3PushKey is where the s3-multipart workload puts blob d.
func S3PushKey(d digest.Digest) string { return s3Prefix + "push/" + d.Encoded() }

// s3Multipart uploads b in parts of S3PartSize, one after another, the way
// the registry writes an upload.
func (f *Fixture) s3Multipart(ctx context.Context, b *blob) error {
	return f.s3MultipartTo(ctx, S3PushKey(b.digest), b)
}

// s3MultipartCopy is what a registry must do when it learns the digest
// only at the end: a multipart upload to a staging key, then a copy to
// the content address and a delete of the staging object.
func (f *Fixture) s3MultipartCopy(ctx context.Context, b *blob) error {
	staging := S3PushKey(b.digest) + ".staging"
	if err := f.s3MultipartTo(ctx, staging, b); err != nil {
		return err
	}
	if err := f.s3.Copy(ctx, staging, S3PushKey(b.digest), b.Size()); err != nil {
		return err
	}
	return f.s3.Delete(ctx, staging)
}

func (f *Fixture) s3MultipartTo(ctx context.Context, key string, b *blob) error {
	id, err := f.s3.CreateMultipart(ctx, key)
	if err != nil {
		return err
	}
	var parts []s3store.Part
	for off, n := int64(0), int32(1); off < b.Size(); off, n = off+f.cfg.S3PartSize, n+1 {
		size := min(f.cfg.S3PartSize, b.Size()-off)
		etag, err := f.s3.UploadPart(ctx, key, id, n, b.bytesOf(off, size))
		if err != nil {
			f.s3.AbortMultipart(context.WithoutCancel(ctx), key, id)
			return err
		}
		parts = append(parts, s3store.Part{Number: n, ETag: etag, Size: size})
	}
	return f.s3.CompleteMultipart(ctx, key, id, parts)
}
