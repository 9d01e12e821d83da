// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Glob matches repository names: "*" stands for any characters within
// one path component, "**" for any characters across components
// (team-a/** matches team-a/app and team-a/tools/lint, not team-a), "?"
// for one character other than "/". Everything else matches itself.
type Glob struct {
	pattern string
	re      *regexp.Regexp
}

// ParseGlob compiles a repository glob.
func ParseGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, fmt.Errorf("empty repository glob")
	}
	var b strings.Builder
	b.WriteString("^")
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; c {
		case '*':
			if i+1 < len(rs) && rs[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return Glob{}, fmt.Errorf("repository glob %q: %w", pattern, err)
	}
	return Glob{pattern: pattern, re: re}, nil
}

// Match reports whether repo matches the glob.
func (g Glob) Match(repo string) bool { return g.re != nil && g.re.MatchString(repo) }

// String returns the glob as written.
func (g Glob) String() string { return g.pattern }

// glob reads a repository glob of the policy file.
func (d *decoder) glob(n *yaml.Node, at string) Glob {
	s := d.nonEmpty(n, at)
	if s == "" {
		return Glob{}
	}
	g, err := ParseGlob(s)
	if err != nil {
		d.fail(n, at, "%v", err)
	}
	return g
}
