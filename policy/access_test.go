// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"strings"
	"testing"
)

const accessFile = `groups:
  devs: [alice, ci]
access:
  - repositories: "team-a/secret"
    pull: [alice]
  - repositories: "team-a/**"
    pull: [group:devs, authenticated]
    push: [group:devs]
    delete: [alice]
  - repositories: "public/**"
    pull: [anonymous]
webhooks:
  - url: https://hooks.example/a
    events: [push]
    repositories: "team-a/**"
  - url: http://127.0.0.1:9/b
`

// TestAllowed proves the first matching rule decides, with groups,
// "authenticated" and "anonymous", and that no rule means no access.
func TestAllowed(t *testing.T) {
	p := mustParse(t, accessFile)
	for _, c := range []struct {
		who, repo, action string
		want              bool
	}{
		{"alice", "team-a/secret", ActionPull, true},
		{"ci", "team-a/secret", ActionPull, false}, // the first rule decides
		{"ci", "team-a/app", ActionPush, true},     // through the group
		{"bob", "team-a/app", ActionPull, true},    // authenticated
		{"bob", "team-a/app", ActionPush, false},
		{"", "team-a/app", ActionPull, false}, // authenticated is not anonymous
		{"", "public/base", ActionPull, true},
		{"", "public/base", ActionPush, false},
		{"alice", "team-a/app", ActionDelete, true},
		{"ci", "team-a/app", ActionDelete, false},
		{"alice", "team-b/app", ActionPull, false}, // no rule
		{"alice", "team-a/app", "admin", false},
	} {
		if got := p.Allowed(Caller{Name: c.who}, c.repo, c.action); got != c.want {
			t.Errorf("%q %s %s: %v, want %v", c.who, c.action, c.repo, got, c.want)
		}
	}
}

// TestWebhooksFor proves webhooks filter by event and repository.
func TestWebhooksFor(t *testing.T) {
	p := mustParse(t, accessFile)
	for _, c := range []struct {
		event, repo string
		want        int
	}{{EventPush, "team-a/app", 2}, {EventDelete, "team-a/app", 1}, {EventPush, "other/app", 1}} {
		if got := len(p.WebhooksFor(c.event, c.repo)); got != c.want {
			t.Errorf("%s in %s: %d webhooks, want %d", c.event, c.repo, got, c.want)
		}
	}
}

// TestAccessRefusals proves bad access rules and webhooks are refused
// with their line and key.
func TestAccessRefusals(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"anonymous push", "access:\n  - repositories: a/**\n    push: [anonymous]\n", "line 2: access[0]: anonymous may only pull"},
		{"undefined group", "access:\n  - repositories: a/**\n    pull: [group:nobody]\n", `line 2: access[0]: group "nobody" is not defined`},
		{"bad principal", "access:\n  - repositories: a/**\n    pull: [\"al ice\"]\n", `line 3: access[0].pull[0]: "al ice" is not a principal`},
		{"no repositories", "access:\n  - pull: [alice]\n", "line 2: access[0]: needs repositories"},
		{"bad group name", "groups:\n  \"a b\": [alice]\n", `line 2: groups.a b: "a b" is not a group name`},
		{"webhook without url", "webhooks:\n  - events: [push]\n", "line 2: webhooks[0]: needs url"},
		{"webhook bad url", "webhooks:\n  - url: ftp://x/y\n", `line 2: webhooks[0].url: "ftp://x/y" is not an http or https URL`},
		{"webhook credentials", "webhooks:\n  - url: https://u:p@x/y\n", "line 2: webhooks[0].url: keep credentials out of the policy file"},
		{"webhook event", "webhooks:\n  - url: https://x/y\n    events: [scan]\n", `line 3: webhooks[0].events[0]: "scan" is not an event`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}
