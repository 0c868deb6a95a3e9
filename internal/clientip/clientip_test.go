package clientip

import (
	"cmp"
	"net/netip"
	"strings"
	"testing"
)

// testTrusted is a typical setup: a Cloudflare range, an in-cluster ingress range, one IPv6
// proxy and a single IPv4 address.
var testTrusted = []string{"173.245.48.0/20", "10.0.0.0/8", "2001:db8:cf::/48", "192.0.2.1"}

// newResolver returns a Resolver believing X-Forwarded-For from trusted, or fails the test.
func newResolver(tb testing.TB, trusted ...string) *Resolver {
	tb.Helper()
	return newResolverFor(tb, XForwardedFor, trusted...)
}

// newResolverFor returns a Resolver believing header from trusted, or fails the test.
func newResolverFor(tb testing.TB, header string, trusted ...string) *Resolver {
	tb.Helper()
	r, err := New(trusted, header)
	if err != nil {
		tb.Fatalf("New(%q, %q): %v", trusted, header, err)
	}
	return r
}

// request is a request's headers as ClientIP reads them: every line of a header, by name
// (case-insensitive). It records which names were asked for.
type request struct {
	lines map[string][]string
	asked []string
}

// newRequest builds a request carrying CF-Connecting-IP cf and X-Forwarded-For xff (each
// one line when not empty) plus extra "Name: value" lines.
func newRequest(cf, xff string, extra ...string) *request {
	r := &request{lines: map[string][]string{}}
	add := func(name, v string) { r.lines[strings.ToLower(name)] = append(r.lines[strings.ToLower(name)], v) }
	if cf != "" {
		add("CF-Connecting-IP", cf)
	}
	if xff != "" {
		add("X-Forwarded-For", xff)
	}
	for _, l := range extra {
		name, v, _ := strings.Cut(l, ":")
		add(name, strings.TrimSpace(v))
	}
	return r
}

func (r *request) values(name string) []string {
	r.asked = append(r.asked, name)
	return r.lines[strings.ToLower(name)]
}

