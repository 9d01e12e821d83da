// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package scan

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

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
type Gate struct {
	registry.Store
	Index  *store.Store
	Policy func() *policy.Policy
}

var _ registry.BlobRedirector = (*Gate)(nil)

// BlobURL passes the inner store's redirects through.
func (g *Gate) BlobURL(ctx context.Context, repo string, d digest.Digest) (string, bool, error) {
	if r, ok := g.Store.(registry.BlobRedirector); ok {
		return r.BlobURL(ctx, repo, d)
	}
	return "", false, nil
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
