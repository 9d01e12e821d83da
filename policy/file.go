// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ha-registry/ha-registry/registry"
)

// DefaultUntaggedGrace is how old an untagged manifest must be before
// retention's deleteUntagged removes it: a multi-platform push writes its
// images untagged and their index only afterwards.
const DefaultUntaggedGrace = 24 * time.Hour

// Policy is a validated policy file.
type Policy struct {
	// Quotas in file order.
	Quotas []Quota
	// Retention rules in file order; the first that matches a repository
	// is the one applied to it.
	Retention []Retention
	// Groups name lists of users and robots, for access rules.
	Groups map[string][]string
	// Access rules in file order; the first that matches a repository
	// decides who may use it, when authentication is on.
	Access []AccessRule
	// Webhooks are told of pushes and deletions.
	Webhooks []Webhook
	// Remotes are pull-through caches of upstream registries.
	Remotes []Remote
	// Virtual names read across other repositories, in order.
	Virtual []Virtual
	// Scanning rules refuse pulls of images with findings.
	Scanning []ScanRule
}

// Quota caps what the repositories under Match store. Limits below zero
// are not set.
type Quota struct {
	// Match is a namespace when it ends in "/" (every repository whose
	// name starts with it) and one repository's exact name otherwise.
	Match string
	// MaxBytes caps the unique bytes of the manifests stored under Match
	// and of the blobs they reference, each digest counted once.
	MaxBytes int64
	// MaxTags caps the number of tags under Match.
	MaxTags int64
	// Line is where the quota is written, for messages.
	Line int
}

// Covers reports whether repo is under the quota's match.
func (q Quota) Covers(repo string) bool {
	if q.IsNamespace() {
		return strings.HasPrefix(repo, q.Match)
	}
	return repo == q.Match
}

// IsNamespace reports whether the match is a name prefix.
func (q Quota) IsNamespace() bool { return strings.HasSuffix(q.Match, "/") }

// Retention says which tags of the repositories matching a glob are kept;
// the others are removed.
type Retention struct {
	Repositories Glob
	// KeepTags keeps a tag that any rule keeps. With no rules every tag is
	// kept, so that a rule can only remove untagged manifests.
	KeepTags []KeepRule
	// DeleteUntagged also removes the manifests no remaining tag reaches
	// (through an index or as a referrer), once older than UntaggedGrace.
	DeleteUntagged bool
	UntaggedGrace  time.Duration
	Line           int
}

// KeepRule is one keepTags entry; exactly one field is set.
type KeepRule struct {
	// Pattern keeps the tags whose name it matches.
	Pattern *regexp.Regexp
	// MostRecentlyPushed keeps the repository's N most recently pushed
	// tags.
	MostRecentlyPushed int
	// PulledWithin keeps a tag whose manifest was pulled this recently, or
	// whose pulls were never recorded.
	PulledWithin time.Duration
	// PushedWithin keeps a tag pushed (or moved) this recently.
	PushedWithin time.Duration
}

// String writes the rule as in the file.
func (k KeepRule) String() string {
	switch {
	case k.Pattern != nil:
		return fmt.Sprintf("pattern: %q", k.Pattern.String())
	case k.MostRecentlyPushed > 0:
		return fmt.Sprintf("mostRecentlyPushed: %d", k.MostRecentlyPushed)
	case k.PulledWithin > 0:
		return "pulledWithin: " + k.PulledWithin.String()
	default:
		return "pushedWithin: " + k.PushedWithin.String()
	}
}

// QuotasFor returns the quotas repo is bound by, namespace and exact
// alike: nested limits all hold.
func (p *Policy) QuotasFor(repo string) []Quota {
	if p == nil {
		return nil
	}
	var qs []Quota
	for _, q := range p.Quotas {
		if q.Covers(repo) {
			qs = append(qs, q)
		}
	}
	return qs
}

// RetentionFor returns the first retention rule matching repo.
func (p *Policy) RetentionFor(repo string) (*Retention, bool) {
	if p == nil {
		return nil, false
	}
	return firstMatch(p.Retention, func(r *Retention) Glob { return r.Repositories }, repo)
}

// firstMatch returns the first of rules whose glob matches repo: the
// file's order decides, as in a firewall.
func firstMatch[T any](rules []T, glob func(*T) Glob, repo string) (*T, bool) {
	for i := range rules {
		if glob(&rules[i]).Match(repo) {
			return &rules[i], true
		}
	}
	return nil, false
}

