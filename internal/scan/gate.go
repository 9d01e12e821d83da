// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package scan

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
	"github.com/ha-registry/ha-registry/registry"
)

// Gate enforces the policy file's scanning rules on manifest pulls
// (GET and HEAD) over any registry store: an image with findings at or
// above a rule's severity, allow-list aside, is refused with DENIED, and
// so is an unscanned one where the rule says so. An index is judged by
// its images. Blob pulls are not gated: they need a digest, which only a
// manifest gives.
//
// It is a [registry.Layer]: every contract method is written here (all
// but GetManifest pass to Store), and one it does not write is refused
// by [registry.Undecided], never passed on unseen.
type Gate struct {
	registry.Undecided
	// Store is the store the gate wraps.
	Store  registry.Store
	Index  *store.Store
	Policy func() *policy.Policy
}

// NewGate wraps inner with the scanning rules of pol, reading scan
// results from index.
func NewGate(inner registry.Store, index *store.Store, pol func() *policy.Policy) *Gate {
	return &Gate{Undecided: registry.Undecided{Layer: "the scan gate"}, Store: inner, Index: index, Policy: pol}
}

var _ registry.Layer = (*Gate)(nil)

// Unwrap returns the store the gate wraps.
func (g *Gate) Unwrap() registry.Store { return g.Store }

// Passes passes blob redirects: blob pulls are not gated.
func (g *Gate) Passes(ability reflect.Type) bool {
	return ability == reflect.TypeFor[registry.BlobRedirector]()
}

// The reads and writes the gate does not judge pass on.

// Ready is the wrapped store's readiness.
func (g *Gate) Ready(ctx context.Context) error { return g.Store.Ready(ctx) }

// StatBlob passes on: blob pulls are not gated.
func (g *Gate) StatBlob(ctx context.Context, repo string, d digest.Digest) (registry.BlobInfo, error) {
	return g.Store.StatBlob(ctx, repo, d)
}

// OpenBlob passes on: blob pulls are not gated.
func (g *Gate) OpenBlob(ctx context.Context, repo string, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	return g.Store.OpenBlob(ctx, repo, d, offset, length)
}

// StartUpload passes on: pushes are not gated.
func (g *Gate) StartUpload(ctx context.Context, repo string) (registry.UploadSession, error) {
	return g.Store.StartUpload(ctx, repo)
}

// UploadStatus passes on.
func (g *Gate) UploadStatus(ctx context.Context, repo, id string) (registry.UploadSession, error) {
	return g.Store.UploadStatus(ctx, repo, id)
}

// AppendUpload passes on.
func (g *Gate) AppendUpload(ctx context.Context, repo, id string, start int64, body io.Reader) (registry.UploadSession, error) {
	return g.Store.AppendUpload(ctx, repo, id, start, body)
}

// CommitUpload passes on.
func (g *Gate) CommitUpload(ctx context.Context, repo, id string, start int64, body io.Reader, d digest.Digest) (registry.BlobInfo, error) {
	return g.Store.CommitUpload(ctx, repo, id, start, body, d)
}

// CancelUpload passes on.
func (g *Gate) CancelUpload(ctx context.Context, repo, id string) error {
	return g.Store.CancelUpload(ctx, repo, id)
}

// PutBlob passes on.
func (g *Gate) PutBlob(ctx context.Context, repo string, d digest.Digest, size int64, body io.Reader) (registry.BlobInfo, error) {
	return g.Store.PutBlob(ctx, repo, d, size, body)
}

// MountBlob passes on.
func (g *Gate) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (registry.BlobInfo, bool, error) {
	return g.Store.MountBlob(ctx, repo, from, d)
}

// DeleteBlob passes on.
func (g *Gate) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	return g.Store.DeleteBlob(ctx, repo, d)
}

// PutManifest passes on: a push is judged when it is pulled.
func (g *Gate) PutManifest(ctx context.Context, p registry.ManifestPut) (*registry.Manifest, error) {
	return g.Store.PutManifest(ctx, p)
}

// DeleteManifest passes on.
func (g *Gate) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return g.Store.DeleteManifest(ctx, repo, d)
}

