package httpapi

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/usher-gg/usher/internal/match"
)

// badCodeMessage is the one answer to any room code that cannot exist: wrong length, a
// character outside match.CodeAlphabet, or not a string at all.
const badCodeMessage = `"room" must be a room code: 4 or 5 characters from ` + match.CodeAlphabet +
	` (codes never contain 0, O, 1, I or L)`

// roomCode reads the "room" field of a join: a JSON string holding a room code, case-insensitive,
// surrounding spaces ignored. null, numbers, objects, the empty string and codes with a
// character codes never use (0 O 1 I L, or anything outside match.CodeAlphabet) are all
// refused with one invalid_request answer, so a code that cannot exist is never looked up.
func roomCode(raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", invalid(badCodeMessage)
	}
	code, err := match.NormalizeCode(s)
	if err != nil {
		if errors.Is(err, match.ErrInvalidRoomCode) {
			return "", invalid(badCodeMessage)
		}
		return "", err
	}
	for i := 0; i < len(code); i++ {
		if strings.IndexByte(match.CodeAlphabet, code[i]) < 0 {
			return "", invalid(badCodeMessage)
		}
	}
	return code, nil
}

// loneSurrogate reports whether a JSON text has a \u escape of a UTF-16 surrogate that is not
// part of a high-low pair ("\ud800", "\udc00", "\ud800\u0041"). encoding/json would turn such an
// escape into U+FFFD without an error. Only escapes inside strings count; the text is assumed
// to be JSON (anything else fails decoding anyway).
func loneSurrogate(b []byte) bool {
	in := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			in = !in
		case in && b[i] == '\\':
			if i+1 >= len(b) {
				return false
			}
			if b[i+1] != 'u' {
				i++ // \" \\ \n …: skip the escaped character
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return false // malformed: the decoder refuses it
			}
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return true // a low surrogate with no high one before it
			case r >= 0xD800 && r <= 0xDBFF:
				if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
					return true
				}
				lo, ok := hex4(b, i+3)
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}