// Load reads and validates the policy file at path.
func Load(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("policy file %s refused:\n%w", path, err)
	}
	return p, nil
}

// FieldError is one thing wrong with a policy file: where, and what.
type FieldError struct {
	Line int
	// Key is the path of the offending key, like quotas[0].maxBytes.
	Key string
	Msg string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
}

// Parse validates a policy file's content. The error joins a [FieldError]
// for every problem found, so one edit can fix them all.
func Parse(content []byte) (*Policy, error) {
	d := &decoder{}
	p := &Policy{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(content))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return p, nil // an empty file: no policy
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, &FieldError{Line: more.Line, Msg: "a second YAML document; the policy is one document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return p, nil
	}
	d.mapping(root, "", map[string]func(*yaml.Node, string){
		"quotas":    func(n *yaml.Node, key string) { p.Quotas = d.quotas(n, key) },
		"retention": func(n *yaml.Node, key string) { p.Retention = d.retentions(n, key) },
		"groups":    func(n *yaml.Node, key string) { p.Groups = d.groups(n, key) },
		"access":    func(n *yaml.Node, key string) { p.Access = d.accessRules(n, key) },
		"webhooks":  func(n *yaml.Node, key string) { p.Webhooks = d.webhooks(n, key) },
		"remotes":   func(n *yaml.Node, key string) { p.Remotes = d.remotes(n, key) },
		"virtual":   func(n *yaml.Node, key string) { p.Virtual = d.virtuals(n, key) },
		"scanning":  func(n *yaml.Node, key string) { p.Scanning = d.scanRules(n, key) },
	})
	d.checkGroups(p)
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return p, nil
}

// decoder walks the YAML nodes, collecting every error with its line.
type decoder struct{ errs []error }

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// mapping calls each field's function for the keys present and reports
// unknown and repeated keys.
func (d *decoder) mapping(n *yaml.Node, at string, fields map[string]func(*yaml.Node, string)) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, at, "must be a mapping of keys to values")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := join(at, k.Value)
		f, ok := fields[k.Value]
		switch {
		case !ok:
			d.fail(k, key, "unknown key (known here: %s)", knownKeys(fields))
		case seen[k.Value]:
			d.fail(k, key, "key given twice")
		default:
			seen[k.Value] = true
			f(v, key)
		}
	}
}

func knownKeys(fields map[string]func(*yaml.Node, string)) string {
	var ks []string
	for k := range fields {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ", ")
}

// sequence calls item for each element of a sequence.
func (d *decoder) sequence(n *yaml.Node, at string, item func(*yaml.Node, string)) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, at, "must be a list")
		return
	}
	for i, c := range n.Content {
		item(c, fmt.Sprintf("%s[%d]", at, i))
	}
}

func (d *decoder) scalar(n *yaml.Node, at string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, at, "must be a single value")
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, at string) string {
	s, ok := d.scalar(n, at)
	if ok && n.Tag != "!!str" {
		d.fail(n, at, "must be a string; quote it")
		return ""
	}
	return s
}

// nonEmpty is str that also refuses "": an empty glob, pattern or match
// would silently match nothing, or everything.
func (d *decoder) nonEmpty(n *yaml.Node, at string) string {
	s := d.str(n, at)
	if s == "" && n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		d.fail(n, at, "must not be empty")
	}
	return s
}

func (d *decoder) boolean(n *yaml.Node, at string) bool {
	s, ok := d.scalar(n, at)
	if !ok {
		return false
	}
	if n.Tag != "!!bool" {
		d.fail(n, at, "must be true or false, not %q", s)
		return false
	}
	return s == "true" || s == "True" || s == "TRUE"
}

func (d *decoder) count(n *yaml.Node, at string, min int64) int64 {
	s, ok := d.scalar(n, at)
	if !ok {
		return -1
	}
	var v int64
	if n.Tag != "!!int" || n.Decode(&v) != nil {
		d.fail(n, at, "must be a whole number, not %q", s)
		return -1
	}
	if v < min {
		d.fail(n, at, "must be at least %d, not %d", min, v)
		return -1
	}
	return v
}

