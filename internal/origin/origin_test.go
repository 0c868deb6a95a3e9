package origin

import "testing"

func TestPolicy(t *testing.T) {
	p, err := New([]string{"https://play.example.com", "http://localhost:*", "http://127.0.0.1:*", "https://game.example.org:8443"}, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://play.example.com", true},
		{"https://play.example.com:443", true},
		{"https://PLAY.example.com", true},
		{"http://play.example.com", false},           // scheme differs
		{"https://play.example.com:8443", false},     // port differs
		{"https://play.example.com.evil.com", false}, // suffix trick
		{"https://evilplay.example.com", false},
		{"https://xplay.example.com", false},
		{"https://play.example.co", false},
		{"https://user@play.example.com", false},
		{"https://play.example.com/path", false},
		{"null", false},
		{"file://", false},
		{"http://localhost:5173", true},
		{"http://localhost", true},
		{"http://localhost:0", false},
		{"http://localhost:99999", false},
		{"http://localhost.evil.com:5173", false},
		{"https://localhost:5173", false},
		{"http://127.0.0.1:8080", true},
		{"http://127.0.0.2:8080", false},
		{"https://game.example.org:8443", true},
		{"https://game.example.org", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			if got := p.Allowed(tt.origin); got != tt.want {
				t.Errorf("Allowed(%q) = %v, want %v", tt.origin, got, tt.want)
			}
		})
	}
}

func TestAllowNone(t *testing.T) {
	for _, allow := range []bool{true, false} {
		p, err := New(nil, allow)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Allowed(""); got != allow {
			t.Errorf("allowNone=%v: Allowed(\"\") = %v", allow, got)
		}
		if p.Allowed("https://a.example") {
			t.Errorf("empty list allowed an origin")
		}
	}
}

func TestNewRejectsBadEntries(t *testing.T) {
	for _, e := range []string{"*", "localhost", "ftp://x", "https://x/path", "https://x:*:*", "https://x:abc", "https://:80"} {
		if _, err := New([]string{e}, false); err == nil {
			t.Errorf("New(%q) accepted a bad entry", e)
		}
	}
}