// addr parses s or fails the test; "" is the zero Addr.
func addr(tb testing.TB, s string) netip.Addr {
	tb.Helper()
	if s == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		tb.Fatalf("ParseAddr(%q): %v", s, err)
	}
	return a
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name   string
		header string // believed header; "" = X-Forwarded-For
		remote string
		cf     string
		xff    string
		extra  []string // more header lines, "Name: value"
		want   string
	}{
		// Untrusted peers: headers are ignored whatever they say.
		{name: "no headers", remote: "203.0.113.9", want: "203.0.113.9"},
		{name: "forged CF header from untrusted peer", remote: "203.0.113.9", cf: "198.51.100.1", want: "203.0.113.9"},
		{name: "forged XFF from untrusted peer", remote: "203.0.113.9", xff: "198.51.100.1", want: "203.0.113.9"},
		{name: "forged trusted-looking XFF from untrusted peer", remote: "203.0.113.9", xff: "10.0.0.1, 173.245.48.1", want: "203.0.113.9"},
		{name: "untrusted IPv6 peer", remote: "2001:db8:1:2::5", cf: "198.51.100.1", want: "2001:db8:1:2::5"},
		{name: "untrusted v4-mapped peer is unmapped", remote: "::ffff:203.0.113.9", xff: "198.51.100.1", want: "203.0.113.9"},
		{name: "untrusted peer with zone", remote: "fe80::1%eth0", xff: "198.51.100.1", want: "fe80::1"},

		// Trusted peers, X-Forwarded-For believed (the default): CF-Connecting-IP is never read.
		{name: "CF header from trusted proxy is not believed", remote: "173.245.48.7", cf: "198.51.100.1", xff: "192.0.2.200", want: "192.0.2.200"},
		{name: "CF header alone from trusted proxy is not believed", remote: "173.245.48.7", cf: "198.51.100.1", want: "173.245.48.7"},
		{name: "trusted v4-mapped peer", remote: "::ffff:10.1.2.3", xff: "198.51.100.1", want: "198.51.100.1"},
		{name: "trusted single address", remote: "192.0.2.1", xff: "198.51.100.1", want: "198.51.100.1"},
		{name: "trusted peer, no headers", remote: "10.0.0.5", want: "10.0.0.5"},

		// Trusted peers, CF-Connecting-IP believed: X-Forwarded-For is never read.
		{name: "CF: header from trusted proxy", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "198.51.100.1", xff: "192.0.2.200", want: "198.51.100.1"},
		{name: "CF: name matched in any case", header: "cf-connecting-ip", remote: "173.245.48.7", cf: "198.51.100.1", want: "198.51.100.1"},
		{name: "CF: spaces around IPv6", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: " 2001:db8:5::1 ", want: "2001:db8:5::1"},
		{name: "CF: XFF ignored without CF", header: "CF-Connecting-IP", remote: "173.245.48.7", xff: "198.51.100.1", want: "173.245.48.7"},
		{name: "CF: garbage is the peer, not XFF", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "not-an-ip", xff: "198.51.100.1", want: "173.245.48.7"},
		{name: "CF: unspecified is garbage", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "0.0.0.0", want: "173.245.48.7"},
		{name: "CF: a port is garbage", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "198.51.100.1:443", want: "173.245.48.7"},
		{name: "CF: brackets are garbage", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "[2001:db8::1]", want: "173.245.48.7"},
		{name: "CF: a list is garbage", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "198.51.100.1, 198.51.100.2", want: "173.245.48.7"},
		{name: "CF: a zone is garbage", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "fe80::1%eth0", want: "173.245.48.7"},
		{name: "CF: two lines are garbage", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "198.51.100.1", extra: []string{"CF-Connecting-IP: 198.51.100.2"}, want: "173.245.48.7"},
		{name: "CF: v4-mapped is unmapped", header: "CF-Connecting-IP", remote: "173.245.48.7", cf: "::ffff:198.51.100.1", want: "198.51.100.1"},
		{name: "CF: forged from untrusted peer", header: "CF-Connecting-IP", remote: "203.0.113.9", cf: "198.51.100.1", want: "203.0.113.9"},
		{name: "X-Real-IP believed", header: "X-Real-IP", remote: "10.0.0.5", cf: "198.51.100.1", xff: "198.51.100.2", extra: []string{"X-Real-IP: 198.51.100.3"}, want: "198.51.100.3"},

		// Trusted peers: X-Forwarded-For from the right.
		{name: "one hop", remote: "10.0.0.5", xff: "198.51.100.1", want: "198.51.100.1"},
		{name: "spoofed left-most values", remote: "10.0.0.5", xff: "1.1.1.1, 8.8.8.8, 198.51.100.1", want: "198.51.100.1"},
		{name: "chain of trusted proxies", remote: "10.0.0.5", xff: "6.6.6.6, 198.51.100.1, 173.245.48.9, 10.0.0.7", want: "198.51.100.1"},
		{name: "spoofed trusted value left of the client", remote: "10.0.0.5", xff: "10.9.9.9, 198.51.100.1, 10.0.0.7", want: "198.51.100.1"},
		{name: "several header lines joined", remote: "10.0.0.5", xff: "6.6.6.6,198.51.100.1,173.245.48.9", want: "198.51.100.1"},
		{name: "ports and brackets", remote: "10.0.0.5", xff: "6.6.6.6:1, [2001:db8:9::1]:5678, 10.0.0.7:80", want: "2001:db8:9::1"},
		{name: "IPv6 chain", remote: "2001:db8:cf::1", xff: "2001:db8:9::1, 2001:db8:cf:1::2", want: "2001:db8:9::1"},
		{name: "zone stripped", remote: "10.0.0.5", xff: "fe80::1%eth0", want: "fe80::1"},
		{name: "v4-mapped entry unmapped", remote: "10.0.0.5", xff: "::ffff:198.51.100.1", want: "198.51.100.1"},
		{name: "empty entries skipped", remote: "10.0.0.5", xff: "198.51.100.1,, ,10.0.0.7,", want: "198.51.100.1"},
		{name: "all trusted: the left-most", remote: "10.0.0.5", xff: "10.0.0.9, 10.0.0.7", want: "10.0.0.9"},
		{name: "garbage right after remote", remote: "10.0.0.5", xff: "198.51.100.1, garbage", want: "10.0.0.5"},
		{name: "garbage behind trusted hops", remote: "10.0.0.5", xff: "198.51.100.1, unknown, 173.245.48.9, 10.0.0.7", want: "173.245.48.9"},
		{name: "garbage left of the client is never reached", remote: "10.0.0.5", xff: "garbage, 198.51.100.1", want: "198.51.100.1"},
		{name: "bad port", remote: "10.0.0.5", xff: "198.51.100.1:http", want: "10.0.0.5"},
		{name: "junk after bracket", remote: "10.0.0.5", xff: "[2001:db8:9::1]x80", want: "10.0.0.5"},
		{name: "unclosed bracket", remote: "10.0.0.5", xff: "[2001:db8::1", want: "10.0.0.5"},
		{name: "IPv4 in brackets with port", remote: "10.0.0.5", xff: "[198.51.100.1]:80", want: "198.51.100.1"},
		{name: "overlong entry", remote: "10.0.0.5", xff: "fe80::1%" + strings.Repeat("z", 100) + ", 10.0.0.7", want: "10.0.0.7"},
		{name: "unspecified entry is garbage", remote: "10.0.0.5", xff: "::", want: "10.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolverFor(t, cmp.Or(tt.header, XForwardedFor), testTrusted...)
			req := newRequest(tt.cf, tt.xff, tt.extra...)
			got := r.ClientIP(addr(t, tt.remote), req.values)
			if want := addr(t, tt.want); got != want {
				t.Errorf("ClientIP(%s, cf %q, xff %q, %q) believing %s = %s, want %s", tt.remote, tt.cf, tt.xff, tt.extra, r.Header(), got, want)
			}
			// Only the named header is ever read, and nothing from an untrusted peer.
			for _, name := range req.asked {
				if !strings.EqualFold(name, r.Header()) {
					t.Errorf("ClientIP read header %q, want only %q", name, r.Header())
				}
			}
			if len(req.asked) > 1 {
				t.Errorf("ClientIP asked for headers %q, want at most one look", req.asked)
			}
		})
	}
}

