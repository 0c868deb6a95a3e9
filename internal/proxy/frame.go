package proxy

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// RFC 6455 framing.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	finBit  = 0x80
	rsvBits = 0x70
	maskBit = 0x80

	maxHeaderSize     = 2 + 8 + 4 // fixed part, 64-bit length, mask key
	maxControlPayload = 125
	maxCloseReason    = maxControlPayload - 2

	// msgHeadroom is the space kept before an assembled message for its outgoing header.
	msgHeadroom = maxHeaderSize
)

// Close codes (RFC 6455 section 7.4).
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closeProtocolError = 1002
	closeNoStatus      = 1005
	closeInvalidData   = 1007
	closePolicy        = 1008
	closeTooBig        = 1009
	closeInternalError = 1011
)

// frameError is a reason to fail a leg: the close code to send it and a short reason that is
// also the close frame's text.
type frameError struct {
	code int
	text string
}

func (e *frameError) Error() string { return fmt.Sprintf("websocket: %s (close %d)", e.text, e.code) }

// Failures found while reading a leg. Protocol violations are those the library's reader
// rejects with 1002 too; the limits and the UTF-8 checks have their own codes.
var (
	errReservedBits      = &frameError{closeProtocolError, "reserved bits set"}
	errBadOpcode         = &frameError{closeProtocolError, "unknown opcode"}
	errFragmentedControl = &frameError{closeProtocolError, "fragmented control frame"}
	errLongControl       = &frameError{closeProtocolError, "control frame longer than 125 bytes"}
	errUnmasked          = &frameError{closeProtocolError, "client frame not masked"}
	errMasked            = &frameError{closeProtocolError, "server frame masked"}
	errBadLength         = &frameError{closeProtocolError, "invalid frame length"}
	errNoContinuation    = &frameError{closeProtocolError, "continuation frame without a message"}
	errWantContinuation  = &frameError{closeProtocolError, "new message inside a fragmented message"}
	errCloseLength       = &frameError{closeProtocolError, "close frame with a 1-byte payload"}
	errCloseCode         = &frameError{closeProtocolError, "invalid close code"}
	errEarlyData         = &frameError{closeProtocolError, "too much data before the handshake completed"}
	errCloseReason       = &frameError{closeInvalidData, "invalid UTF-8 in close reason"}
	errBadUTF8           = &frameError{closeInvalidData, "invalid UTF-8 in text message"}
	errTooBig            = &frameError{closeTooBig, "message too big"}
	errFlood             = &frameError{closePolicy, "rate limit exceeded"}
)

// closeReceived is the "error" a leg's reader returns when its peer sent a close frame.
type closeReceived struct {
	code int // closeNoStatus when the frame had no payload
	text string
}

func (e *closeReceived) Error() string { return fmt.Sprintf("websocket: close %d %q", e.code, e.text) }

// forwardCode maps a close code received on one leg to the code sent on the other. Codes the
// gorilla-derived readers reject (1014, and 1005 which means "no code") become 1000.
func forwardCode(code int) int {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013, code >= 3000 && code <= 4999:
		return code
	}
	return closeNormal
}

// headerLen returns the size of a header for a payload of n bytes.
func headerLen(n int, masked bool) int {
	h := 2
	switch {
	case n > 0xFFFF:
		h += 8
	case n > 125:
		h += 2
	}
	if masked {
		h += 4
	}
	return h
}

// putHeader writes a final frame's header into b (len(b) == headerLen(n, key != nil)).
func putHeader(b []byte, op byte, n int, key *[4]byte) {
	b[0] = finBit | op
	var m byte
	if key != nil {
		m = maskBit
	}
	i := 2
	switch {
	case n > 0xFFFF:
		b[1] = m | 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		i += 8
	case n > 125:
		b[1] = m | 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		i += 2
	default:
		b[1] = m | byte(n)
	}
	if key != nil {
		copy(b[i:], key[:])
	}
}

// maskBytes XORs b with key, starting at key position 0, eight bytes at a time.
func maskBytes(b []byte, key [4]byte) {
	if len(b) >= 8 {
		k := uint64(binary.LittleEndian.Uint32(key[:]))
		k |= k << 32
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// closePayload formats a close frame payload into buf: empty for closeNoStatus, otherwise the
// code and reason, cut to fit on a UTF-8 boundary.
func closePayload(buf *[maxControlPayload]byte, code int, reason string) []byte {
	if code == closeNoStatus {
		return buf[:0]
	}
	binary.BigEndian.PutUint16(buf[:], uint16(code))
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	n := copy(buf[2:], reason)
	return buf[:2+n]
}
