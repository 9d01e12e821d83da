// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestDamagedContentIsReportedAndSkipped: every kind of damage is
// reported once, with where it is, and left out; what depends on it is
// left out and reported too; everything sound is indexed.
func TestDamagedContentIsReportedAndSkipped(t *testing.T) {
	b := newBucket(t)
	c := writeCorpus(b)
	const repo = "damaged/repo"
	cfg := b.config(repo, "damaged")

	notJSON := b.manifest(repo, ocispec.MediaTypeImageManifest, []byte("this is not a manifest"))
	b.tag(repo, "not-json", notJSON.Digest)

	sound := b.image(repo, cfg)
	forged := digest.FromString("what the link claims")
	b.put(b.l.BlobData(forged), []byte(`{"schemaVersion":2}`)) // bytes of another digest
	b.put(b.l.RevisionLink(repo, forged), []byte(forged))

	noBytes := digest.FromString("a revision whose bytes are gone")
	b.put(b.l.RevisionLink(repo, noBytes), []byte(noBytes))

	b.tag(repo, "nowhere", digest.FromString("never pushed"))
	b.put(b.l.TagCurrentLink(repo, "garbage"), []byte("not a digest"))

	dangling := digest.FromString("a blob that is gone")
	b.put(b.l.LayerLink(repo, dangling), []byte(dangling))

	layer := b.blob(repo, []byte("twelve bytes"))
	layer.Size = 11
	wrongSize := b.image(repo, cfg, layer)
	b.tag(repo, "wrong-size", wrongSize.Digest)

	foreign := b.blob("elsewhere/repo", []byte("linked only elsewhere"))
	unlinked := b.image(repo, cfg, foreign)

	absentChild := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 10}
	brokenIndex := b.index(repo, sound, absentChild)
	outerIndex := b.index(repo, brokenIndex)
	b.tag(repo, "outer", outerIndex.Digest)

	schema1 := b.manifest(repo, "application/vnd.docker.distribution.manifest.v1+prettyjws",
		[]byte(`{"schemaVersion":1,"name":"damaged/repo","tag":"old","fsLayers":[]}`))

	db := newIndex(t)
	s, logs := run(t, db, b, ModeRebuild)
	want := map[Kind]int64{
		ManifestInvalid:      3, // notJSON, forged, schema1
		ManifestBytesMissing: 1,
		TagTargetMissing:     4, // not-json, nowhere, wrong-size, outer
		TagLinkInvalid:       1,
		BlobLinkDangling:     1,
		ManifestBlobSize:     1,
		ManifestBlobMissing:  1,
		ManifestChildMissing: 2, // brokenIndex, then outerIndex
	}
	if diff := cmp.Diff(want, findings(s)); diff != "" {
		t.Fatalf("findings (-want +got):\n%s\nlog:\n%s", diff, logs)
	}
	for _, d := range []digest.Digest{notJSON.Digest, forged, noBytes, wrongSize.Digest, unlinked.Digest,
		brokenIndex.Digest, outerIndex.Digest, schema1.Digest, dangling} {
		if !strings.Contains(logs, d.String()) {
			t.Errorf("no finding names %s:\n%s", d, logs)
		}
	}
	for _, tag := range []string{`"tag":"not-json"`, `"tag":"nowhere"`, `"tag":"garbage"`, `"tag":"wrong-size"`, `"tag":"outer"`} {
		if !strings.Contains(logs, tag) {
			t.Errorf("no finding names %s:\n%s", tag, logs)
		}
	}

	d := dump(t, db)
	if !strings.Contains(d, "manifest "+repo+" "+sound.Digest.String()) {
		t.Errorf("the sound manifest of the damaged repository is not indexed:\n%s", d)
	}
	if !strings.Contains(d, "tag library/app v1 "+c.index.Digest.String()) {
		t.Errorf("the sound corpus is not indexed:\n%s", d)
	}
	for _, bad := range []digest.Digest{notJSON.Digest, forged, noBytes, wrongSize.Digest, unlinked.Digest,
		brokenIndex.Digest, outerIndex.Digest, schema1.Digest} {
		if strings.Contains(d, "manifest "+repo+" "+bad.String()) {
			t.Errorf("damaged manifest %s is indexed", bad)
		}
	}
	if s.Problems() != 14 || s.Drift() != 0 {
		t.Errorf("problems %d, drift %d", s.Problems(), s.Drift())
	}

	// Damage is the bucket's: a second run reports it again and changes
	// nothing, and --verify counts it.
	again, _ := run(t, db, b, ModeRebuild)
	if again.Changes.Total() != 0 || again.Problems() != s.Problems() {
		t.Errorf("second run: changes %+v, problems %d", again.Changes, again.Problems())
	}
	verify, _ := run(t, db, b, ModeVerify)
	if verify.Problems() != s.Problems() || verify.Drift() != 0 {
		t.Errorf("verify: %v", verify.Findings)
	}
}
