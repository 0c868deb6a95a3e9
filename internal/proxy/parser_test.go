package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
)

// parsedMsg is a data message the parser accepted.
type parsedMsg struct {
	op   byte
	data []byte
}

// outcome is what a stream of frames amounts to: the messages, then how the stream ended.
type outcome struct {
	msgs   []parsedMsg
	closed *closeReceived // a valid close frame
	fail   *frameError    // a violation: the close code to send
	eof    bool           // the input ended (with or without a partial frame)
	inHead bool           // … inside a frame header
}

// decodeAll reads every frame of in as an engine does, with nothing but the parser: headers
// with parseHeader, the message state with check/single/begin/data/end, close frames with
// parseClose. A data frame that is not a whole message is given to the parser in chunks of
// chunk bytes (0: at once), so UTF-8 is validated across arbitrary splits.
func decodeAll(s side, max int64, in []byte, chunk int) (o outcome) {
	ps := parser{max: max}
	var msg []byte
	for {
		h, need, err := parseHeader(in, s)
		if err != nil {
			o.fail = err.(*frameError)
			return o
		}
		if need > 0 {
			o.eof, o.inHead = true, len(in) > 0
			return o
		}
		if h.op < opClose {
			if err := ps.check(h); err != nil {
				o.fail = err.(*frameError)
				return o
			}
		}
		if int64(len(in)-h.hlen) < h.plen {
			o.eof = true
			return o
		}
		payload := bytes.Clone(in[h.hlen : h.hlen+int(h.plen)])
		in = in[h.hlen+int(h.plen):]
		if h.masked {
			maskBytes(payload, h.key)
		}
		switch {
		case h.op == opClose:
			switch err := parseClose(payload).(type) {
			case *closeReceived:
				o.closed = err
			case *frameError:
				o.fail = err
			}
			return o
		case h.op >= opClose:
			continue
		case h.fin && h.op != opContinuation:
			if err := ps.single(h, payload); err != nil {
				o.fail = err.(*frameError)
				return o
			}
			o.msgs = append(o.msgs, parsedMsg{h.op, payload})
			continue
		}
		if h.op != opContinuation {
			msg = nil
		}
		ps.begin(h)
		msg = append(msg, payload...)
		for len(payload) > 0 {
			k := len(payload)
			if chunk > 0 {
				k = min(k, chunk)
			}
			if err := ps.data(payload[:k]); err != nil {
				o.fail = err.(*frameError)
				return o
			}
			payload = payload[k:]
		}
		op, done, err := ps.end()
		if err != nil {
			o.fail = err.(*frameError)
			return o
		}
		if done {
			o.msgs = append(o.msgs, parsedMsg{op, msg})
			msg = nil
		}
	}
}

// clientFrame builds a masked frame; length says how to encode its length (0: the shortest).
func clientFrame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n > 0xFFFF:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	case n > 125:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|byte(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	maskBytes(out[start:], key)
	return out
}

func closeFrame(code int, reason string) []byte {
	return clientFrame(0x88, append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...))
}

