// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"net/http"
	"net/netip"

	"github.com/ha-registry/ha-registry/auth"
)

// resolveClient returns r with RemoteAddr set to the real client's
// address when r came from a trusted proxy, so that everything after it
// (the login throttle through auth.ClientAddr, the audit log, the request
// log) sees the client, not the proxy. The context then names the proxy
// ([auth.ProxyPeer]), which also lets the gate trust its forwarded host
// and scheme. From any other peer, X-Forwarded-For is ignored.
func (s *Server) resolveClient(r *http.Request) *http.Request {
	if s.proxies.Empty() {
		return r
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r
	}
	client, viaProxy := s.proxies.Client(peer.Addr(), r.Header.Values("X-Forwarded-For"))
	if !viaProxy {
		return r
	}
	r = r.WithContext(auth.WithProxyPeer(r.Context(), r.RemoteAddr))
	if client != peer.Addr().Unmap() {
		// The client's port is the proxy's secret; 0 keeps the
		// host:port form that auth.ClientAddr and log readers expect.
		r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
	}
	return r
}
