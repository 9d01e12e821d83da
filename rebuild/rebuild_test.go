// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"bytes"
	"context"
	"crypto/sha512"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// corpus is content of every kind the index holds, written into a bucket.
type corpus struct {
	amd64, arm64, index, artifact ocispec.Descriptor
	shared, empty                 ocispec.Descriptor
	sha512Image                   ocispec.Descriptor
}

// writeCorpus fills b: an index over two images sharing a layer, tagged
// twice; an artifact whose subject is the index; a blob mounted into a
// second repository; a repository nested in another; an empty layer; an
// image and its blobs in sha512.
func writeCorpus(b *bucket) corpus {
	var c corpus
	const app = "library/app"
	c.shared = b.blob(app, bytes.Repeat([]byte("shared layer "), 100))
	c.amd64 = b.image(app, b.config(app, "amd64"), c.shared, b.blob(app, []byte("amd64 layer")))
	c.arm64 = b.image(app, b.config(app, "arm64"), c.shared)
	c.index = b.index(app, c.amd64, c.arm64)
	b.tag(app, "v1", c.index.Digest)
	b.tag(app, "latest", c.index.Digest)
	b.tag(app, "amd64", c.amd64.Digest)
	empty := b.blob(app, []byte("{}"))
	empty.MediaType = "application/vnd.oci.empty.v1+json"
	c.artifact = b.manifest(app, ocispec.MediaTypeImageManifest, mustJSON(b.t, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.sbom", Config: empty,
		Layers: []ocispec.Descriptor{b.blob(app, []byte("sbom"))}, Subject: &c.index,
		Annotations: map[string]string{"org.example": "yes"}}))

	// A mount: the same layer linked into a second repository.
	b.put(b.l.LayerLink("library/copy", c.shared.Digest), []byte(c.shared.Digest))
	img := b.image("library/copy", b.config("library/copy", "copy"), c.shared)
	b.tag("library/copy", "v1", img.Digest)

	// "a" and "a/b" are two repositories.
	b.tag("a", "x", b.image("a", b.config("a", "a")).Digest)
	c.empty = b.blob("a/b", nil)
	b.tag("a/b", "x", b.image("a/b", b.config("a/b", "ab"), c.empty).Digest)

	// sha512 throughout.
	layer := []byte("a layer addressed by sha512")
	ld := digest.NewDigestFromBytes(digest.SHA512, sha512Sum(layer))
	b.put(b.l.BlobData(ld), layer)
	b.put(b.l.LayerLink("sha512/app", ld), []byte(ld))
	cfg := b.config("sha512/app", "sha512")
	content := mustJSON(b.t, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: ld, Size: int64(len(layer))}}})
	md := digest.NewDigestFromBytes(digest.SHA512, sha512Sum(content))
	b.put(b.l.BlobData(md), content)
	b.put(b.l.RevisionLink("sha512/app", md), []byte(md))
	b.tag("sha512/app", "v1", md)
	c.sha512Image = ocispec.Descriptor{Digest: md}

	// Leftovers that are no registry content: an upload in progress, a
	// stray key, and names the grammar refuses.
	b.put(b.l.UploadData("library/app", "6f0a7f2c-1111-4222-8333-444455556666"), []byte("partial"))
	b.put(b.l.RepositoriesPrefix()+"library/app/_manifests/README", []byte("not a link"))
	b.put(b.l.LayerLink("Upper/Case", c.shared.Digest), []byte(c.shared.Digest))
	b.put(b.l.TagCurrentLink("library/app", "bad:tag"), []byte(c.index.Digest))
	return c
}

func sha512Sum(b []byte) []byte {
	s := sha512.Sum512(b)
	return s[:]
}

// TestRebuildIntoEmptyIndex: every kind of content comes back, with the
// rows a push writes, and a second run changes nothing and says so.
func TestRebuildIntoEmptyIndex(t *testing.T) {
	b := newBucket(t)
	c := writeCorpus(b)
	db := newIndex(t)

	s, logs := run(t, db, b, ModeRebuild)
	if len(findings(s)) != 0 {
		t.Fatalf("findings on a sound bucket: %v\n%s", s.Findings, logs)
	}
	want := Summary{Repositories: 5, Tags: 7, Manifests: 8, Blobs: 20, Unrecognised: 3}
	got := Summary{Repositories: s.Repositories, Tags: s.Tags, Manifests: s.Manifests, Blobs: s.Blobs, Unrecognised: s.Unrecognised}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if s.Changes.Total() == 0 || s.Changes.Manifests != 8 || s.Changes.Tags != 7 {
		t.Errorf("changes %+v", s.Changes)
	}
	d := dump(t, db)
	for _, line := range []string{
		"repository a\n", "repository a/b\n",
		"blob " + c.empty.Digest.String() + " 0\n",
		"blob-link library/copy " + c.shared.Digest.String() + "\n",
		"manifest-child library/app " + c.index.Digest.String() + " " + c.arm64.Digest.String() + "\n",
		"manifest library/app " + c.artifact.Digest.String() + " " + ocispec.MediaTypeImageManifest +
			" application/vnd.example.sbom " + c.index.Digest.String() + ` {"org.example": "yes"} `,
		"tag library/app latest " + c.index.Digest.String() + "\n",
		"tag sha512/app v1 " + c.sha512Image.Digest.String() + "\n",
		"manifest-blob library/app " + c.amd64.Digest.String() + " " + c.shared.Digest.String() + "\n",
	} {
		if !strings.Contains(d, line) {
			t.Errorf("the index lacks %q; it is:\n%s", line, d)
		}
	}
	for _, stray := range []string{"_uploads", "README", "Upper/Case", "bad:tag"} {
		if strings.Contains(d, stray) {
			t.Errorf("the index holds %s:\n%s", stray, d)
		}
	}

	again, _ := run(t, db, b, ModeRebuild)
	if again.Changes.Total() != 0 || len(findings(again)) != 0 {
		t.Errorf("second run: changes %+v, findings %v", again.Changes, again.Findings)
	}
	var out strings.Builder
	again.Print(&out)
	if !strings.Contains(out.String(), "changes: none, the index already matched the bucket") {
		t.Errorf("second run does not say it changed nothing:\n%s", out.String())
	}
	if after := dump(t, db); after != d {
		t.Errorf("second run changed the index:\n%s", cmp.Diff(d, after))
	}
	verify, _ := run(t, db, b, ModeVerify)
	if verify.Drift() != 0 || verify.Problems() != 0 {
		t.Errorf("verify after a rebuild: %v", verify.Findings)
	}
}

// TestConcurrentRunIsRefused: while one run holds the cluster-wide lock,
// another says so and does nothing.
func TestConcurrentRunIsRefused(t *testing.T) {
	b := newBucket(t)
	db := newIndex(t)
	conn, err := db.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var held bool
	if err := conn.QueryRow(context.Background(), "SELECT pg_try_advisory_lock($1)", LockKey).Scan(&held); err != nil || !held {
		t.Fatalf("taking the lock as another run would: %v %v", held, err)
	}
	_, err = Run(context.Background(), Options{DB: db, S3: b.s3})
	if err != ErrBusy {
		t.Fatalf("a run while another holds the lock: %v, want ErrBusy", err)
	}
	if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", LockKey); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), Options{DB: db, S3: b.s3}); err != nil {
		t.Fatalf("a run once the lock is free: %v", err)
	}
}
