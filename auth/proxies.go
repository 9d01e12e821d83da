// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// TrustedProxies are the networks of the reverse proxies (load balancers)
// in front of the registry, whose X-Forwarded-For header names the real
// client. The zero value and nil trust nobody: the TCP peer is the client.
type TrustedProxies struct {
	nets []netip.Prefix
}

// ParseTrustedProxies parses CIDRs ("10.0.0.0/8", "2001:db8::/32") and
// bare addresses (one host: /32 or /128). An entry that is neither is an
// error naming it, so that a typo refuses to start instead of trusting
// less, or more, than the operator meant.
func ParseTrustedProxies(entries []string) (*TrustedProxies, error) {
	t := &TrustedProxies{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			t.nets = append(t.nets, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR", e)
		}
		a = a.Unmap()
		t.nets = append(t.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return t, nil
}

// Empty reports whether t trusts nobody.
func (t *TrustedProxies) Empty() bool { return t == nil || len(t.nets) == 0 }

// Contains reports whether a is the address of a trusted proxy.
func (t *TrustedProxies) Contains(a netip.Addr) bool {
	if t == nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client's address for a request from peer (the TCP
// peer) carrying the X-Forwarded-For values xff (every header line, in
// order), and whether peer is a trusted proxy.
//
// Only a trusted peer's header counts. It is read from the right: each
// proxy appends the address it got the request from, so the rightmost
// entries are the ones our own proxies wrote, while a client can put
// anything at the left. The first entry that is not a trusted proxy is
// the client; if every entry is one, the leftmost is. A malformed entry
// met on the way means a proxy we trust wrote something we cannot read:
// the peer stays the address, as without the header.
func (t *TrustedProxies) Client(peer netip.Addr, xff []string) (client netip.Addr, viaProxy bool) {
	peer = peer.Unmap().WithZone("")
	if !t.Contains(peer) {
		return peer, false
	}
	var entries []string
	for _, line := range xff {
		entries = append(entries, strings.Split(line, ",")...)
	}
	client = peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseForwardedAddr(entries[i])
		if !ok {
			return peer, true
		}
		client = a
		if !t.Contains(a) {
			break
		}
	}
	return client, true
}

// parseForwardedAddr reads one X-Forwarded-For entry: an IPv4 or IPv6
// address, possibly with a port as some proxies write it ("192.0.2.1:443",
// "[2001:db8::1]:443").
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

type proxyPeerKey struct{}

// WithProxyPeer returns ctx marking its request as forwarded by the
// trusted proxy at peer (its TCP peer): the request's forwarded headers
// were written by a proxy we trust.
func WithProxyPeer(ctx context.Context, peer string) context.Context {
	return context.WithValue(ctx, proxyPeerKey{}, peer)
}

// ProxyPeer returns the trusted proxy that forwarded the request of ctx,
// if one did.
func ProxyPeer(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(proxyPeerKey{}).(string)
	return p, ok
}