func TestClientIPTrustsNobodyByDefault(t *testing.T) {
	r := newResolver(t)
	remote := addr(t, "10.0.0.5")
	req := newRequest("198.51.100.1", "198.51.100.2")
	if got := r.ClientIP(remote, req.values); got != remote || len(req.asked) != 0 {
		t.Errorf("ClientIP with no trusted proxies = %s, want the peer %s", got, remote)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		entry   string
		wantErr bool
		in, out []string // addresses the entry must and must not trust
	}{
		{name: "IPv4 address", entry: "192.0.2.1", in: []string{"192.0.2.1", "::ffff:192.0.2.1"}, out: []string{"192.0.2.2"}},
		{name: "IPv4 CIDR", entry: "10.0.0.0/8", in: []string{"10.255.0.1"}, out: []string{"11.0.0.1"}},
		{name: "host bits are ignored", entry: " 10.1.2.3/8 ", in: []string{"10.200.0.1"}, out: []string{"11.0.0.1"}},
		{name: "IPv6 address", entry: "2001:db8::1", in: []string{"2001:db8::1"}, out: []string{"2001:db8::2"}},
		{name: "IPv6 CIDR", entry: "2001:db8::/32", in: []string{"2001:db8:ffff::1"}, out: []string{"2001:db9::1"}},
		{name: "v4-mapped address", entry: "::ffff:192.0.2.1", in: []string{"192.0.2.1"}, out: []string{"192.0.2.2"}},
		{name: "v4-mapped CIDR", entry: "::ffff:10.0.0.0/104", in: []string{"10.1.1.1"}, out: []string{"11.0.0.1"}},
		{name: "empty", entry: "", wantErr: true},
		{name: "garbage", entry: "proxy.example.com", wantErr: true},
		{name: "bad prefix length", entry: "10.0.0.0/33", wantErr: true},
		{name: "zone", entry: "fe80::1%eth0", wantErr: true},
		{name: "v4-mapped prefix too short", entry: "::ffff:0:0/95", wantErr: true},
		{name: "port", entry: "10.0.0.1:80", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New([]string{"192.0.2.99", tt.entry}, "")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%q) = nil error, want one", tt.entry)
				}
				if !strings.Contains(err.Error(), "trusted proxy 2") {
					t.Errorf("New error %q does not say which entry is bad", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.entry, err)
			}
			for _, s := range tt.in {
				if !r.trusts(addr(t, s)) {
					t.Errorf("%q does not trust %s, want it to", tt.entry, s)
				}
			}
			for _, s := range tt.out {
				if r.trusts(addr(t, s)) {
					t.Errorf("%q trusts %s, want it not to", tt.entry, s)
				}
			}
		})
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want string
	}{
		{name: "IPv4 as is", addr: "203.0.113.7", want: "203.0.113.7"},
		{name: "IPv6 as its /64", addr: "2001:db8:1:2:aaaa:bbbb:cccc:dddd", want: "2001:db8:1:2::/64"},
		{name: "IPv6 /64 with zone", addr: "fe80::1%eth0", want: "fe80::/64"},
		{name: "v4-mapped is IPv4", addr: "::ffff:203.0.113.7", want: "203.0.113.7"},
		{name: "loopback IPv6", addr: "::1", want: "::/64"},
		{name: "invalid", addr: "", want: "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(addr(t, tt.addr)); got != tt.want {
				t.Errorf("Key(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestKeyGroupsIPv6By64(t *testing.T) {
	tests := []struct {
		name     string
		a, b     string
		wantSame bool
	}{
		{name: "same /64", a: "2001:db8:1:2::1", b: "2001:db8:1:2:ffff:ffff:ffff:ffff", wantSame: true},
		{name: "neighbouring /64s", a: "2001:db8:1:2::1", b: "2001:db8:1:3::1", wantSame: false},
		{name: "same /48, other /64", a: "2001:db8:1:2::1", b: "2001:db8:1:ff::1", wantSame: false},
		{name: "IPv4 neighbours", a: "203.0.113.7", b: "203.0.113.8", wantSame: false},
		{name: "IPv4 and its mapped form", a: "203.0.113.7", b: "::ffff:203.0.113.7", wantSame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := Key(addr(t, tt.a)), Key(addr(t, tt.b))
			if got := ka == kb; got != tt.wantSame {
				t.Errorf("Key(%s) = %q, Key(%s) = %q: same = %v, want %v", tt.a, ka, tt.b, kb, got, tt.wantSame)
			}
		})
	}
}

// FuzzClientIP checks that ClientIP never panics, always returns a valid address for a valid
// peer, never returns the unspecified address, and that an untrusted peer always wins.
func FuzzClientIP(f *testing.F) {
	xffR := newResolver(f, testTrusted...)
	cfR := newResolverFor(f, "CF-Connecting-IP", testTrusted...)
	// The oracle for "trusted" is built apart from the Resolver, so a Resolver that trusted too
	// much or too little would be caught rather than agreed with.
	var oracle []netip.Prefix
	for _, s := range testTrusted {
		if !strings.Contains(s, "/") {
			s += "/32"
		}
		oracle = append(oracle, netip.MustParsePrefix(s))
	}
	seeds := []struct{ remote, cf, xff string }{
		{"203.0.113.9", "198.51.100.1", "1.1.1.1"},
		{"10.0.0.5", "", "6.6.6.6, 198.51.100.1, 10.0.0.7"},
		{"173.245.48.7", "[2001:db8::1]:443", ""},
		{"10.0.0.5", "garbage", "[fe80::1%eth0]:80,,unknown, 10.0.0.7:99"},
		{"::ffff:10.0.0.5", "0.0.0.0", "::ffff:1.2.3.4"},
		{"2001:db8:cf::1", "", "[[::1]]:80, [::1]:, 1.2.3.4:99999"},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.cf, s.xff)
	}
	f.Fuzz(func(t *testing.T, remoteText, cf, xff string) {
		remote, err := netip.ParseAddr(remoteText)
		if err != nil {
			return
		}
		for _, r := range []*Resolver{xffR, cfR} {
			fuzzOne(t, r, oracle, remote, cf, xff)
		}
	})
}

