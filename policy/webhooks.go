// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"net/url"
	"slices"

	"go.yaml.in/yaml/v3"
)

// The events a webhook can ask for.
const (
	EventPush   = "push"
	EventDelete = "delete"
)

// Webhook is an HTTP endpoint told of pushes and deletions, as
// CloudEvents, from the outbox.
type Webhook struct {
	URL string
	// Events are the kinds sent; all when empty.
	Events []string
	// Repositories limits the events to matching repositories; all when
	// not set.
	Repositories Glob
	Line         int
}

// Wants reports whether the webhook is sent event for repo.
func (w Webhook) Wants(event, repo string) bool {
	if len(w.Events) > 0 && !slices.Contains(w.Events, event) {
		return false
	}
	return w.Repositories.String() == "" || w.Repositories.Match(repo)
}

// WebhooksFor returns the webhooks wanting event for repo.
func (p *Policy) WebhooksFor(event, repo string) []Webhook {
	if p == nil {
		return nil
	}
	var ws []Webhook
	for _, w := range p.Webhooks {
		if w.Wants(event, repo) {
			ws = append(ws, w)
		}
	}
	return ws
}

func (d *decoder) webhooks(n *yaml.Node, at string) []Webhook {
	var ws []Webhook
	d.sequence(n, at, func(item *yaml.Node, key string) {
		w := Webhook{Line: item.Line}
		d.mapping(item, key, map[string]func(*yaml.Node, string){
			"url": func(v *yaml.Node, k string) { w.URL = d.httpURL(v, k, "") },
			"events": func(v *yaml.Node, k string) {
				d.sequence(v, k, func(e *yaml.Node, ek string) {
					s := d.nonEmpty(e, ek)
					if s != "" && s != EventPush && s != EventDelete {
						d.fail(e, ek, "%q is not an event (push or delete)", s)
						return
					}
					if s != "" {
						w.Events = append(w.Events, s)
					}
				})
			},
			"repositories": func(v *yaml.Node, k string) { w.Repositories = d.glob(v, k) },
		})
		if item.Kind == yaml.MappingNode && !hasKey(item, "url") {
			d.fail(item, key, "needs url")
		}
		ws = append(ws, w)
	})
	return ws
}

// httpURL reads an http or https URL without credentials in it (the file
// may be world-readable); hint says where credentials go instead.
func (d *decoder) httpURL(n *yaml.Node, at, hint string) string {
	s := d.nonEmpty(n, at)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.fail(n, at, "%q is not an http or https URL", s)
		return ""
	}
	if u.User != nil {
		d.fail(n, at, "keep credentials out of the policy file%s", hint)
		return ""
	}
	return s
}