func (d *decoder) size(n *yaml.Node, at string) int64 {
	s, ok := d.scalar(n, at)
	if !ok {
		return -1
	}
	v, err := ParseSize(s)
	if err != nil {
		d.fail(n, at, "%v", err)
		return -1
	}
	return v
}

func (d *decoder) duration(n *yaml.Node, at string) time.Duration {
	s, ok := d.scalar(n, at)
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail(n, at, "%q is not a duration (write e.g. 720h, 90m)", s)
		return 0
	}
	if v <= 0 {
		d.fail(n, at, "must be above zero, not %s", s)
		return 0
	}
	return v
}

func (d *decoder) quotas(n *yaml.Node, at string) []Quota {
	var qs []Quota
	seen := map[string]int{}
	d.sequence(n, at, func(item *yaml.Node, key string) {
		q := Quota{MaxBytes: -1, MaxTags: -1, Line: item.Line}
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"match":    func(v *yaml.Node, k string) { q.Match = d.match(v, k) },
			"maxBytes": func(v *yaml.Node, k string) { q.MaxBytes = d.size(v, k) },
			"maxTags":  func(v *yaml.Node, k string) { q.MaxTags = d.count(v, k, 0) },
		})
		if item.Kind != yaml.MappingNode {
			return
		}
		if !hasKey(item, "match") {
			d.fail(item, key, "needs match: a namespace ending in / or a repository name")
		}
		if !hasKey(item, "maxBytes") && !hasKey(item, "maxTags") {
			d.fail(item, key, "sets no limit: give maxBytes, maxTags or both")
		}
		if q.Match != "" {
			if line, dup := seen[q.Match]; dup {
				d.fail(item, key+".match", "%q already has a quota at line %d; give each match one entry", q.Match, line)
			}
			seen[q.Match] = item.Line
		}
		qs = append(qs, q)
	})
	return qs
}

// match validates a quota's match: a valid repository name, or one
// followed by "/" for a namespace.
func (d *decoder) match(n *yaml.Node, at string) string {
	s := d.nonEmpty(n, at)
	if s == "" {
		return ""
	}
	if registry.ValidateName(strings.TrimSuffix(s, "/")) != nil {
		d.fail(n, at, "%q is neither a repository name nor a namespace (a name followed by /)", s)
		return ""
	}
	return s
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func (d *decoder) retentions(n *yaml.Node, at string) []Retention {
	var rs []Retention
	d.sequence(n, at, func(item *yaml.Node, key string) {
		r := Retention{UntaggedGrace: DefaultUntaggedGrace, Line: item.Line}
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"repositories":   func(v *yaml.Node, k string) { r.Repositories = d.glob(v, k) },
			"keepTags":       func(v *yaml.Node, k string) { r.KeepTags = d.keepRules(v, k) },
			"deleteUntagged": func(v *yaml.Node, k string) { r.DeleteUntagged = d.boolean(v, k) },
			"untaggedGrace":  func(v *yaml.Node, k string) { r.UntaggedGrace = d.duration(v, k) },
		})
		if item.Kind == yaml.MappingNode && !hasKey(item, "repositories") {
			d.fail(item, key, "needs repositories: a glob such as team-a/**")
		}
		rs = append(rs, r)
	})
	return rs
}

func (d *decoder) keepRules(n *yaml.Node, at string) []KeepRule {
	var ks []KeepRule
	d.sequence(n, at, func(item *yaml.Node, key string) {
		if item.Kind == yaml.MappingNode && len(item.Content) != 2 {
			d.fail(item, key, "give exactly one rule per list entry (pattern, mostRecentlyPushed, pulledWithin or pushedWithin)")
			return
		}
		var k KeepRule
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"pattern": func(v *yaml.Node, at string) {
				s := d.nonEmpty(v, at)
				if s == "" {
					return
				}
				re, err := regexp.Compile(s)
				if err != nil {
					d.fail(v, at, "not a regular expression: %v", err)
					return
				}
				k.Pattern = re
			},
			"mostRecentlyPushed": func(v *yaml.Node, at string) { k.MostRecentlyPushed = int(max(d.count(v, at, 1), 0)) },
			"pulledWithin":       func(v *yaml.Node, at string) { k.PulledWithin = d.duration(v, at) },
			"pushedWithin":       func(v *yaml.Node, at string) { k.PushedWithin = d.duration(v, at) },
		})
		if k != (KeepRule{}) {
			ks = append(ks, k)
		}
	})
	return ks
}
