// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Kind is what a removed [Item] was.
type Kind string

// The kinds, in the order a pass removes them.
const (
	// KindManifest is an untagged manifest (--delete-untagged): its row,
	// references and revision link.
	KindManifest Kind = "manifest"
	// KindBlobLink is a repository's link to a blob no manifest of the
	// repository references: its row and its _layers link object.
	KindBlobLink Kind = "blob-link"
	// KindBlob is a blob no repository links and no manifest is: its row
	// and its data object.
	KindBlob Kind = "blob"
	// KindUpload is an upload session idle for longer than the upload
	// TTL: its row, its S3 multipart upload, and its assembled data if a
	// commit left it.
	KindUpload Kind = "upload"
	// KindMultipart is an S3 multipart upload that no session owns, older
	// than the upload TTL, aborted.
	KindMultipart Kind = "multipart-upload"
	// KindObject is a bucket object the index does not know, found so by
	// two passes.
	KindObject Kind = "unknown-object"
)

// Kinds lists every kind in the order a pass removes them.
var Kinds = []Kind{KindManifest, KindBlobLink, KindBlob, KindUpload, KindMultipart, KindObject}

// Item is one thing a pass removed or, dry, would remove.
type Item struct {
	Kind Kind
	// Repo is the repository of a manifest, blob link or upload, and of
	// an unknown object below a repository.
	Repo string
	// Digest names manifests, blob links, blobs and the unknown objects a
	// digest names.
	Digest string
	// ID is an upload's session id, or a multipart upload's S3 id.
	ID string
	// Key is a multipart upload's object key.
	Key string
	// Objects are the bucket keys deleted.
	Objects []string
	// Bytes counts the bucket bytes freed: the objects' sizes, and for an
	// upload the bytes it had received. An aborted multipart upload that
	// no session owns counts 0: S3 alone knows its parts' sizes.
	Bytes int64
}

// String is the item on one line, as registry gc prints it.
func (it Item) String() string {
	var b strings.Builder
	b.WriteString(string(it.Kind))
	for _, f := range [][2]string{{"repository", it.Repo}, {"digest", it.Digest}, {"id", it.ID}, {"key", it.Key}} {
		if f[1] != "" {
			fmt.Fprintf(&b, " %s=%s", f[0], f[1])
		}
	}
	fmt.Fprintf(&b, " bytes=%d", it.Bytes)
	for _, o := range it.Objects {
		b.WriteString(" object=" + o)
	}
	return b.String()
}

// SkipReason says why a pass did nothing.
type SkipReason string

// The reasons.
const (
	// SkippedBusy: another runner held [LockKey].
	SkippedBusy SkipReason = "another garbage collection pass is running"
	// SkippedRebuild: registry rebuild-db was running.
	SkippedRebuild SkipReason = "registry rebuild-db is running"
)

// Summary is what a pass did.
type Summary struct {
	// Start is the pass's clock when it began (see [Options.Now]);
	// Duration is measured on the wall clock.
	Start    time.Time
	Duration time.Duration
	// Paused is how much of Duration the pass slept to keep to its duty
	// cycle.
	Paused time.Duration
	DryRun bool
	// Skipped is why the pass did nothing, or "".
	Skipped SkipReason
	// Removed lists, in order, what the pass removed (dry: would remove).
	Removed []Item
	// Kept counts candidates left for a later pass: a request held their
	// lock, or the re-check found them referenced again.
	Kept int64
	// Marked counts what the pass found unreferenced, or unknown to the
	// index, for the first time: the grace period starts for those.
	Marked int64
	// Listed counts the bucket objects listed; Unrecognised those whose
	// keys are not in the layout, which a pass leaves alone.
	Listed, Unrecognised int64
	// RebuildRequired, when not "", says why the database went back in
	// time (a failover, a restore): the pass then removed only abandoned
	// uploads, and passes do so until registry rebuild-db completes.
	RebuildRequired string
	// Adopted counts the index rows the bucket stage wrote for objects
	// the index did not know and the bucket's own tags reach; Live counts
	// the candidates it kept for that reason (see the package
	// documentation).
	Adopted, Live int64
}

// Count is how many items of kind the pass removed.
func (s Summary) Count(kind Kind) int {
	n := 0
	for _, it := range s.Removed {
		if it.Kind == kind {
			n++
		}
	}
	return n
}

// Objects is how many bucket objects the pass deleted.
func (s Summary) Objects() int {
	n := 0
	for _, it := range s.Removed {
		n += len(it.Objects)
	}
	return n
}

// Bytes is how many bucket bytes the pass freed.
func (s Summary) Bytes() int64 {
	var n int64
	for _, it := range s.Removed {
		n += it.Bytes
	}
	return n
}

// counts renders the removals by kind.
func (s Summary) counts() string {
	parts := make([]string, len(Kinds))
	for i, k := range Kinds {
		parts[i] = fmt.Sprintf("%d %s", s.Count(k), k)
	}
	return strings.Join(parts, ", ")
}

// Log writes the summary as one structured line, and each removal at
// debug level.
func (s Summary) Log(log zerolog.Logger) {
	if s.Skipped != "" {
		log.Info().Str("reason", string(s.Skipped)).Msg("garbage collection pass skipped")
		return
	}
	for _, it := range s.Removed {
		log.Debug().Bool("dry_run", s.DryRun).Stringer("item", it).Msg("garbage collection removed")
	}
	kinds := zerolog.Dict()
	for _, k := range Kinds {
		kinds = kinds.Int(string(k), s.Count(k))
	}
	log.Info().Bool("dry_run", s.DryRun).Dur("duration", s.Duration).Dur("paused", s.Paused).Dict("removed", kinds).
		Int("objects", s.Objects()).Int64("bytes", s.Bytes()).Int64("kept", s.Kept).Int64("marked", s.Marked).
		Int64("listed", s.Listed).Int64("unrecognised_keys", s.Unrecognised).
		Int64("adopted_rows", s.Adopted).Int64("live_unknown_objects", s.Live).Str("rebuild_required", s.RebuildRequired).
		Msg("garbage collection pass finished")
}

// Print writes every removal, one a line ("removed ..." or, dry, "would
// remove ..."), then the totals.
func (s Summary) Print(w io.Writer) {
	if s.Skipped != "" {
		fmt.Fprintf(w, "gc: skipped: %s\n", s.Skipped)
		return
	}
	verb := "removed"
	if s.DryRun {
		verb = "would remove"
	}
	for _, it := range s.Removed {
		fmt.Fprintf(w, "%s %s\n", verb, it)
	}
	fmt.Fprintf(w, "gc: %s %s: %d bucket objects, %d bytes, in %s (%s of it paused)\n",
		verb, s.counts(), s.Objects(), s.Bytes(), s.Duration.Round(time.Millisecond), s.Paused.Round(time.Millisecond))
	fmt.Fprintf(w, "gc: kept %d candidates for a later pass (in use by a request, or referenced again); "+
		"%d newly found unreferenced; %d bucket objects listed, %d keys outside the layout left alone\n",
		s.Kept, s.Marked, s.Listed, s.Unrecognised)
	if s.Adopted > 0 || s.Live > 0 {
		fmt.Fprintf(w, "gc: kept %d objects the index did not know because the bucket's tags reach them; adopted %d index rows for them\n",
			s.Live, s.Adopted)
	}
	if s.RebuildRequired != "" {
		fmt.Fprintf(w, "gc: ERROR: %s; nothing but abandoned uploads is removed until `registry rebuild-db` has run\n", s.RebuildRequired)
	}
}
