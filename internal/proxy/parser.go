package proxy

import (
	"encoding/binary"
	"unicode/utf8"
)

// The one RFC 6455 parser. Both relay engines (the event loop and the goroutine relay) read
// frames with it; it does no I/O and holds no buffer. An engine finds a frame's header with
// parseHeader, then drives one parser per direction of a connection:
//
//	h, need, err := parseHeader(b, side) // stateless: reserved bits, opcode, masking, control frame rules, length
//	err = p.check(h)                     // against the message state: sequence, size limit (no change)
//	control frame:  err = parseClose(payload) for a close, nothing for ping/pong (payload ≤ 125 bytes)
//	whole message in one frame:  err = p.single(h, payload)
//	otherwise:      p.begin(h); err = p.data(chunk)… ; op, done, err = p.end()
//
// Payloads are given to the parser unmasked. Every failure is a *frameError carrying the close
// code to send (1002 protocol, 1007 invalid UTF-8, 1009 too big); a close frame comes back as a
// *closeReceived.

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	op     byte
	masked bool
	hlen   int   // header bytes, mask key included
	plen   int64 // payload bytes
	key    [4]byte
}

// parseHeader parses and validates the frame header at the start of b, read from a leg of side
// s (frames from the player must be masked, frames from the game server must not). need is 0
// when b holds the whole header; otherwise it is how many bytes the header needs (h is then
// incomplete). It checks everything a header alone can tell: reserved bits (no extension is
// negotiated), the opcode, masking, control frames (final, ≤ 125 bytes) and a 64-bit length
// with its top bit set.
func parseHeader(b []byte, s side) (h frameHeader, need int, err error) {
	if len(b) < 2 {
		return h, 2, nil
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&finBit != 0
	h.op = b0 & 0x0F
	h.masked = b1&maskBit != 0
	n7 := b1 & 0x7F
	if b0&rsvBits != 0 {
		return h, 0, errReservedBits // no extension was negotiated
	}
	switch h.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !h.fin {
			return h, 0, errFragmentedControl
		}
		if n7 > maxControlPayload {
			return h, 0, errLongControl
		}
	default:
		return h, 0, errBadOpcode
	}
	if wantMask := s == sideClient; h.masked != wantMask {
		if wantMask {
			return h, 0, errUnmasked
		}
		return h, 0, errMasked
	}
	h.hlen = 2
	switch n7 {
	case 126:
		h.hlen += 2
	case 127:
		h.hlen += 8
	}
	if n7 == 127 && len(b) >= 10 && b[2]&0x80 != 0 {
		return h, 0, errBadLength // known before the mask key arrives
	}
	if h.masked {
		h.hlen += 4
	}
	if len(b) < h.hlen {
		return h, h.hlen, nil
	}
	switch n7 {
	case 126:
		h.plen = int64(b[2])<<8 | int64(b[3])
	case 127:
		h.plen = int64(binary.BigEndian.Uint64(b[2:10]))
	default:
		h.plen = int64(n7)
	}
	if h.masked {
		copy(h.key[:], b[h.hlen-4:h.hlen])
	}
	return h, 0, nil
}

// parser is the message state of one direction of a connection: the data message in progress
// (its opcode and size so far), whether the current data frame ends it, and the UTF-8 state of
// a text message across frames. Its zero value, with max set, is ready.
type parser struct {
	max int64 // MaxMessageBytes
	op  byte  // opcode of the message in progress (from its first frame's begin to its end); 0: none
	n   int64 // payload bytes of that message, the current frame's included
	fin bool  // the current data frame is the message's last
	u   utf8State
}

// check validates data frame h against the message state without changing it: a continuation
// needs a message in progress, a new message must wait for the end of the one in progress, and
// the message may not outgrow max (1009). It is cheap, so an engine calls it as soon as a
// header is parsed, before waiting for the payload. Control frames always pass.
func (p *parser) check(h frameHeader) error {
	switch h.op {
	case opContinuation:
		if p.op == 0 {
			return errNoContinuation
		}
		if h.plen > p.max-p.n {
			return errTooBig
		}
	case opText, opBinary:
		if p.op != 0 {
			return errWantContinuation
		}
		if h.plen > p.max {
			return errTooBig
		}
	}
	return nil
}

