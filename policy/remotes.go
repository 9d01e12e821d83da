// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ha-registry/ha-registry/registry"
)

// DefaultTagRecheck is how long a pulled-through tag is served from the
// cache before upstream is asked (with a HEAD) whether it moved.
const DefaultTagRecheck = 5 * time.Minute

// Remote is a pull-through cache: the repositories under Prefix are
// pulled from an upstream registry on first use and kept.
type Remote struct {
	// Prefix is the local namespace, ending in "/": dockerhub/nginx is
	// upstream's nginx (library/nginx with Library).
	Prefix string
	// URL is the upstream registry's base URL.
	URL string
	// Library maps one-component names to library/NAME, as Docker Hub
	// keeps its official images.
	Library bool
	// CredentialsEnv names an environment variable holding
	// "user:password" for upstream; credentials never sit in this file.
	CredentialsEnv string
	// TagRecheck is how long a tag is served without asking upstream.
	TagRecheck time.Duration
	Line       int
}

// Virtual is a name that reads, in order, across other repositories.
type Virtual struct {
	// Name is one repository, or a namespace when it ends in "/".
	Name string
	// Sources are read in order: repositories for a repository name,
	// namespaces (ending in "/") for a namespace, local or remote.
	Sources []string
	Line    int
}

// RemoteFor returns the remote whose prefix repo is under.
func (p *Policy) RemoteFor(repo string) (*Remote, bool) {
	if p == nil {
		return nil, false
	}
	for i := range p.Remotes {
		if strings.HasPrefix(repo, p.Remotes[i].Prefix) {
			return &p.Remotes[i], true
		}
	}
	return nil, false
}

// Resolve returns the repositories a virtual name reads, in order, or
// false when repo is not virtual.
func (p *Policy) Resolve(repo string) ([]string, bool) {
	if p == nil {
		return nil, false
	}
	for _, v := range p.Virtual {
		if strings.HasSuffix(v.Name, "/") {
			rest, ok := strings.CutPrefix(repo, v.Name)
			if !ok || rest == "" {
				continue
			}
			var out []string
			for _, s := range v.Sources {
				out = append(out, s+rest)
			}
			return out, true
		}
		if repo == v.Name {
			return v.Sources, true
		}
	}
	return nil, false
}

func (d *decoder) remotes(n *yaml.Node, at string) []Remote {
	var rs []Remote
	d.sequence(n, at, func(item *yaml.Node, key string) {
		r := Remote{TagRecheck: DefaultTagRecheck, Line: item.Line}
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"prefix": func(v *yaml.Node, k string) { r.Prefix = d.namespace(v, k) },
			"url": func(v *yaml.Node, k string) {
				r.URL = strings.TrimSuffix(d.httpURL(v, k, ": use credentialsEnv"), "/")
			},
			"library":        func(v *yaml.Node, k string) { r.Library = d.boolean(v, k) },
			"credentialsEnv": func(v *yaml.Node, k string) { r.CredentialsEnv = d.nonEmpty(v, k) },
			"tagRecheck":     func(v *yaml.Node, k string) { r.TagRecheck = d.duration(v, k) },
		})
		if item.Kind == yaml.MappingNode {
			for _, need := range []string{"prefix", "url"} {
				if !hasKey(item, need) {
					d.fail(item, key, "needs %s", need)
				}
			}
		}
		rs = append(rs, r)
	})
	for i, a := range rs {
		for _, b := range rs[i+1:] {
			if a.Prefix != "" && b.Prefix != "" && (strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix)) {
				d.fail(n, at, "remotes %q (line %d) and %q (line %d) overlap; give each its own namespace", a.Prefix, a.Line, b.Prefix, b.Line)
			}
		}
	}
	return rs
}

// namespace reads a name prefix: a valid repository name followed by "/".
func (d *decoder) namespace(n *yaml.Node, at string) string {
	s := d.nonEmpty(n, at)
	if s == "" {
		return ""
	}
	if !strings.HasSuffix(s, "/") || registry.ValidateName(strings.TrimSuffix(s, "/")) != nil {
		d.fail(n, at, "%q is not a namespace (a repository name followed by /)", s)
		return ""
	}
	return s
}

func (d *decoder) virtuals(n *yaml.Node, at string) []Virtual {
	var vs []Virtual
	d.sequence(n, at, func(item *yaml.Node, key string) {
		v := Virtual{Line: item.Line}
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"name": func(x *yaml.Node, k string) { v.Name = d.match(x, k) },
			"sources": func(x *yaml.Node, k string) {
				d.sequence(x, k, func(s *yaml.Node, sk string) {
					if src := d.match(s, sk); src != "" {
						v.Sources = append(v.Sources, src)
					}
				})
			},
		})
		if item.Kind != yaml.MappingNode {
			return
		}
		if !hasKey(item, "name") || len(v.Sources) == 0 {
			d.fail(item, key, "needs a name and at least one source")
		}
		for _, s := range v.Sources {
			if strings.HasSuffix(s, "/") != strings.HasSuffix(v.Name, "/") {
				d.fail(item, key, "%q: a namespace reads namespaces and a repository reads repositories", s)
			}
		}
		vs = append(vs, v)
	})
	return vs
}
