// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// ScanRule is a pull policy on scan results for the repositories
// matching a glob; the first rule matching a repository applies.
type ScanRule struct {
	Repositories Glob
	// BlockSeverity refuses pulls of images with findings at or above it
	// (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN); "" blocks nothing.
	BlockSeverity string
	// Allow lists vulnerability ids (or aliases, such as CVE ids) that
	// never block.
	Allow []string
	// RefuseUnscanned refuses pulls of images without a finished scan.
	RefuseUnscanned bool
	Line            int
}

// severityNames are the severities a rule may name.
var severityNames = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// ScanRuleFor returns the first scan rule matching repo.
func (p *Policy) ScanRuleFor(repo string) (*ScanRule, bool) {
	if p == nil {
		return nil, false
	}
	return firstMatch(p.Scanning, func(r *ScanRule) Glob { return r.Repositories }, repo)
}

func (d *decoder) scanRules(n *yaml.Node, at string) []ScanRule {
	var rs []ScanRule
	d.sequence(n, at, func(item *yaml.Node, key string) {
		r := ScanRule{Line: item.Line}
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"repositories": func(v *yaml.Node, k string) { r.Repositories = d.glob(v, k) },
			"blockSeverity": func(v *yaml.Node, k string) {
				s := strings.ToUpper(d.nonEmpty(v, k))
				for _, name := range severityNames {
					if s == name {
						r.BlockSeverity = s
						return
					}
				}
				if s != "" {
					d.fail(v, k, "%q is not a severity (%s)", s, strings.Join(severityNames, ", "))
				}
			},
			"allow": func(v *yaml.Node, k string) {
				d.sequence(v, k, func(a *yaml.Node, ak string) {
					if s := d.nonEmpty(a, ak); s != "" {
						r.Allow = append(r.Allow, s)
					}
				})
			},
			"unscanned": func(v *yaml.Node, k string) {
				switch s := d.nonEmpty(v, k); s {
				case "allow", "":
				case "refuse":
					r.RefuseUnscanned = true
				default:
					d.fail(v, k, "%q: write allow or refuse", s)
				}
			},
		})
		if item.Kind == yaml.MappingNode && !hasKey(item, "repositories") {
			d.fail(item, key, "needs repositories: a glob such as prod/**")
		}
		rs = append(rs, r)
	})
	return rs
}