// begin starts data frame h (which passed check): a new message, or the next fragment of the
// one in progress. Its payload goes to data, then end.
func (p *parser) begin(h frameHeader) {
	if h.op != opContinuation {
		p.op, p.n = h.op, 0
		p.u = utf8State{}
	}
	p.n += h.plen
	p.fin = h.fin
}

// data checks the next chunk of the current data frame's payload, unmasked: the UTF-8 of a
// text message, incrementally, so invalid text fails at the fragment that breaks it and a
// character may be split across frames.
func (p *parser) data(b []byte) error {
	if p.op == opText && !p.u.feed(b) {
		return errBadUTF8
	}
	return nil
}

// end ends the current data frame. When it was the message's last, end returns the message's
// opcode and done; a text message must not end inside a character.
func (p *parser) end() (op byte, done bool, err error) {
	if !p.fin {
		return 0, false, nil
	}
	op, p.op = p.op, 0
	if op == opText && p.u.n != 0 {
		return 0, false, errBadUTF8
	}
	return op, true, nil
}

// single checks a whole message in one frame (h passed check, is final and not a
// continuation) with its unmasked payload: the relay's common case, begin, data and end in one.
func (p *parser) single(h frameHeader, payload []byte) error {
	if h.op == opText && !utf8.Valid(payload) {
		return errBadUTF8
	}
	return nil
}

// parseClose validates a close frame's payload: empty (no status), or a code a peer may send
// (RFC 6455 section 7.4) and a UTF-8 reason; a 1-byte payload is a protocol error. A valid one
// comes back as a *closeReceived.
func parseClose(p []byte) error {
	switch {
	case len(p) == 0:
		return &closeReceived{code: closeNoStatus}
	case len(p) == 1:
		return errCloseLength
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validReceivedCode(code) {
		return errCloseCode
	}
	if !utf8.Valid(p[2:]) {
		return errCloseReason
	}
	return &closeReceived{code: code, text: string(p[2:])}
}

// validReceivedCode reports whether a peer may send code in a close frame: the RFC 6455 codes
// defined for the wire, the later IANA ones (1012–1014) and the registered and private ranges.
func validReceivedCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// utf8State validates UTF-8 given in pieces: it holds the start of a character the last piece
// ended inside.
type utf8State struct {
	buf [utf8.UTFMax]byte
	n   int
}

// feed validates the next piece; false once the text is invalid. A piece may end inside a
// character only with a prefix some character starts with (so overlong forms, surrogates and
// code points past U+10FFFF fail at once).
func (s *utf8State) feed(b []byte) bool {
	if s.n > 0 {
		for s.n < len(s.buf) && len(b) > 0 && !utf8.FullRune(s.buf[:s.n]) {
			s.buf[s.n] = b[0]
			s.n++
			b = b[1:]
		}
		if !utf8.FullRune(s.buf[:s.n]) {
			return validPrefix(s.buf[:s.n])
		}
		if r, size := utf8.DecodeRune(s.buf[:s.n]); (r == utf8.RuneError && size <= 1) || size != s.n {
			return false
		}
		s.n = 0
	}
	// Find a character the piece ends inside: a leading byte in its last three.
	k := len(b)
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			break // ASCII: the piece ends on a boundary
		}
		if c >= 0xC0 {
			if !utf8.FullRune(b[len(b)-i:]) {
				k = len(b) - i
			}
			break
		}
	}
	if !utf8.Valid(b[:k]) {
		return false
	}
	if tail := b[k:]; len(tail) > 0 {
		if !validPrefix(tail) {
			return false
		}
		s.n = copy(s.buf[:], tail)
	}
	return true
}

// validPrefix reports whether b (1–3 bytes, not a whole character) starts some valid UTF-8
// character (RFC 3629 section 4).
func validPrefix(b []byte) bool {
	c := b[0]
	if c < 0xC2 || c > 0xF4 {
		return false
	}
	if len(b) == 1 {
		return true
	}
	lo, hi := byte(0x80), byte(0xBF)
	switch c {
	case 0xE0:
		lo = 0xA0
	case 0xED:
		hi = 0x9F
	case 0xF0:
		lo = 0x90
	case 0xF4:
		hi = 0x8F
	}
	if b[1] < lo || b[1] > hi {
		return false
	}
	return len(b) == 2 || (b[2] >= 0x80 && b[2] <= 0xBF)
}
