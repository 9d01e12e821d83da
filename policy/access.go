// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The actions an access rule grants.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
)

// The principals every rule may name besides users, robots and groups.
const (
	// Anonymous is everyone, with or without credentials.
	Anonymous = "anonymous"
	// Authenticated is every user and robot that logged in.
	Authenticated = "authenticated"
	// groupPrefix names a group of the file's groups.
	groupPrefix = "group:"
)

// AccessRule says who may pull, push and delete in the repositories
// matching a glob. The first rule matching a repository decides; a
// repository no rule matches is closed to everyone.
type AccessRule struct {
	Repositories Glob
	// Pull, Push and Delete list principals: a user or robot name,
	// "group:NAME", "authenticated" or "anonymous".
	Pull, Push, Delete []string
	Line               int
}

// Caller is who makes a request, for access decisions.
type Caller struct {
	// Name is the user or robot; "" for an anonymous caller.
	Name string
}

// AccessFor returns the first access rule matching repo.
func (p *Policy) AccessFor(repo string) (*AccessRule, bool) {
	if p == nil {
		return nil, false
	}
	return firstMatch(p.Access, func(r *AccessRule) Glob { return r.Repositories }, repo)
}

// Allowed reports whether c may take action on repo.
func (p *Policy) Allowed(c Caller, repo, action string) bool {
	r, ok := p.AccessFor(repo)
	if !ok {
		return false
	}
	var who []string
	switch action {
	case ActionPull:
		who = r.Pull
	case ActionPush:
		who = r.Push
	case ActionDelete:
		who = r.Delete
	default:
		return false
	}
	for _, w := range who {
		switch {
		case w == Anonymous:
			return true
		case c.Name == "":
		case w == Authenticated || w == c.Name:
			return true
		case strings.HasPrefix(w, groupPrefix) && slices.Contains(p.Groups[strings.TrimPrefix(w, groupPrefix)], c.Name):
			return true
		}
	}
	return false
}

// principalRE is what a user, robot or group name may be: what htpasswd
// and Basic credentials can carry, without a colon or spaces.
var principalRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@$+-]*$`)

func (d *decoder) groups(n *yaml.Node, at string) map[string][]string {
	gs := map[string][]string{}
	if n.Kind != yaml.MappingNode {
		d.fail(n, at, "must map group names to lists of users and robots")
		return gs
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := join(at, k.Value)
		if !principalRE.MatchString(k.Value) {
			d.fail(k, key, "%q is not a group name (letters, digits, . _ @ $ + -)", k.Value)
			continue
		}
		if _, dup := gs[k.Value]; dup {
			d.fail(k, key, "group defined twice")
			continue
		}
		var members []string
		d.sequence(v, key, func(m *yaml.Node, mk string) {
			if s := d.nonEmpty(m, mk); s != "" {
				if !principalRE.MatchString(s) {
					d.fail(m, mk, "%q is not a user or robot name", s)
					return
				}
				members = append(members, s)
			}
		})
		gs[k.Value] = members
	}
	return gs
}

func (d *decoder) accessRules(n *yaml.Node, at string) []AccessRule {
	var rs []AccessRule
	d.sequence(n, at, func(item *yaml.Node, key string) {
		r := AccessRule{Line: item.Line}
		principals := func(dst *[]string) func(*yaml.Node, string) {
			return func(v *yaml.Node, k string) {
				d.sequence(v, k, func(m *yaml.Node, mk string) {
					s := d.nonEmpty(m, mk)
					name := strings.TrimPrefix(s, groupPrefix)
					if s != "" && !principalRE.MatchString(name) {
						d.fail(m, mk, "%q is not a principal (a user or robot, group:NAME, authenticated or anonymous)", s)
						return
					}
					if s != "" {
						*dst = append(*dst, s)
					}
				})
			}
		}
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"repositories": func(v *yaml.Node, k string) { r.Repositories = d.glob(v, k) },
			"pull":         principals(&r.Pull),
			"push":         principals(&r.Push),
			"delete":       principals(&r.Delete),
		})
		if item.Kind == yaml.MappingNode && !hasKey(item, "repositories") {
			d.fail(item, key, "needs repositories: a glob such as team-a/**")
		}
		for _, w := range slices.Concat(r.Push, r.Delete) {
			if w == Anonymous {
				d.fail(item, key, "anonymous may only pull; push and delete need a user, robot or group")
				break
			}
		}
		rs = append(rs, r)
	})
	return rs
}

// checkGroups reports groups that rules name but the file does not define.
func (d *decoder) checkGroups(p *Policy) {
	for i, r := range p.Access {
		for _, w := range slices.Concat(r.Pull, r.Push, r.Delete) {
			g, ok := strings.CutPrefix(w, groupPrefix)
			if _, defined := p.Groups[g]; ok && !defined {
				d.errs = append(d.errs, &FieldError{Line: r.Line, Key: fmt.Sprintf("access[%d]", i),
					Msg: fmt.Sprintf("group %q is not defined under groups", g)})
			}
		}
	}
}
