// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"net/netip"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.1.2.3", " 192.168.0.0/16 ", "", "2001:db8::/32", "::1", "172.16.5.9/12"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "10.1.2.4": false, // a bare address is one host
		"192.168.77.1": true, "192.169.0.1": false,
		"2001:db8:1::5": true, "2001:db9::1": false,
		"::1": true, "::2": false,
		"172.31.255.255": true, "172.32.0.0": false, // host bits of a CIDR are masked
		"::ffff:10.1.2.3": true, // IPv4-mapped is the IPv4 address
	} {
		if got := tp.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.256", "10.0.0.0/33", "example.com", "10.0.0.1-10.0.0.9", "fe80::1%eth0", "10.0.0.0/"} {
		if _, err := ParseTrustedProxies([]string{"127.0.0.1", bad}); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted it", bad)
		}
	}
	var none *TrustedProxies
	if !none.Empty() || none.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("nil TrustedProxies trusts someone")
	}
}

// TestTrustedProxiesClient walks X-Forwarded-For as a balancer writes it.
func TestTrustedProxiesClient(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/24", "2001:db8:ffff::/48"})
	if err != nil {
		t.Fatal(err)
	}
	const lb, lb2 = "10.0.0.1", "10.0.0.2"
	for _, c := range []struct {
		name, peer string
		xff        []string
		client     string
		viaProxy   bool
	}{
		{"no proxies in the way", "198.51.100.7", nil, "198.51.100.7", false},
		{"untrusted peer's header is ignored", "198.51.100.7", []string{"203.0.113.5"}, "198.51.100.7", false},
		{"untrusted peer claims a trusted hop", "198.51.100.7", []string{"10.0.0.9"}, "198.51.100.7", false},
		{"trusted peer names the client", lb, []string{"203.0.113.5"}, "203.0.113.5", true},
		{"spoofed left entries are ignored", lb, []string{"1.2.3.4, 5.6.7.8, 203.0.113.5"}, "203.0.113.5", true},
		{"spoofed header line before the proxy's", lb, []string{"1.2.3.4", "203.0.113.5"}, "203.0.113.5", true},
		{"spoofed trusted address on the left", lb, []string{"10.0.0.7, 203.0.113.5"}, "203.0.113.5", true},
		{"chain of trusted proxies", lb, []string{"1.2.3.4, 203.0.113.5, 10.0.0.3, " + lb2}, "203.0.113.5", true},
		{"all trusted: the leftmost", lb, []string{"10.0.0.5, " + lb2}, "10.0.0.5", true},
		{"trusted peer without the header", lb, nil, lb, true},
		{"empty header", lb, []string{""}, lb, true},
		{"garbage from the proxy", lb, []string{"1.2.3.4, not-an-ip"}, lb, true},
		{"garbage past the client is never read", lb, []string{"<script>, 203.0.113.5"}, "203.0.113.5", true},
		{"garbage in a trusted hop", lb, []string{"203.0.113.5, unknown, 10.0.0.3"}, lb, true},
		{"port on an entry", lb, []string{"203.0.113.5:4711"}, "203.0.113.5", true},
		{"IPv6 client", lb, []string{"2001:db8:1::42"}, "2001:db8:1::42", true},
		{"IPv6 client with port", lb, []string{"[2001:db8:1::42]:443"}, "2001:db8:1::42", true},
		{"IPv6 proxy chain", "2001:db8:ffff::1", []string{"2001:db8:1::42, 2001:db8:ffff::2"}, "2001:db8:1::42", true},
		{"IPv4-mapped peer and client", "::ffff:10.0.0.1", []string{"::ffff:203.0.113.5"}, "203.0.113.5", true},
		{"whitespace", lb, []string{"  203.0.113.5  ,   "}, lb, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, via := tp.Client(netip.MustParseAddr(c.peer), c.xff)
			if client.String() != c.client || via != c.viaProxy {
				t.Errorf("Client(%s, %q) = %s, %v; want %s, %v", c.peer, c.xff, client, via, c.client, c.viaProxy)
			}
		})
	}
}
