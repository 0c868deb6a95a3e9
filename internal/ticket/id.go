package ticket

import (
	"crypto/rand"
	"encoding/base64"
)

// IDBytes is how much randomness a ticket id carries: 256 bits, twice the 128 promised.
const IDBytes = 32

// idLen is the length of a ticket id: IDBytes in unpadded base64url.
const idLen = (IDBytes*8 + 5) / 6 // 43

// NewID returns a fresh random ticket id (for any Store) and the raw bytes it encodes.
func NewID() (string, [IDBytes]byte) {
	var raw [IDBytes]byte
	_, _ = rand.Read(raw[:]) // never fails (crypto/rand crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(raw[:]), raw
}

// DecodeID returns the raw bytes of a well-formed ticket id: exactly idLen characters of
// unpadded base64url in canonical form (the unused low bits of the last character are zero),
// so each id has exactly one spelling. It allocates nothing and looks at no more than idLen
// bytes, so hostile input costs nothing.
func DecodeID(id string) (raw [IDBytes]byte, ok bool) {
	if len(id) != idLen {
		return raw, false
	}
	var acc uint32 // pending bits, the newest in the low end
	bits, n := 0, 0
	for i := 0; i < len(id); i++ {
		v := b64Value(id[i])
		if v < 0 {
			return raw, false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			raw[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	// 43 characters carry 258 bits: the 2 left over must be zero.
	return raw, acc == 0
}

// b64Value is the value of c in the base64url alphabet, or -1.
func b64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}
