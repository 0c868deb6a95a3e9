package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr bool
	}{
		{name: "bearer", header: "Bearer abc.def.ghi", want: "abc.def.ghi"},
		{name: "lowercase scheme", header: "bearer abc.def.ghi", want: "abc.def.ghi"},
		{name: "shouting scheme, extra spaces", header: "BEARER   abc.def.ghi  ", want: "abc.def.ghi"},
		{name: "token at the size limit", header: "Bearer " + strings.Repeat("a", maxAuthorizationLen-len("Bearer ")), want: strings.Repeat("a", maxAuthorizationLen-len("Bearer "))},
		{name: "missing", header: "", wantErr: true},
		{name: "other scheme", header: "Basic dXNlcjpwYXNz", wantErr: true},
		{name: "scheme only", header: "Bearer", wantErr: true},
		{name: "scheme and space only", header: "Bearer    ", wantErr: true},
		{name: "no space after scheme", header: "Bearerabc.def.ghi", wantErr: true},
		{name: "tab after scheme", header: "Bearer\tabc.def.ghi", wantErr: true},
		{name: "two tokens", header: "Bearer abc def", wantErr: true},
		{name: "comma list", header: "Bearer abc, Bearer def", wantErr: true},
		{name: "scheme lookalike", header: "Bearer_ abc", wantErr: true},
		{name: "token only", header: "abc.def.ghi", wantErr: true},
		{name: "over 8 KiB", header: "Bearer " + strings.Repeat("a", maxAuthorizationLen), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBearer(tt.header)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseBearer(%.40q) = %.40q, nil; want an error", tt.header, got)
				}
				if !errors.Is(err, ErrInvalidToken) {
					t.Errorf("ParseBearer error %q does not wrap ErrInvalidToken", err)
				}
				if len(err.Error()) > 100 {
					t.Errorf("ParseBearer error is %d bytes; it must not echo the header", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBearer(%.40q): %v", tt.header, err)
			}
			if got != tt.want {
				t.Errorf("ParseBearer(%.40q) = %.40q, want %.40q", tt.header, got, tt.want)
			}
		})
	}
}

func TestNewPlayerID(t *testing.T) {
	shape := regexp.MustCompile(`^p_[a-z2-7]{20}$`)
	seen := make(map[string]bool)
	for range 1000 {
		got := NewPlayerID()
		if !shape.MatchString(got) {
			t.Fatalf("NewPlayerID() = %q, want p_ and 20 lowercase base32 chars", got)
		}
		if seen[got] {
			t.Fatalf("NewPlayerID() repeated %q", got)
		}
		seen[got] = true
	}
}

func BenchmarkParseBearer(b *testing.B) {
	header := "Bearer " + strings.Repeat("a", 400)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBearer(header); err != nil {
			b.Fatal(err)
		}
	}
}
