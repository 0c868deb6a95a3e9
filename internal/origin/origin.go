// Package origin decides which browser Origins may use Usher: an exact allow-list of
// scheme://host[:port], where a port of * allows any port of that scheme and host.
package origin

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Policy is an Origin allow-list. The zero value allows nothing.
type Policy struct {
	exact     map[string]bool
	anyPort   map[string]bool // "scheme://host" whose every port is allowed
	allowNone bool
}

// New builds a policy from entries like "https://play.example.com", "http://localhost:8080"
// or "http://localhost:*". allowNone says whether a request without an Origin header (a
// native client, not a browser) may pass.
func New(entries []string, allowNone bool) (*Policy, error) {
	p := &Policy{exact: map[string]bool{}, anyPort: map[string]bool{}, allowNone: allowNone}
	for _, e := range entries {
		if rest, ok := strings.CutSuffix(e, ":*"); ok {
			o, err := parse(rest)
			if err != nil || o.port != "" {
				return nil, fmt.Errorf("allowed origin %q: want scheme://host:*", e)
			}
			p.anyPort[o.scheme+"://"+o.host] = true
			continue
		}
		o, err := parse(e)
		if err != nil {
			return nil, fmt.Errorf("allowed origin %q: %w", e, err)
		}
		p.exact[o.String()] = true
	}
	return p, nil
}

// Allowed reports whether a request with this Origin header value may pass. The empty string
// means the header was absent.
func (p *Policy) Allowed(h string) bool {
	if h == "" {
		return p.allowNone
	}
	if p.exact[h] {
		return true
	}
	o, err := parse(h)
	if err != nil {
		return false
	}
	// Browsers serialise origins in lower case without default ports; compare canonical forms
	// so that an allow-list entry written with a default port still matches.
	if p.exact[o.String()] {
		return true
	}
	return p.anyPort[o.scheme+"://"+o.host]
}

// AllowNone reports whether requests without an Origin header pass.
func (p *Policy) AllowNone() bool { return p.allowNone }

type parsed struct{ scheme, host, port string }

func (o parsed) String() string {
	if o.port == "" {
		return o.scheme + "://" + o.host
	}
	return o.scheme + "://" + net.JoinHostPort(o.host, o.port)
}

// parse accepts exactly scheme://host[:port] with scheme http or https: no user info, path,
// query or fragment. Default ports are dropped.
func parse(s string) (parsed, error) {
	if len(s) > 300 {
		return parsed{}, fmt.Errorf("too long")
	}
	u, err := url.Parse(s)
	if err != nil {
		return parsed{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return parsed{}, fmt.Errorf("scheme must be http or https")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return parsed{}, fmt.Errorf("want scheme://host[:port] only")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return parsed{}, fmt.Errorf("no host")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return parsed{}, fmt.Errorf("bad port")
		}
		if (u.Scheme == "http" && n == 80) || (u.Scheme == "https" && n == 443) {
			port = ""
		} else {
			port = strconv.Itoa(n)
		}
	}
	return parsed{scheme: u.Scheme, host: host, port: port}, nil
}
