package netguard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trust names the proxies whose word on a client's address is taken
// (ROOMSTREAM_TRUSTED_PROXIES). The zero value trusts no one: every
// request's client is its peer.
type Trust struct {
	prefixes []netip.Prefix
}

// ParseTrust reads a list of CIDRs ("10.0.0.0/8", "2001:db8::/32") or
// single addresses; empty entries are skipped.
func ParseTrust(cidrs []string) (Trust, error) {
	var t Trust
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return Trust{}, fmt.Errorf("%q is neither a CIDR nor an address", s)
			}
			a = a.Unmap()
			t.prefixes = append(t.prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Trust{}, fmt.Errorf("%q is not a CIDR: %v", s, err)
		}
		if p.Addr().Is4In6() {
			// ::ffff:10.0.0.0/104 is 10.0.0.0/8: addresses are compared
			// unmapped.
			if p.Bits() < 96 {
				return Trust{}, fmt.Errorf("%q: an IPv4-mapped prefix must be at least /96", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		t.prefixes = append(t.prefixes, p.Masked())
	}
	return t, nil
}

// Empty tells whether no proxy is trusted.
func (t Trust) Empty() bool { return len(t.prefixes) == 0 }

// Trusted tells whether a is one of the trusted proxies.
func (t Trust) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address of the client that sent r: its peer, unless
// the peer is a trusted proxy, in which case it is the right-most address
// of X-Forwarded-For that is not itself a trusted proxy (each proxy
// appends the address it received the request from, so everything left
// of the last untrusted one may be the client's own invention). A
// connection that came through the PROXY protocol has the client's
// address as its peer already (Guard's listener). An X-Forwarded-For
// entry that is not an address ends the walk at the proxy that passed it
// on.
func (t Trust) ClientAddr(r *http.Request) netip.Addr {
	peer := remoteAddr(r.RemoteAddr)
	if !peer.IsValid() || !t.Trusted(peer) {
		return peer
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a := hopAddr(hops[j])
			if !a.IsValid() {
				return client
			}
			client = a
			if !t.Trusted(a) {
				return a
			}
		}
	}
	return client
}

// ClientKey is Key(ClientAddr(r)): the key of every per-address limit.
func (t Trust) ClientKey(r *http.Request) string { return Key(t.ClientAddr(r)) }

// Key is the key an address is limited by: the address itself for IPv4,
// its /64 for IPv6, since one IPv6 host is routinely given a whole /64
// and could otherwise walk past every per-address limit.
func Key(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return ""
	case a.Is4():
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// remoteAddr parses a peer address as net/http writes it (host:port).
func remoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// addrOf is the IP address of a net.Addr (invalid for other kinds).
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	return remoteAddr(a.String())
}

// hopAddr parses one X-Forwarded-For entry: an address, possibly with a
// port or in brackets, as proxies write them.
func hopAddr(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if a := remoteAddr(s); a.IsValid() {
		return a
	}
	return remoteAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
}
