package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usher-gg/usher/internal/metrics"
)

func TestMaskBytesMatchesNaive(t *testing.T) {
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		want := bytes.Clone(b)
		for i := range want {
			want[i] ^= key[i%4]
		}
		maskBytes(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("n=%d: got %x, want %x", n, b, want)
		}
	}
}

func TestBucket(t *testing.T) {
	const sec = int64(time.Second)
	b := newBucket(10, 0) // burst 20
	for i := range 20 {
		if !b.take(0) {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	if b.take(0) {
		t.Fatal("21st take in the same instant allowed")
	}
	if !b.take(sec / 10) { // 100ms refills one token
		t.Fatal("refill after 100ms refused")
	}
	if b.take(sec / 10) {
		t.Fatal("second take after a one-token refill allowed")
	}
	if !b.take(1000 * sec) {
		t.Fatal("take after a long idle refused")
	}
	n := 0
	for b.take(1000 * sec) {
		n++
	}
	if n != 19 {
		t.Errorf("burst after idle: %d more, want 19", n)
	}
	unlimited := newBucket(0, 0)
	for range 10000 {
		if !unlimited.take(0) {
			t.Fatal("rate 0 must be unlimited")
		}
	}
}

func TestCloseCodes(t *testing.T) {
	tests := []struct {
		code          int
		valid         bool // may arrive in a close frame
		forwardedAs   int
		forwardedSame bool
	}{
		{999, false, 1000, false},
		{1000, true, 1000, true},
		{1001, true, 1001, true},
		{1003, true, 1003, true},
		{1004, false, 1000, false},
		{1005, false, 1000, false},
		{1006, false, 1000, false},
		{1007, true, 1007, true},
		{1011, true, 1011, true},
		{1013, true, 1013, true},
		{1014, true, 1000, false},
		{1015, false, 1000, false},
		{2999, false, 1000, false},
		{3000, true, 3000, true},
		{4999, true, 4999, true},
		{5000, false, 1000, false},
	}
	for _, tt := range tests {
		if got := validReceivedCode(tt.code); got != tt.valid {
			t.Errorf("validReceivedCode(%d) = %v, want %v", tt.code, got, tt.valid)
		}
		if got := forwardCode(tt.code); got != tt.forwardedAs {
			t.Errorf("forwardCode(%d) = %d, want %d", tt.code, got, tt.forwardedAs)
		}
	}
}

func TestClosePayload(t *testing.T) {
	var buf [maxControlPayload]byte
	if got := closePayload(&buf, closeNoStatus, "ignored"); len(got) != 0 {
		t.Errorf("1005: got %x, want empty", got)
	}
	got := closePayload(&buf, 4000, "bye")
	if binary.BigEndian.Uint16(got) != 4000 || string(got[2:]) != "bye" {
		t.Errorf("got %x", got)
	}
	long := strings.Repeat("é", 100) // 200 bytes: cut on a rune boundary
	got = closePayload(&buf, 1000, long)
	if len(got) > maxControlPayload || !utf8.Valid(got[2:]) || len(got[2:]) != 122 {
		t.Errorf("long reason: %d bytes, valid %v", len(got), utf8.Valid(got[2:]))
	}
}

func TestHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		for _, masked := range []bool{false, true} {
			b := make([]byte, headerLen(n, masked))
			var key *[4]byte
			if masked {
				key = &[4]byte{1, 2, 3, 4}
			}
			putHeader(b, opBinary, n, key)
			p := &Proxy{cfg: Config{MaxMessageBytes: 1 << 30}}
			side := sideServer
			if masked {
				side = sideClient
			}
			l := &leg{p: p, side: side, in: &buffer{b: make([]byte, 64)}}
			l.w = copy(l.in.b, b)
			h, err := l.readHeader()
			if err != nil {
				t.Fatalf("n=%d masked=%v: %v", n, masked, err)
			}
			if h.plen != int64(n) || h.hlen != len(b) || !h.fin || h.op != opBinary || h.masked != masked {
				t.Errorf("n=%d masked=%v: got %+v", n, masked, h)
			}
		}
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{
		MaxMessageBytes: 64 << 10, PingInterval: 20 * time.Second, PongWait: 10 * time.Second,
		WriteTimeout: 10 * time.Second, DialTimeout: 5 * time.Second, HandshakeTimeout: 10 * time.Second,
		CloseGrace: 2 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096, Relay: RelayGoroutines,
	}
	if eventLoopSupported {
		want.Relay = RelayEventLoop
	}
	if c != want {
		t.Errorf("defaults: got %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"negative rate", func(c *Config) { c.MaxMessagesPerSecond = -1 }},
		{"tiny read buffer", func(c *Config) { c.ReadBufferSize = 100 }},
		{"tiny write buffer", func(c *Config) { c.WriteBufferSize = 10 }},
		{"negative ping", func(c *Config) { c.PingInterval = -time.Second }},
		{"negative size", func(c *Config) { c.MaxMessageBytes = -1 }},
		{"unknown relay", func(c *Config) { c.Relay = "threads" }},
		{"negative loops", func(c *Config) { c.Loops = -1 }},
	}
	for _, tt := range tests {
		c := want
		tt.edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", tt.name, c)
		}
	}
}

func TestBufPoolClasses(t *testing.T) {
	p := newBufPool(4096, 64<<10+msgHeadroom)
	for _, tt := range []struct{ n, size int }{{1, 4096}, {4096, 4096}, {4097, 16384}, {16385, 65536}, {65536, 65536}, {65537, 65536 + msgHeadroom}, {65536 + msgHeadroom, 65536 + msgHeadroom}} {
		b := p.get(tt.n)
		if len(b.b) != tt.size {
			t.Errorf("get(%d): %d bytes, want %d", tt.n, len(b.b), tt.size)
		}
		p.put(b)
	}
}

// memConn is a net.Conn reading from a fixed input and discarding writes.
type memConn struct {
	r io.Reader
}

func (c *memConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(t time.Time) error    { return nil }
func (c *memConn) CloseWrite() error                { return nil }

// FuzzReadMessage feeds arbitrary bytes to a player leg: the reader must never panic, must
// never return more than MaxMessageBytes, and must only return valid UTF-8 text.
func FuzzReadMessage(f *testing.F) {
	mask := func(b0 byte, payload string) []byte {
		key := [4]byte{1, 2, 3, 4}
		out := []byte{b0, 0x80 | byte(len(payload))}
		out = append(out, key[:]...)
		for i := range len(payload) {
			out = append(out, payload[i]^key[i%4])
		}
		return out
	}
	f.Add(mask(0x81, "hello"))
	f.Add(append(mask(0x01, "frag"), mask(0x80, "ment")...))
	f.Add(append(mask(0x89, "ping"), mask(0x82, "bin")...))
	f.Add(mask(0x88, "\x03\xe8bye"))
	f.Add([]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x10, 0, 1, 2, 3, 4})
	f.Add([]byte{0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := Config{MaxMessageBytes: 300, ReadBufferSize: 256, WriteBufferSize: 256}
		cfg.SetDefaults()
		p := New(cfg, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
		var l leg
		l.init(p, sideClient, &memConn{r: bytes.NewReader(in)}, false)
		for {
			op, data, off, err := l.readMessage()
			if err != nil {
				var fe *frameError
				var cr *closeReceived
				if !errors.As(err, &fe) && !errors.As(err, &cr) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			payload := data[off:]
			if int64(len(payload)) > cfg.MaxMessageBytes {
				t.Fatalf("returned %d bytes, over the limit", len(payload))
			}
			if off < headerLen(len(payload), true) { // written masked to the game server
				t.Fatalf("no room for the outgoing header: off %d for %d bytes", off, len(payload))
			}
			if op == opText && !utf8.Valid(payload) {
				t.Fatal("invalid UTF-8 text returned")
			}
			if op != opText && op != opBinary {
				t.Fatalf("returned opcode %d", op)
			}
		}
	})
}