// fuzzOne checks one resolver's answer for FuzzClientIP.
func fuzzOne(t *testing.T, r *Resolver, oracle []netip.Prefix, remote netip.Addr, cf, xff string) {
	got := r.ClientIP(remote, newRequest(cf, xff).values)
	if !got.IsValid() {
		t.Fatalf("ClientIP(%s, %q, %q) returned an invalid address", remote, cf, xff)
	}
	if got.Is4In6() || got.Zone() != "" {
		t.Fatalf("ClientIP(%s, %q, %q) = %s, want it unmapped and without zone", remote, cf, xff, got)
	}
	peer := remote.Unmap().WithZone("")
	trusted := false
	for _, p := range oracle {
		trusted = trusted || p.Contains(peer)
	}
	if !trusted && got != peer {
		t.Fatalf("ClientIP(untrusted %s, %q, %q) = %s, want the peer itself", remote, cf, xff, got)
	}
	if got != peer && got.IsUnspecified() {
		t.Fatalf("ClientIP(%s, %q, %q) = %s from a header", remote, cf, xff, got)
	}
	// Only the named header counts: dropping the other one changes nothing.
	alone := newRequest("", xff)
	if !strings.EqualFold(r.Header(), XForwardedFor) {
		alone = newRequest(cf, "")
	}
	if again := r.ClientIP(remote, alone.values); again != got {
		t.Fatalf("ClientIP(%s, %q, %q) believing %s = %s, but %s without the other header", remote, cf, xff, r.Header(), got, again)
	}
	_ = Key(got)
}

