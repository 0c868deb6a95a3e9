// Package clientip finds the client's address, trusting a forwarding header only from configured proxies.
//
// Anyone can send X-Forwarded-For or CF-Connecting-IP, so those headers mean something only
// when the peer that sent them is a proxy we run or pay for (a Cloudflare Tunnel, an ingress
// controller). From any other peer they are ignored and the socket address is the client.
// Even from a trusted proxy only ONE header is read, the one the operator names: a proxy that
// appends X-Forwarded-For correctly usually passes a client's CF-Connecting-IP through
// untouched, so believing both would let a client pick its own address.
//
// X-Forwarded-For (the default) is read from the right: each trusted proxy appended the
// address it saw, so the first untrusted address from the right is the last one a trusted proxy
// vouched for; everything left of it is whatever the client chose to send. Any other header
// (CF-Connecting-IP, X-Real-IP, …) must hold exactly one IP address, which the proxy in front
// is trusted to have overwritten.
package clientip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// XForwardedFor is the default header: a list of hops, read from the right.
const XForwardedFor = "X-Forwarded-For"

// maxEntryLen bounds one address in a header: "[" + the longest IPv6 text form + "]:65535",
// with room to spare. Longer entries are garbage and are not parsed at all.
const maxEntryLen = 64

// Resolver decides which address a request came from. It is immutable and safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
	header  string // the one header believed from trusted peers
	list    bool   // header is X-Forwarded-For: a list read from the right
}

// New returns a Resolver believing header (X-Forwarded-For when empty; see CheckHeader) from
// peers in trusted: IP addresses ("10.0.0.7", "2001:db8::1") or CIDR prefixes ("10.0.0.0/8",
// "2001:db8::/32"). Host bits in a prefix are ignored ("10.1.2.3/8" means 10.0.0.0/8);
// IPv4-mapped IPv6 entries count as IPv4. An empty list trusts no one.
//
// Only trust a proxy that appends to X-Forwarded-For (for that header) or overwrites the named
// single-address header (for any other): a valid single address from a trusted peer is taken
// as is.
func New(trusted []string, header string) (*Resolver, error) {
	if header == "" {
		header = XForwardedFor
	}
	if err := CheckHeader(header); err != nil {
		return nil, err
	}
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(trusted)), header: header,
		list: strings.EqualFold(header, XForwardedFor)}
	for i, s := range trusted {
		p, err := parseTrusted(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %d (%q): %w", i+1, s, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// CheckHeader reports whether name can be the client IP header: an HTTP field name (letters,
// digits and !#$%&'*+-.^_`|~, at most 64 characters) other than Forwarded (RFC 7239's
// list of for=… pairs, which is not supported) or a header HTTP itself uses.
func CheckHeader(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("client IP header must be a header name of 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("client IP header %q is not a valid header name", name)
		}
	}
	for _, reserved := range []string{"Forwarded", "Host", "Connection", "Upgrade", "Content-Length", "Transfer-Encoding", "Authorization", "Cookie", "Origin"} {
		if strings.EqualFold(name, reserved) {
			return fmt.Errorf("client IP header %q does not hold a client address: use X-Forwarded-For or a header holding one IP (CF-Connecting-IP, X-Real-IP)", name)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP field name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Header returns the one header this Resolver believes from trusted proxies.
func (r *Resolver) Header() string { return r.header }

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

// ClientIP returns the client's address for a request from peer remote. values returns every
// line of a request header, by name (case-insensitive); ClientIP asks it for Header() only, and
// only when remote is trusted. Every address returned is unmapped (IPv4-mapped IPv6 becomes
// IPv4) and has no zone.
//
//   - remote not trusted: remote; no header is read.
//   - header X-Forwarded-For (its lines joined with ","), from the right: trusted addresses are
//     skipped and the first untrusted one is the client. If the walk reaches an entry it cannot
//     parse, or runs out of entries because all were trusted, the last valid address it passed
//     (the hop nearest to the client that we can vouch for) is returned, or remote if there was
//     none. Entries may carry spaces, a port ("1.2.3.4:5678", "[2001:db8::1]:80") or a zone
//     ("fe80::1%eth0"); the port and zone are dropped.
//   - any other header: exactly one line holding one IP address (spaces around it allowed, no
//     port, no zone), which is the client; anything else (absent, repeated, garbage): remote.
//
// The unspecified addresses (0.0.0.0, ::) count as garbage.
func (r *Resolver) ClientIP(remote netip.Addr, values func(name string) []string) netip.Addr {
	remote = normalize(remote)
	if !r.trusts(remote) {
		return remote
	}
	lines := values(r.header)
	if !r.list {
		if len(lines) != 1 {
			return remote
		}
		if a, ok := parseSingle(lines[0]); ok {
			return a
		}
		return remote
	}
	return r.fromList(remote, strings.Join(lines, ","))
}

// fromList walks an X-Forwarded-For value from the right (see ClientIP).
func (r *Resolver) fromList(remote netip.Addr, xForwardedFor string) netip.Addr {
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

// parseSingle reads the one address of a single-address header: an IPv4 or IPv6 address with
// optional spaces around it, nothing else.
func parseSingle(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxEntryLen {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	a = normalize(a)
	if a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
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