func TestParserTable(t *testing.T) {
	cat := func(frames ...[]byte) []byte { return slices.Concat(frames...) }
	txt := func(s string) parsedMsg { return parsedMsg{opText, []byte(s)} }
	tests := []struct {
		name string
		in   []byte
		msgs []parsedMsg
		code int // 0: ends without a failure
	}{
		{"text", clientFrame(0x81, []byte("hi")), []parsedMsg{txt("hi")}, 0},
		{"empty fragments", cat(clientFrame(0x01, nil), clientFrame(0x00, nil), clientFrame(0x80, nil)), []parsedMsg{txt("")}, 0},
		{"fragments with ping and pong between", cat(clientFrame(0x01, []byte("a")), clientFrame(0x89, []byte("p")), clientFrame(0x00, []byte("b")), clientFrame(0x8A, nil), clientFrame(0x80, []byte("c"))), []parsedMsg{txt("abc")}, 0},
		{"euro split across fragments", cat(clientFrame(0x01, []byte("x\xe2")), clientFrame(0x00, []byte("\x82")), clientFrame(0x80, []byte("\xacy"))), []parsedMsg{txt("x€y")}, 0},
		{"invalid UTF-8 fails at its fragment", cat(clientFrame(0x01, []byte("ok")), clientFrame(0x00, []byte("\xc0\xaf"))), nil, closeInvalidData},
		{"surrogate prefix fails at once", clientFrame(0x01, []byte("\xed\xa0")), nil, closeInvalidData},
		{"above U+10FFFF prefix", clientFrame(0x01, []byte("\xf4\x90")), nil, closeInvalidData},
		{"message ends inside a character", cat(clientFrame(0x01, []byte("a")), clientFrame(0x80, []byte("\xe2\x82"))), nil, closeInvalidData},
		{"invalid UTF-8 single frame", clientFrame(0x81, []byte{0xff}), nil, closeInvalidData},
		{"binary is not UTF-8 checked", clientFrame(0x82, []byte{0xff}), []parsedMsg{{opBinary, []byte{0xff}}}, 0},
		{"continuation without a start", clientFrame(0x80, []byte("x")), nil, closeProtocolError},
		{"new message inside a fragmented one", cat(clientFrame(0x01, []byte("a")), clientFrame(0x81, []byte("b"))), nil, closeProtocolError},
		{"fragmented ping", clientFrame(0x09, nil), nil, closeProtocolError},
		{"ping of 126 bytes", clientFrame(0x89, make([]byte, 126)), nil, closeProtocolError},
		{"ping of 125 bytes", cat(clientFrame(0x89, make([]byte, 125)), clientFrame(0x81, []byte("z"))), []parsedMsg{txt("z")}, 0},
		{"RSV1", clientFrame(0xC1, []byte("x")), nil, closeProtocolError},
		{"RSV2", clientFrame(0xA1, []byte("x")), nil, closeProtocolError},
		{"RSV3", clientFrame(0x91, []byte("x")), nil, closeProtocolError},
		{"opcode 3", clientFrame(0x83, nil), nil, closeProtocolError},
		{"opcode 0xB", clientFrame(0x8B, nil), nil, closeProtocolError},
		{"unmasked", []byte{0x81, 0x01, 'x'}, nil, closeProtocolError},
		{"64-bit length with the top bit", []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, nil, closeProtocolError},
		{"one frame over the limit", clientFrame(0x82, make([]byte, 101)), nil, closeTooBig},
		{"limit across fragments", cat(clientFrame(0x02, make([]byte, 60)), clientFrame(0x80, make([]byte, 41))), nil, closeTooBig},
		{"exactly the limit across fragments", cat(clientFrame(0x02, make([]byte, 60)), clientFrame(0x80, make([]byte, 40))), []parsedMsg{{opBinary, make([]byte, 100)}}, 0},
		{"close with 1 byte", clientFrame(0x88, []byte{3}), nil, closeProtocolError},
		{"close 1005 on the wire", closeFrame(1005, ""), nil, closeProtocolError},
		{"close 999", closeFrame(999, ""), nil, closeProtocolError},
		{"close 2999", closeFrame(2999, ""), nil, closeProtocolError},
		{"close 5000", closeFrame(5000, ""), nil, closeProtocolError},
		{"close reason not UTF-8", closeFrame(1000, "\xff"), nil, closeInvalidData},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 2, 3} {
			o := decodeAll(sideClient, 100, tt.in, chunk)
			code := 0
			if o.fail != nil {
				code = o.fail.code
			}
			if code != tt.code {
				t.Errorf("%s (chunk %d): close code %d (%v), want %d", tt.name, chunk, code, o.fail, tt.code)
			}
			if !slices.EqualFunc(o.msgs, tt.msgs, func(a, b parsedMsg) bool { return a.op == b.op && bytes.Equal(a.data, b.data) }) {
				t.Errorf("%s (chunk %d): messages %q, want %q", tt.name, chunk, o.msgs, tt.msgs)
			}
		}
	}
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999} {
		o := decodeAll(sideClient, 100, closeFrame(code, "bye"), 0)
		if o.closed == nil || o.closed.code != code || o.closed.text != "bye" {
			t.Errorf("close %d: got %+v %v", code, o.closed, o.fail)
		}
	}
	if o := decodeAll(sideClient, 100, clientFrame(0x88, nil), 0); o.closed == nil || o.closed.code != closeNoStatus {
		t.Errorf("empty close: got %+v %v", o.closed, o.fail)
	}
	// The game server's direction: frames must not be masked.
	if o := decodeAll(sideServer, 100, []byte{0x81, 0x02, 'o', 'k'}, 0); len(o.msgs) != 1 || o.fail != nil {
		t.Errorf("server frame: %+v", o)
	}
	if o := decodeAll(sideServer, 100, clientFrame(0x81, []byte("ok")), 0); o.fail != errMasked {
		t.Errorf("masked server frame: %+v", o)
	}
}

