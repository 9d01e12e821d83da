// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/rs/zerolog"
)

// Progress is how far a run has come, for a progress line or log.
type Progress struct {
	// Phase is "listing" while the bucket is walked, then "reconciling".
	Phase   string
	Elapsed time.Duration
	// ObjectsListed counts every key listed, of every kind.
	ObjectsListed int64
	// ManifestsParsed counts the manifests read from the bucket.
	ManifestsParsed int64
	// TagsRead counts the tag links read.
	TagsRead int64
}

// Rate is the objects listed per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.ObjectsListed) / p.Elapsed.Seconds()
}

// Changes counts the index rows a run wrote.
type Changes struct {
	Repositories int64
	Blobs        int64
	BlobLinks    int64
	Manifests    int64
	References   int64 // manifest_blobs and manifest_children rows
	Tags         int64 // tags added
	TagsMoved    int64 // tags pointed where the bucket points
	Deleted      int64 // rows --repair deleted, dependents included; cascades (tags, references) uncounted
}

// Total is the number of rows written.
func (c Changes) Total() int64 {
	return c.Repositories + c.Blobs + c.BlobLinks + c.Manifests + c.References + c.Tags + c.TagsMoved + c.Deleted
}

// Summary is what a run found and did.
type Summary struct {
	Mode     Mode
	Duration time.Duration

	// ObjectsListed counts the keys listed; Unrecognised those the layout
	// does not know (left alone).
	ObjectsListed int64
	Unrecognised  int64
	// ManifestsParsed counts the manifest objects read.
	ManifestsParsed int64

	// What the bucket holds that can be indexed: repositories, tags,
	// manifests (per repository), blobs, and the bytes of all blobs.
	Repositories, Tags, Manifests, Blobs, Bytes int64

	// Findings counts what was found wrong, by kind.
	Findings map[Kind]int64
	// Changes counts the rows written (always zero with --verify).
	Changes Changes
	// Unresolved counts the drift left: all of it after --verify, what
	// needs --repair after a plain rebuild, and what could not be fixed
	// safely after --repair.
	Unresolved int64
}

// Problems counts the damaged objects found in the bucket.
func (s Summary) Problems() int64 { return s.count(true) }

// Drift counts the differences found between the index and the bucket.
func (s Summary) Drift() int64 { return s.count(false) }

func (s Summary) count(damage bool) int64 {
	var n int64
	for k, c := range s.Findings {
		if k.IsDamage() == damage {
			n += c
		}
	}
	return n
}

// Log writes the summary as one structured line.
func (s Summary) Log(log zerolog.Logger) {
	findings := zerolog.Dict()
	for _, k := range slices.Sorted(maps.Keys(s.Findings)) {
		findings = findings.Int64(string(k), s.Findings[k])
	}
	log.Info().Str("mode", s.Mode.String()).Dur("duration", s.Duration).
		Int64("objects_listed", s.ObjectsListed).Int64("unrecognised_keys", s.Unrecognised).
		Int64("manifests_parsed", s.ManifestsParsed).
		Int64("repositories", s.Repositories).Int64("tags", s.Tags).Int64("manifests", s.Manifests).
		Int64("blobs", s.Blobs).Int64("bytes", s.Bytes).
		Int64("problems", s.Problems()).Int64("drift", s.Drift()).Dict("findings", findings).
		Int64("rows_written", s.Changes.Total()).Int64("unresolved", s.Unresolved).
		Msg("rebuild-db finished")
}

// Print writes the summary for a person.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "rebuild-db %s: %d objects listed in %s (%d keys not in the registry layout, left alone)\n",
		s.Mode, s.ObjectsListed, s.Duration.Round(time.Millisecond), s.Unrecognised)
	fmt.Fprintf(w, "bucket: %d repositories, %d tags, %d manifests, %d blobs, %d bytes\n",
		s.Repositories, s.Tags, s.Manifests, s.Blobs, s.Bytes)
	fmt.Fprintf(w, "problems: %d damaged objects in the bucket, reported and skipped\n", s.Problems())
	fmt.Fprintf(w, "drift: %d differences between the index and the bucket\n", s.Drift())
	for _, k := range slices.Sorted(maps.Keys(s.Findings)) {
		fmt.Fprintf(w, "  %-24s %d\n", k, s.Findings[k])
	}
	c := s.Changes
	switch {
	case s.Mode == ModeVerify:
		fmt.Fprintln(w, "changes: none (--verify writes nothing)")
	case c.Total() == 0:
		fmt.Fprintln(w, "changes: none, the index already matched the bucket")
	default:
		fmt.Fprintf(w, "changes: %d rows: %d repositories, %d blobs, %d blob links, %d manifests, %d references, %d tags added, %d tags moved, %d rows deleted\n",
			c.Total(), c.Repositories, c.Blobs, c.BlobLinks, c.Manifests, c.References, c.Tags, c.TagsMoved, c.Deleted)
	}
	switch {
	case s.Unresolved == 0:
	case s.Mode == ModeRebuild:
		fmt.Fprintf(w, "unresolved: %d index rows whose objects are gone or that differ; run rebuild-db --repair\n", s.Unresolved)
	default:
		fmt.Fprintf(w, "unresolved: %d differences left\n", s.Unresolved)
	}
}
