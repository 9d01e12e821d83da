// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"maps"
	"slices"
	"sync"

	"github.com/rs/zerolog"
)

// Kind names what a [Finding] is about. Kinds are stable strings: logs and
// alerts match on them.
type Kind string

// Damage: content of the bucket that cannot be indexed. It is reported and
// skipped, and rebuild-db never repairs it, since that would mean changing
// the bucket, which rebuild-db never writes.
const (
	// ManifestInvalid: a manifest's bytes do not parse, or do not hash to
	// their digest, or could not be read.
	ManifestInvalid Kind = "manifest-invalid"
	// ManifestBytesMissing: a revision link whose manifest has no blob data.
	ManifestBytesMissing Kind = "manifest-bytes-missing"
	// ManifestBlobMissing: a manifest references a blob that the bucket
	// lacks or that its repository does not link.
	ManifestBlobMissing Kind = "manifest-blob-missing"
	// ManifestBlobSize: a manifest references a blob whose object has
	// another size than the descriptor says.
	ManifestBlobSize Kind = "manifest-blob-size"
	// ManifestChildMissing: an index lists a manifest that is not a usable
	// manifest of its repository.
	ManifestChildMissing Kind = "manifest-child-missing"
	// TagLinkInvalid: a tag's current link does not hold a digest.
	TagLinkInvalid Kind = "tag-link-invalid"
	// TagTargetMissing: a tag points at a digest that is not a usable
	// manifest of its repository.
	TagTargetMissing Kind = "tag-target-missing"
	// BlobLinkDangling: a repository links a blob the bucket lacks.
	BlobLinkDangling Kind = "blob-link-dangling"
)

// Drift: the index and the bucket disagree.
const (
	// IndexLacksRepository, IndexLacksBlob, IndexLacksBlobLink,
	// IndexLacksManifest, IndexLacksReference and IndexLacksTag: the bucket
	// holds something the index does not know. rebuild-db adds it.
	IndexLacksRepository Kind = "index-lacks-repository"
	IndexLacksBlob       Kind = "index-lacks-blob"
	IndexLacksBlobLink   Kind = "index-lacks-blob-link"
	IndexLacksManifest   Kind = "index-lacks-manifest"
	IndexLacksReference  Kind = "index-lacks-reference"
	IndexLacksTag        Kind = "index-lacks-tag"
	// TagDiffers: the index points a tag elsewhere than the bucket's
	// current link. rebuild-db moves it to the bucket's.
	TagDiffers Kind = "tag-differs"
	// StaleTag, StaleManifest, StaleBlobLink and StaleBlob: an index row
	// whose object is gone from the bucket. --repair deletes it, with
	// what depends on it.
	StaleTag      Kind = "stale-tag"
	StaleManifest Kind = "stale-manifest"
	StaleBlobLink Kind = "stale-blob-link"
	StaleBlob     Kind = "stale-blob"
	// BlobSizeDiffers: the index records another size for a blob than its
	// object has. Nothing is changed: which one is wrong is not known.
	BlobSizeDiffers Kind = "blob-size-differs"
)

// damage is the set of kinds that are damage rather than drift.
var damage = map[Kind]bool{
	ManifestInvalid: true, ManifestBytesMissing: true, ManifestBlobMissing: true, ManifestBlobSize: true,
	ManifestChildMissing: true, TagLinkInvalid: true, TagTargetMissing: true, BlobLinkDangling: true,
}

// IsDamage reports whether k is damaged bucket content rather than drift
// between the index and the bucket.
func (k Kind) IsDamage() bool { return damage[k] }

// Finding is one thing a run found wrong.
type Finding struct {
	Kind   Kind
	Repo   string // "" when the finding is not about one repository
	Tag    string
	Digest string
	Detail string
}

// detailedPerKind bounds the drift findings logged one by one: a verify of
// an empty index would otherwise log every object of the bucket. The
// counts stay exact. Damage is always logged in full.
const detailedPerKind = 100

// reporter logs findings and counts them by kind. It is safe for
// concurrent use.
type reporter struct {
	log zerolog.Logger

	mu     sync.Mutex
	counts map[Kind]int64
}

func newReporter(log zerolog.Logger) *reporter {
	return &reporter{log: log, counts: map[Kind]int64{}}
}

// add records f, and logs it unless its kind has been logged often enough.
func (r *reporter) add(f Finding) {
	r.mu.Lock()
	r.counts[f.Kind]++
	n := r.counts[f.Kind]
	r.mu.Unlock()
	if !f.Kind.IsDamage() && n > detailedPerKind {
		return
	}
	ev := r.log.Warn()
	if f.Kind.IsDamage() {
		ev = ev.Str("class", "damage")
	} else {
		ev = ev.Str("class", "drift")
	}
	ev = ev.Str("kind", string(f.Kind))
	if f.Repo != "" {
		ev = ev.Str("repository", f.Repo)
	}
	if f.Tag != "" {
		ev = ev.Str("tag", f.Tag)
	}
	if f.Digest != "" {
		ev = ev.Str("digest", f.Digest)
	}
	ev.Msg(f.Detail)
}

// flushElided logs, once per kind, how many findings were counted but not
// logged.
func (r *reporter) flushElided() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(r.counts)) {
		if n := r.counts[k]; !k.IsDamage() && n > detailedPerKind {
			r.log.Warn().Str("class", "drift").Str("kind", string(k)).Int64("count", n).
				Msgf("%d more findings of this kind were counted but not logged one by one", n-detailedPerKind)
		}
	}
}

// snapshot returns the counts so far.
func (r *reporter) snapshot() map[Kind]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}
