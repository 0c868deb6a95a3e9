package ticket

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestDecodeID(t *testing.T) {
	valid, raw := NewID()
	tests := []struct {
		name   string
		id     string
		wantOK bool
	}{
		{name: "fresh id", id: valid, wantOK: true},
		{name: "all zero", id: strings.Repeat("A", 43), wantOK: true},
		{name: "all ones", id: strings.Repeat("_", 42) + "w", wantOK: true},
		{name: "non-canonical last character", id: strings.Repeat("_", 42) + "x"},
		{name: "empty", id: ""},
		{name: "42 characters", id: valid[:42]},
		{name: "44 characters", id: valid + "A"},
		{name: "standard alphabet", id: "+" + valid[1:]},
		{name: "padding", id: valid[:42] + "="},
		{name: "high byte", id: "\xff" + valid[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := DecodeID(tt.id)
			if ok != tt.wantOK {
				t.Fatalf("DecodeID(%q) ok = %v, want %v", tt.id, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			want, err := base64.RawURLEncoding.Strict().DecodeString(tt.id)
			if err != nil {
				t.Fatalf("stdlib cannot decode %q: %v", tt.id, err)
			}
			if !bytes.Equal(got[:], want) {
				t.Errorf("DecodeID(%q) = %x, want %x", tt.id, got, want)
			}
		})
	}
	if got, _ := DecodeID(valid); got != raw {
		t.Errorf("DecodeID(NewID()) = %x, want the bytes NewID drew %x", got, raw)
	}
}

func TestDecodeIDDoesNotAllocate(t *testing.T) {
	id, _ := NewID()
	if got := testing.AllocsPerRun(100, func() { DecodeID(id) }); got != 0 {
		t.Errorf("DecodeID allocates %v times per call, want 0", got)
	}
}

// FuzzDecodeID holds DecodeID to the standard library's strict decoder.
func FuzzDecodeID(f *testing.F) {
	id, _ := NewID()
	for _, s := range []string{id, "", strings.Repeat("_", 42) + "x", "+" + id[1:], id[:42] + "="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := DecodeID(s)
		want, err := base64.RawURLEncoding.Strict().DecodeString(s)
		wantOK := err == nil && len(want) == IDBytes && len(s) == idLen
		if ok != wantOK {
			t.Fatalf("DecodeID(%q) ok = %v, stdlib says %v (err %v)", s, ok, wantOK, err)
		}
		if ok && !bytes.Equal(got[:], want) {
			t.Fatalf("DecodeID(%q) = %x, stdlib %x", s, got, want)
		}
	})
}
