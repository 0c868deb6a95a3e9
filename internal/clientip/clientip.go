// Package clientip finds the client's address, trusting forwarding headers only from configured proxies.
//
// Anyone can send X-Forwarded-For or CF-Connecting-IP, so those headers mean something only
// when the peer that sent them is a proxy we run or pay for (a Cloudflare Tunnel, an ingress
// controller). From any other peer they are ignored and the socket address is the client.
// Behind proxies, X-Forwarded-For is read from the right: each trusted proxy appended the
// address it saw, so the first untrusted address from the right is the last one a trusted proxy
// vouched for; everything left of it is whatever the client chose to send.
package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// maxEntryLen bounds one address in a header: "[" + the longest IPv6 text form + "]:65535",
// with room to spare. Longer entries are garbage and are not parsed at all.
const maxEntryLen = 64

// Resolver decides which address a request came from. It is immutable and safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting forwarding headers from peers in trusted: IP addresses
// ("10.0.0.7", "2001:db8::1") or CIDR prefixes ("10.0.0.0/8", "2001:db8::/32"). Host bits in a
// prefix are ignored ("10.1.2.3/8" means 10.0.0.0/8); IPv4-mapped IPv6 entries count as IPv4.
// An empty list trusts no one.
//
// Only trust a proxy that overwrites CF-Connecting-IP and appends to X-Forwarded-For: a valid
// CF-Connecting-IP from a trusted peer is taken as is.
func New(trusted []string) (*Resolver, error) {
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(trusted))}
	for i, s := range trusted {
		p, err := parseTrusted(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %d (%q): %w", i+1, s, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// parseTrusted reads one trusted entry as a prefix.
func parseTrusted(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("zones are not allowed")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("want an IP address or CIDR prefix: %w", err)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want an IP address or CIDR prefix: %w", err)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("IPv4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// trusts reports whether a is a configured proxy.
func (r *Resolver) trusts(a netip.Addr) bool {
	a = normalize(a)
	if !a.IsValid() {
		return false
	}
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address for a request from peer remote carrying the given
// CF-Connecting-IP and X-Forwarded-For values (several X-Forwarded-For header lines joined
// with ","). Every address returned is unmapped (IPv4-mapped IPv6 becomes IPv4) and has no zone.
//
//   - remote not trusted: remote; the headers are ignored.
//   - a valid CF-Connecting-IP: that address.
//   - otherwise X-Forwarded-For, from the right: trusted addresses are skipped and the first
//     untrusted one is the client. If the walk reaches an entry it cannot parse, or runs out of
//     entries because all were trusted, the last valid address it passed (the hop nearest to the
//     client that we can vouch for) is returned, or remote if there was none.
//
// Entries may carry spaces, a port ("1.2.3.4:5678", "[2001:db8::1]:80") or a zone ("fe80::1%eth0");
// the port and zone are dropped. The unspecified addresses (0.0.0.0, ::) count as garbage.
func (r *Resolver) ClientIP(remote netip.Addr, cfConnectingIP, xForwardedFor string) netip.Addr {
	remote = normalize(remote)
	if !r.trusts(remote) {
		return remote
	}
	if a, ok := parseEntry(cfConnectingIP); ok {
		return a
	}
	client := remote
	rest := xForwardedFor
	for rest != "" {
		var entry string
		if i := strings.LastIndexByte(rest, ','); i >= 0 {
			rest, entry = rest[:i], rest[i+1:]
		} else {
			rest, entry = "", rest
		}
		if strings.TrimSpace(entry) == "" {
			continue // "a,,b" or a trailing comma: no hop wrote this, skip it
		}
		a, ok := parseEntry(entry)
		if !ok {
			break
		}
		client = a
		if !r.trusts(a) {
			break
		}
	}
	return client
}

// parseEntry reads one address from a forwarding header: optional spaces around an IPv4 or IPv6
// address, optionally with a port ("1.2.3.4:80", "[::1]:80", "[::1]") and an IPv6 zone.
func parseEntry(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxEntryLen {
		return netip.Addr{}, false
	}
	host := s
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if tail := s[end+1:]; tail != "" && !validPort(tail) {
			return netip.Addr{}, false
		}
	case strings.Count(s, ":") == 1: // IPv4 with a port; IPv6 has at least two colons
		i := strings.IndexByte(s, ':')
		if !validPort(s[i:]) {
			return netip.Addr{}, false
		}
		host = s[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	a = normalize(a)
	if a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// validPort reports whether s is ":" and 1 to 5 digits.
func validPort(s string) bool {
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// normalize unmaps IPv4-mapped IPv6 addresses and drops any zone.
func normalize(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// Key returns the rate-limit key for a: an IPv4 address as is ("203.0.113.7"), an IPv6 address
// as its /64 ("2001:db8:1:2::/64"), since one IPv6 subscriber usually holds a whole /64 and
// could otherwise rotate addresses to dodge limits. IPv4-mapped IPv6 addresses count as IPv4.
// An invalid address gives "invalid IP", a key of its own.
func Key(a netip.Addr) string {
	a = normalize(a)
	if !a.Is6() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
