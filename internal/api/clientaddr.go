package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr returns the address of the client that made r. It is the TCP peer, unless the peer
// is one of the trusted proxies: then X-Forwarded-For (every line of it, as one list) is walked
// from the right, past the trusted hops, and the first address not trusted is the client. Only
// the entries the trusted hops appended are believed, so a client cannot pick its address by
// sending the header itself, directly or through the proxy. An entry that is not an address
// stops the walk at the nearest hop vouched for; with every hop trusted, the farthest is the
// client. IPv4-mapped IPv6 addresses are their IPv4 form.
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return host
		}
		return r.RemoteAddr
	}
	client := peer
	if !isTrusted(peer, trusted) {
		return client.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, ok := parseAddr(strings.TrimSpace(entries[j]))
			if !ok {
				return client.String()
			}
			client = a
			if !isTrusted(a, trusted) {
				return client.String()
			}
		}
	}
	return client.String()
}

// parseAddr reads an IP address, with or without a port ("203.0.113.9", "[2001:db8::1]:443").
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is ClientAddr with the server's trusted proxies: every rate limit, consent record
// and anything else that needs the client's address reads it here.
func (s *Server) clientAddr(r *http.Request) string { return ClientAddr(r, s.TrustedProxies) }