// DeleteTag passes on.
func (g *Gate) DeleteTag(ctx context.Context, repo, tag string) error {
	return g.Store.DeleteTag(ctx, repo, tag)
}

// Tags passes on: a listing shows names, not content.
func (g *Gate) Tags(ctx context.Context, repo, last string, n int) ([]string, bool, error) {
	return g.Store.Tags(ctx, repo, last, n)
}

// Catalog passes on.
func (g *Gate) Catalog(ctx context.Context, last string, n int) ([]string, bool, error) {
	return g.Store.Catalog(ctx, last, n)
}

// Referrers passes on: scan reports are found through it, and each
// referrer's manifest is judged when it is pulled.
func (g *Gate) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	return g.Store.Referrers(ctx, repo, d, artifactType)
}

// GetManifest reads the manifest, then applies the rule of repo.
func (g *Gate) GetManifest(ctx context.Context, repo, tag string, d digest.Digest) (registry.StoredManifest, error) {
	m, err := g.Store.GetManifest(ctx, repo, tag, d)
	if err != nil {
		return m, err
	}
	rule, ok := g.Policy().ScanRuleFor(repo)
	if !ok {
		return m, nil
	}
	targets := []digest.Digest{m.Digest}
	if parsed, err := registry.ParseManifest(m.MediaType, m.Content); err == nil && len(parsed.Children) > 0 {
		targets = targets[:0]
		for _, c := range parsed.Children {
			targets = append(targets, c.Digest)
		}
	} else if err == nil && parsed.ArtifactType != "" && !isImage(parsed.ArtifactType) {
		return m, nil // artifacts (signatures, SBOMs, scan reports) are not scanned
	}
	for _, t := range targets {
		if err := g.judge(ctx, rule, repo, t); err != nil {
			return registry.StoredManifest{}, err
		}
	}
	return m, nil
}

func isImage(artifactType string) bool {
	return artifactType == "application/vnd.oci.image.config.v1+json" || artifactType == "application/vnd.docker.container.image.v1+json"
}

// judge returns the refusal of image d under rule, or nil.
func (g *Gate) judge(ctx context.Context, rule *policy.ScanRule, repo string, d digest.Digest) error {
	res, ok, err := g.Index.ScanOf(ctx, repo, d)
	if err != nil {
		return err
	}
	if !ok || res.Status != "done" {
		if !rule.RefuseUnscanned {
			return nil
		}
		state := "not scanned yet"
		if ok {
			state = "not scanned yet (" + res.Status + ")"
			if res.Error != "" {
				state += ": " + res.Error
			}
		}
		return registry.ErrDenied.WithMessage("pull refused by policy (line %d): %s@%s is %s, and unscanned images are refused here; run registry scan %s@%s",
			rule.Line, repo, d, state, repo, d)
	}
	if rule.BlockSeverity == "" {
		return nil
	}
	block, _ := ParseSeverity(rule.BlockSeverity)
	findings, err := g.Index.ScanFindings(ctx, repo, d)
	if err != nil {
		return err
	}
	var hits []string
	for _, f := range findings {
		if Severity(f.Severity).Rank() < block.Rank() || allowed(rule, f) {
			continue
		}
		hits = append(hits, fmt.Sprintf("%s %s in %s %s", f.ID, f.Severity, f.Package, f.Version))
	}
	if len(hits) == 0 {
		return nil
	}
	shown := hits[:min(len(hits), 3)]
	more := ""
	if len(hits) > 3 {
		more = fmt.Sprintf(" and %d more", len(hits)-3)
	}
	return registry.ErrDenied.WithMessage("pull refused by policy (line %d): %s@%s has %d findings at or above %s: %s%s; see registry scan --report %s@%s, or the manifest's referrers (artifactType %s)",
		rule.Line, repo, d, len(hits), block, strings.Join(shown, "; "), more, repo, d, ReportArtifactType).
		WithDetail(map[string]any{"findings": hits, "report": ReportArtifactType})
}

// allowed reports whether the rule's allow-list names the finding.
func allowed(rule *policy.ScanRule, f store.ScanFinding) bool {
	for _, name := range append([]string{f.ID}, f.Aliases...) {
		if slices.Contains(rule.Allow, name) {
			return true
		}
	}
	return false
}