func BenchmarkClientIP(b *testing.B) {
	r := newResolver(b, testTrusted...)
	remote := addr(b, "10.0.0.5")
	xff := []string{"6.6.6.6, 198.51.100.1, 173.245.48.9, 10.0.0.7"}
	b.ReportAllocs()
	for b.Loop() {
		r.ClientIP(remote, func(string) []string { return xff })
	}
}

func TestCheckHeader(t *testing.T) {
	for _, ok := range []string{"X-Forwarded-For", "x-forwarded-for", "CF-Connecting-IP", "X-Real-IP", "True-Client-IP", "Fly-Client-IP"} {
		if err := CheckHeader(ok); err != nil {
			t.Errorf("CheckHeader(%q) = %v, want nil", ok, err)
		}
		if _, err := New(nil, ok); err != nil {
			t.Errorf("New(nil, %q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "X Forwarded", "X-Forwarded-For:", "CF-Connecting-IP\r\n", "Forwarded", "forwarded", "Host", "Cookie", strings.Repeat("x", 65), "Ünicode"} {
		if err := CheckHeader(bad); err == nil {
			t.Errorf("CheckHeader(%q) = nil, want an error", bad)
		}
		if bad != "" { // "" means the default
			if _, err := New(nil, bad); err == nil {
				t.Errorf("New(nil, %q) = nil error", bad)
			}
		}
	}
	if r, err := New(nil, ""); err != nil || r.Header() != XForwardedFor {
		t.Errorf("New(nil, \"\") believes %q (%v), want %s", r.Header(), err, XForwardedFor)
	}
}
