// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import "sync/atomic"

// Current is the policy a replica enforces, swapped whole on reload, so
// that a request sees one policy from start to end.
type Current struct{ p atomic.Pointer[Policy] }

// NewCurrent holds p (nil: no policy).
func NewCurrent(p *Policy) *Current {
	c := &Current{}
	c.Set(p)
	return c
}

// Get returns the policy in force; never nil.
func (c *Current) Get() *Policy {
	if c == nil {
		return &Policy{}
	}
	if p := c.p.Load(); p != nil {
		return p
	}
	return &Policy{}
}

// Set puts p in force.
func (c *Current) Set(p *Policy) { c.p.Store(p) }

// QuotasFor returns the quotas of repo under the policy in force.
func (c *Current) QuotasFor(repo string) []Quota { return c.Get().QuotasFor(repo) }
