package proxy_test

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// TestConformance is an Autobahn-style table run against the running proxy: a raw client on a
// real socket writes frames, Usher relays to a real echo game server, and the client checks the
// messages that come back, or the close code it gets. Like every test here it runs on both relay
// engines (TestOtherRelayEngine).
func TestConformance(t *testing.T) {
	type msg struct {
		op   byte
		data string
	}
	txt := func(s string) msg { return msg{0x1, s} }
	bin := func(s string) msg { return msg{0x2, s} }
	cat := func(frames ...[]byte) []byte { return slices.Concat(frames...) }
	f := func(b0 byte, p string) []byte { return frame(b0, []byte(p), false) }
	closeF := func(code int, reason string) []byte {
		return f(0x88, string(binary.BigEndian.AppendUint16(nil, uint16(code)))+reason)
	}
	const limit = 64 << 10 // testConfig's MaxMessageBytes
	big := string(bytes.Repeat([]byte("ab"), limit/2))
	tests := []struct {
		name  string
		in    []byte
		want  []msg  // echoed, in order
		then  []byte // sent once the echoes are in
		pongs int    // pongs expected before the echoes are all in
		close int    // the close code the client gets; 0: none (the client then closes with 1000)
	}{
		// 1.x, 2.x: framing and control frames.
		{name: "1.1.1 empty text", in: f(0x81, ""), want: []msg{txt("")}},
		{name: "1.1.2 text 125", in: f(0x81, string(bytes.Repeat([]byte("*"), 125))), want: []msg{txt(string(bytes.Repeat([]byte("*"), 125)))}},
		{name: "1.2.4 binary 65535 (16-bit length)", in: f(0x82, big[:65535]), want: []msg{bin(big[:65535])}},
		{name: "1.2.6 binary at the limit (64-bit length)", in: f(0x82, big), want: []msg{bin(big)}},
		{name: "2.2 ping 125 answered", in: cat(f(0x89, string(bytes.Repeat([]byte("p"), 125))), f(0x81, "after")), pongs: 1, want: []msg{txt("after")}},
		{name: "2.5 ping 126", in: f(0x89, string(bytes.Repeat([]byte("p"), 126))), close: 1002},
		{name: "2.x unsolicited pong ignored", in: cat(f(0x8A, "unasked"), f(0x81, "x")), want: []msg{txt("x")}},
		{name: "3.1 RSV1", in: f(0xC1, "x"), close: 1002},
		{name: "3.2 RSV2 after a good message", in: f(0x81, "ok"), want: []msg{txt("ok")}, then: f(0xA1, "x"), close: 1002},
		{name: "3.3 RSV3 on a ping", in: f(0x99, ""), close: 1002},
		{name: "4.1.1 opcode 3", in: f(0x83, ""), close: 1002},
		{name: "4.2.1 opcode 0xB", in: f(0x8B, ""), close: 1002},
		{name: "unmasked client frame", in: frame(0x81, []byte("x"), true), close: 1002},
		{name: "64-bit length with the top bit set", in: []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, close: 1002},
		// 5.x: fragmentation.
		{name: "5.1 fragmented ping", in: f(0x09, "x"), close: 1002},
		{name: "5.3 text in 2 fragments", in: cat(f(0x01, "frag"), f(0x80, "ment")), want: []msg{txt("fragment")}},
		{name: "5.6 ping between fragments", in: cat(f(0x01, "a"), f(0x89, "p"), f(0x80, "b")), pongs: 1, want: []msg{txt("ab")}},
		{name: "5.8 pings and pongs between many fragments", in: cat(f(0x02, "1"), f(0x89, ""), f(0x00, "2"), f(0x8A, ""), f(0x00, "3"), f(0x89, "x"), f(0x80, "4")), pongs: 2, want: []msg{bin("1234")}},
		{name: "5.9 continuation without a start", in: f(0x80, "x"), close: 1002},
		{name: "5.15 text inside a fragmented message", in: cat(f(0x01, "a"), f(0x81, "b")), close: 1002},
		{name: "5.19 empty fragments", in: cat(f(0x01, ""), f(0x00, ""), f(0x80, "")), want: []msg{txt("")}},
		{name: "5.x fragments over the read buffer", in: cat(f(0x02, big[:5000]), f(0x80, big[:5000])), want: []msg{bin(big[:10000])}},
		// 6.x: UTF-8.
		{name: "6.2.3 euro sign split across 3 fragments", in: cat(f(0x01, "x\xe2"), f(0x00, "\x82"), f(0x80, "\xacy")), want: []msg{txt("x€y")}},
		{name: "6.2.4 4-byte character split, a ping between", in: cat(f(0x01, "\xf0\x9d"), f(0x89, ""), f(0x80, "\x84\x9e")), pongs: 1, want: []msg{txt("𝄞")}},
		{name: "6.3 invalid UTF-8 in one frame", in: f(0x81, "κόσμε\xed\xa0\x80edited"), close: 1007},
		{name: "6.4.1 invalid UTF-8 fails at its fragment (message never finished)", in: f(0x01, "κόσμε\xf4\x90\x80\x80"), close: 1007},
		{name: "6.4.2 surrogate prefix fails at once", in: f(0x01, "ok\xed\xa0"), close: 1007},
		{name: "6.x message ends inside a character", in: cat(f(0x01, "a"), f(0x80, "\xe2\x82")), close: 1007},
		{name: "6.x overlong", in: f(0x81, "\xc0\xaf"), close: 1007},
		{name: "6.x binary is not UTF-8 checked", in: f(0x82, "\xff\xfe"), want: []msg{bin("\xff\xfe")}},
		// 7.x: close.
		{name: "7.1.1 close after a message", in: f(0x81, "bye"), want: []msg{txt("bye")}, then: closeF(1000, ""), close: 1000},
		{name: "7.3.1 empty close", in: f(0x88, ""), close: 1005},
		{name: "7.3.2 close with 1 byte", in: f(0x88, "\x03"), close: 1002},
		{name: "7.3.6 close reason of 123 bytes", in: closeF(1000, string(bytes.Repeat([]byte("r"), 123))), close: 1000},
		{name: "7.5.1 close reason not UTF-8", in: closeF(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), close: 1007},
		{name: "7.7 close 1001", in: closeF(1001, ""), close: 1001},
		{name: "7.7 close 1003", in: closeF(1003, ""), close: 1003},
		{name: "7.7 close 1007", in: closeF(1007, ""), close: 1007},
		{name: "7.7 close 1011", in: closeF(1011, ""), close: 1011},
		{name: "7.7 close 1014", in: closeF(1014, ""), close: 1014},
		{name: "7.7 close 3000", in: closeF(3000, ""), close: 3000},
		{name: "7.7 close 4999", in: closeF(4999, ""), close: 4999},
		{name: "7.9 close 0", in: closeF(0, ""), close: 1002},
		{name: "7.9 close 999", in: closeF(999, ""), close: 1002},
		{name: "7.9 close 1004", in: closeF(1004, ""), close: 1002},
		{name: "7.9 close 1005", in: closeF(1005, ""), close: 1002},
		{name: "7.9 close 1006", in: closeF(1006, ""), close: 1002},
		{name: "7.9 close 1015", in: closeF(1015, ""), close: 1002},
		{name: "7.9 close 2999", in: closeF(2999, ""), close: 1002},
		{name: "7.9 close 5000", in: closeF(5000, ""), close: 1002},
		// 9.x: limits.
		{name: "9.x one frame over the limit", in: f(0x82, big+"x"), close: 1009},
		// Only the second fragment's header is sent: the limit holds before its payload.
		{name: "9.x limit across fragments", in: cat(f(0x02, big[:40000]), f(0x80, big[:30000])[:10]), close: 1009},
		{name: "9.x exactly the limit across fragments", in: cat(f(0x02, big[:40000]), f(0x80, big[40000:])), want: []msg{bin(big)}},
	}
	h := newHarness(t, testConfig())
	up := newUpstream(t, echo)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := h.rawDial(up, "conformance")
			up.nextRequest(t)
			rc.send(tt.in)
			var got []msg
			pongs := 0
			code := 0
			then := tt.then
			for code == 0 && (len(got) < len(tt.want) || pongs < tt.pongs || tt.close != 0) {
				if then != nil && len(got) == len(tt.want) && pongs == tt.pongs {
					rc.send(then)
					then = nil
				}
				b0, p, err := rc.readFrame()
				if err != nil {
					t.Fatalf("after %d messages, %d pongs: %v (want close %d)", len(got), pongs, err, tt.close)
				}
				switch op := b0 & 0x0f; {
				case b0&0x80 == 0:
					t.Fatalf("Usher sent a fragment (0x%02x): messages are relayed whole", b0)
				case op == 0xA:
					pongs++
				case op == 0x8:
					code = 1005
					if len(p) >= 2 {
						code = int(binary.BigEndian.Uint16(p))
					}
				default:
					got = append(got, msg{op, string(p)})
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("echoed %d messages %.60q, want %d %.60q", len(got), got, len(tt.want), tt.want)
			}
			if pongs != tt.pongs {
				t.Errorf("%d pongs, want %d", pongs, tt.pongs)
			}
			if code != tt.close {
				t.Errorf("close %d, want %d", code, tt.close)
			}
			if tt.close == 0 {
				rc.send(frame(0x88, []byte{0x03, 0xe8}, false))
				rc.expectClose(1000)
			}
		})
	}
	h.waitIdle()
}