// feedSplit validates b with a utf8State in pieces cut at the given points.
func feedSplit(b []byte, cuts []int) bool {
	var s utf8State
	prev := 0
	for _, c := range cuts {
		c = min(max(c, prev), len(b))
		if !s.feed(b[prev:c]) {
			return false
		}
		prev = c
	}
	return s.feed(b[prev:]) && s.n == 0
}

func TestUTF8StateMatchesValid(t *testing.T) {
	samples := []string{"", "a", "€", "𝄞", "é", "\xed\x9f\xbf", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80",
		"\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xff", "\x80", "a\xe2\x82", "\xef\xbf\xbd", "κόσμε", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"}
	for _, s := range samples {
		b := []byte(s)
		want := utf8.Valid(b)
		for i := 0; i <= len(b); i++ {
			for j := i; j <= len(b); j++ {
				if got := feedSplit(b, []int{i, j}); got != want {
					t.Errorf("%q cut at %d,%d: %v, want %v", s, i, j, got, want)
				}
			}
		}
	}
}

// FuzzParser checks the parser on its own: it never panics; a message is never longer than
// the limit; text is valid UTF-8; the outcome does not depend on how data frames are cut into
// chunks; and, on the raw input, incremental UTF-8 validation agrees with utf8.Valid at any cut.
func FuzzParser(f *testing.F) {
	for _, seed := range [][]byte{
		clientFrame(0x81, []byte("hello")),
		slices.Concat(clientFrame(0x01, []byte("x\xe2")), clientFrame(0x89, []byte("p")), clientFrame(0x80, []byte("\x82\xac"))),
		slices.Concat(clientFrame(0x02, make([]byte, 60)), clientFrame(0x80, make([]byte, 41))),
		closeFrame(1000, "bye"),
		closeFrame(1005, ""),
		clientFrame(0x88, []byte{3}),
		{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		{0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4},
		clientFrame(0x01, []byte("\xed\xa0")),
		clientFrame(0xC1, nil),
	} {
		f.Add(seed, uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		const max = 100
		o := decodeAll(sideClient, max, in, 0)
		for _, m := range o.msgs {
			if len(m.data) > max {
				t.Fatalf("message of %d bytes, over the limit", len(m.data))
			}
			if m.op == opText && !utf8.Valid(m.data) {
				t.Fatalf("invalid UTF-8 text accepted: %q", m.data)
			}
			if m.op != opText && m.op != opBinary {
				t.Fatalf("opcode %d returned", m.op)
			}
		}
		if n := b2i(o.fail != nil) + b2i(o.closed != nil) + b2i(o.eof); n != 1 {
			t.Fatalf("outcome ends %d ways: %+v", n, o)
		}
		for _, chunk := range []int{1, 3} {
			if c := decodeAll(sideClient, max, in, chunk); !sameOutcome(o, c) {
				t.Fatalf("chunks of %d: %+v, at once: %+v", chunk, c, o)
			}
		}
		c := int(cut) % (len(in) + 1)
		if got, want := feedSplit(in, []int{c, c + int(cut)%5}), utf8.Valid(in); got != want {
			t.Fatalf("utf8State %v, utf8.Valid %v for %q cut at %d", got, want, in, c)
		}
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sameOutcome(a, b outcome) bool {
	return slices.EqualFunc(a.msgs, b.msgs, func(x, y parsedMsg) bool { return x.op == y.op && bytes.Equal(x.data, y.data) }) &&
		a.fail == b.fail && a.eof == b.eof && (a.closed == nil) == (b.closed == nil) &&
		(a.closed == nil || *a.closed == *b.closed)
}

// captureConn is a net.Conn that reads a fixed input and records what is written to it.
type captureConn struct {
	memConn
	out bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// hijacker is the http.ResponseWriter of a request whose connection is c.
type hijacker struct {
	c net.Conn
	h http.Header
}

func (w *hijacker) Header() http.Header         { return w.h }
func (w *hijacker) Write(b []byte) (int, error) { return len(b), nil }
func (w *hijacker) WriteHeader(int)             {}
func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.c, bufio.NewReadWriter(bufio.NewReader(w.c), bufio.NewWriter(w.c)), nil
}

// libDecode reads in with fasthttp/websocket's own reader, as the server side of a connection
// (its Upgrader on a connection that reads in): messages until an error. A violation's close
// code is the one the library writes back (0 when it writes none).
func libDecode(tb testing.TB, in []byte, max int64) (o outcome, failCode int) {
	cc := &captureConn{memConn: memConn{r: bytes.NewReader(in)}}
	r := &http.Request{Method: http.MethodGet, Header: http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
	}}
	c, err := (&websocket.Upgrader{}).Upgrade(&hijacker{c: cc, h: http.Header{}}, r, nil)
	if err != nil {
		tb.Fatalf("library upgrade: %v", err)
	}
	c.SetReadLimit(max)
	for {
		typ, data, err := c.ReadMessage()
		if err == nil {
			o.msgs = append(o.msgs, parsedMsg{byte(typ), data})
			continue
		}
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
			o.eof = true // the library's name for the end of the input
		case errors.As(err, &ce):
			o.closed = &closeReceived{code: ce.Code, text: ce.Text}
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			o.eof = true
		default:
			o.fail = &frameError{text: err.Error()}
			failCode = lastCloseCode(cc.out.Bytes())
		}
		return o, failCode
	}
}

// lastCloseCode returns the code of the last close frame in the server frames after the HTTP
// response in b (0 when there is none).
func lastCloseCode(b []byte) int {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return 0
	}
	b = b[i+4:]
	code := 0
	for len(b) >= 2 {
		h, need, err := parseHeader(b, sideServer)
		if err != nil || need > 0 || int64(len(b)-h.hlen) < h.plen {
			break
		}
		if p := b[h.hlen : h.hlen+int(h.plen)]; h.op == opClose && len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		b = b[h.hlen+int(h.plen):]
	}
	return code
}

// FuzzParserVsLibrary is the differential target: the same bytes read by the parser and by
// fasthttp/websocket's reader (the player's direction: masked frames, a message limit) must give
// the same messages and end the same way — the same close frame, the end of the input, or a
// violation with the same close code. Where the two legitimately differ, the parser is the
// stricter, as RFC 6455 asks, and the test says so case by case:
//   - text messages: the library does not validate UTF-8; where the parser fails with 1007 the
//     library returns the invalid text (or ends before the message does);
//   - a close reason that is not UTF-8: 1007 from the parser, 1002 from the library;
//   - a close frame with a 1-byte payload: 1002 from the parser, "no status" (1005) from the
//     library;
//   - a 64-bit length with its top bit set: 1002 from the parser, the library's read limit error;
//   - close code 1014 (bad gateway, registered with IANA after RFC 6455): the parser takes it,
//     the library refuses it (Usher forwards it as 1000 for that reason: forwardCode);
//   - input that ends inside a header the library refuses from its first bytes (a continuation
//     without a message, a length over the limit): the parser waits for the whole header before
//     it checks the frame against the message, and then refuses it too.
func FuzzParserVsLibrary(f *testing.F) {
	f.Add(clientFrame(0x81, []byte("hello")))
	f.Add(slices.Concat(clientFrame(0x01, []byte("x\xe2")), clientFrame(0x89, []byte("p")), clientFrame(0x80, []byte("\x82\xac"))))
	f.Add(slices.Concat(clientFrame(0x02, make([]byte, 60)), clientFrame(0x80, make([]byte, 41))))
	f.Add(slices.Concat(clientFrame(0x82, []byte{1, 2}), closeFrame(4000, "bye")))
	f.Add(closeFrame(1005, ""))
	f.Add(closeFrame(1000, "\xff"))
	f.Add(clientFrame(0x88, []byte{3}))
	f.Add(clientFrame(0x88, nil))
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xFE, 0x00, 0x10, 1, 2, 3, 4})
	f.Add(clientFrame(0x01, []byte("\xed\xa0")))
	f.Add(clientFrame(0x81, []byte("\xff")))
	f.Add(clientFrame(0xC1, nil))
	f.Add(clientFrame(0x80, []byte("x")))
	f.Add(slices.Concat(clientFrame(0x01, []byte("a")), clientFrame(0x81, []byte("b"))))
	f.Add([]byte{0x81, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 100
		ours := decodeAll(sideClient, max, in, 0)
		lib, libCode := libDecode(t, in, max)
		same := func(a, b parsedMsg) bool { return a.op == b.op && bytes.Equal(a.data, b.data) }
		if ours.fail == errBadUTF8 {
			n := len(ours.msgs)
			if len(lib.msgs) < n || !slices.EqualFunc(ours.msgs, lib.msgs[:n], same) {
				t.Fatalf("messages before the invalid text differ: ours %q, library %q", ours.msgs, lib.msgs)
			}
			if len(lib.msgs) > n && (lib.msgs[n].op != opText || utf8.Valid(lib.msgs[n].data)) {
				t.Fatalf("parser: invalid UTF-8; library: message %q (op %d)", lib.msgs[n].data, lib.msgs[n].op)
			}
			return
		}
		if !slices.EqualFunc(ours.msgs, lib.msgs, same) {
			t.Fatalf("messages: ours %q, library %q (ours ends %+v, library %+v)", ours.msgs, lib.msgs, ours, lib)
		}
		switch {
		case ours.inHead && lib.fail != nil:
			// The input ends inside a header that the library refused from its first bytes
			// (a continuation without a message, a length over the limit); the parser checks
			// a frame against the message once its header is whole, and then refuses it.
		case ours.eof:
			if !lib.eof {
				t.Fatalf("parser: end of input; library: %+v (close %d)", lib, libCode)
			}
		case ours.closed != nil && ours.closed.code == 1014:
			// 1014 (bad gateway) is registered with IANA after RFC 6455; the library refuses it.
			if lib.fail == nil {
				t.Fatalf("parser: close 1014; library: %+v", lib)
			}
		case ours.closed != nil:
			if lib.closed == nil || *lib.closed != *ours.closed {
				t.Fatalf("parser: close %+v; library: %+v %v", *ours.closed, lib.closed, lib.fail)
			}
		case ours.fail == errCloseLength:
			if lib.closed == nil || lib.closed.code != closeNoStatus {
				t.Fatalf("parser: 1-byte close payload; library: %+v", lib)
			}
		case ours.fail == errBadLength:
			// (Or a violation the library found in the header's first bytes: the same 1002.)
			if lib.fail == nil || (lib.fail.text != websocket.ErrReadLimit.Error() && libCode != closeProtocolError) {
				t.Fatalf("parser: 64-bit length with the top bit; library: %+v", lib)
			}
		case ours.fail == errCloseReason:
			if lib.fail == nil || libCode != closeProtocolError {
				t.Fatalf("parser: close reason not UTF-8; library: %+v (close %d)", lib, libCode)
			}
		default:
			if lib.fail == nil || libCode != ours.fail.code {
				t.Fatalf("parser: %v; library: %+v (close %d)", ours.fail, lib, libCode)
			}
		}
	})
}
