package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/metrics"
	"github.com/usher-gg/usher/internal/proxy"
)

func TestRelayMessagesBothWays(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, echo)
	c := h.dial(up, "p1")

	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB: exactly MaxMessageBytes
	tests := []struct {
		name string
		typ  int
		data []byte
	}{
		{"empty text", websocket.TextMessage, []byte{}},
		{"short text", websocket.TextMessage, []byte("hello, Zoë 👋")},
		{"short binary", websocket.BinaryMessage, []byte{0, 1, 2, 0xff, 0xfe}},
		{"125 bytes", websocket.BinaryMessage, bytes.Repeat([]byte{7}, 125)},
		{"126 bytes", websocket.BinaryMessage, bytes.Repeat([]byte{8}, 126)},
		{"fills the read buffer", websocket.BinaryMessage, bytes.Repeat([]byte{9}, 4096-4-4)},
		{"just over the read buffer", websocket.TextMessage, bytes.Repeat([]byte("x"), 4096)},
		{"65535 bytes", websocket.BinaryMessage, big[:65535]},
		{"max size, 64-bit length", websocket.BinaryMessage, big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.WriteMessage(tt.typ, tt.data); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			typ, got, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if typ != tt.typ {
				t.Errorf("type: got %d, want %d", typ, tt.typ)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("payload: got %d bytes, want %d (equal prefix: %v)", len(got), len(tt.data), bytes.HasPrefix(tt.data, got[:min(len(got), 16)]))
			}
		})
	}

	t.Run("fragmented by the client, within the limit", func(t *testing.T) {
		// A 1 KiB write buffer makes the library send a 10 KiB message as ten frames.
		fc, _, err := (&websocket.Dialer{WriteBufferSize: 1024}).Dial(h.url(up, "p2"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer fc.Close()
		want := bytes.Repeat([]byte("fragment "), 1200)
		w, _ := fc.NextWriter(websocket.TextMessage)
		for i := 0; i < len(want); i += 700 {
			_, _ = w.Write(want[i:min(i+700, len(want))])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		typ, got, err := fc.ReadMessage()
		if err != nil || typ != websocket.TextMessage || !bytes.Equal(got, want) {
			t.Fatalf("got type %d, %d bytes, err %v; want the %d-byte text back", typ, len(got), err, len(want))
		}
	})

	t.Run("many messages in a burst keep their order", func(t *testing.T) {
		const n = 500
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			for i := range n {
				_ = c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "m%d", i))
			}
		}()
		defer func() { <-wrote }()
		for i := range n {
			_, got, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("m%d", i); string(got) != want {
				t.Fatalf("message %d: got %q, want %q", i, got, want)
			}
		}
	})

	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	h.waitIdle()
	if got := testutil.ToFloat64(h.m.ProxyMessages.WithLabelValues("client_to_server")); got < float64(len(tests)+1+500) {
		t.Errorf("client_to_server messages: got %v, want at least %d", got, len(tests)+1+500)
	}
	if got := testutil.ToFloat64(h.m.ProxyBytes.WithLabelValues("server_to_client")); got < float64(len(big)) {
		t.Errorf("server_to_client bytes: got %v", got)
	}
}

func TestGameServerLearnsWhoConnected(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, drain)
	c := h.dial(up, "player-42")
	r := up.nextRequest(t)

	type identity struct{ Player, Name, Room string }
	want := identity{"player-42", "Zoë player-42", "K7QX"}
	q := r.URL.Query()
	if diff := cmp.Diff(want, identity{q.Get(contract.QueryPlayer), q.Get(contract.QueryName), q.Get(contract.QueryRoom)}); diff != "" {
		t.Errorf("query parameters (-want +got):\n%s", diff)
	}
	hd := r.Header
	if diff := cmp.Diff(want, identity{hd.Get(contract.HeaderPlayer), hd.Get(contract.HeaderName), hd.Get(contract.HeaderRoom)}); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if r.URL.Path != "/" {
		t.Errorf("path: got %q, want /", r.URL.Path)
	}
	_ = c.Close()
	h.waitIdle()
	logs := h.logs.String()
	for _, kv := range []string{"player=player-42", "room=K7QX", "game=example", "gameserver=gs-1", "reason=client_gone"} {
		if !strings.Contains(logs, kv) {
			t.Errorf("logs lack %s:\n%s", kv, logs)
		}
	}
	// Each of the session's own lines says whose session it is (the logger is made per line).
	for _, msg := range []string{`msg="session started"`, `msg="session ended"`} {
		var line string
		for l := range strings.SplitSeq(logs, "\n") {
			if strings.Contains(l, msg) {
				line = l
			}
		}
		for _, kv := range []string{"player=player-42", "room=K7QX", "game=example", "gameserver=gs-1"} {
			if !strings.Contains(line, kv) {
				t.Errorf("%s line %q lacks %s", msg, line, kv)
			}
		}
	}
}

func TestCloseCodesPropagate(t *testing.T) {
	tests := []struct {
		name       string
		fromServer bool
		code       int
		text       string
		want       closeInfo // what the other side receives
		reason     string
	}{
		{"game server 4000", true, 4000, "kicked", closeInfo{4000, "kicked"}, "server_closed"},
		{"game server 1000", true, 1000, "round over", closeInfo{1000, "round over"}, "server_closed"},
		{"game server 1011", true, 1011, "boom", closeInfo{1011, "boom"}, "server_closed"},
		{"game server without code", true, websocket.CloseNoStatusReceived, "", closeInfo{1000, ""}, "server_closed"},
		{"game server 1014 is not forwarded", true, 1014, "bad gateway", closeInfo{1000, "bad gateway"}, "server_closed"},
		{"client 4001", false, 4001, "later", closeInfo{4001, "later"}, "client_closed"},
		{"client 3000", false, 3000, "", closeInfo{3000, ""}, "client_closed"},
		{"client 1001", false, 1001, "tab closed", closeInfo{1001, "tab closed"}, "client_closed"},
		{"client without code", false, websocket.CloseNoStatusReceived, "", closeInfo{1000, ""}, "client_closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			start := make(chan struct{})
			up := newUpstream(t, func(c *websocket.Conn, up *upstream) {
				if tt.fromServer {
					<-start
					_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(tt.code, tt.text), time.Now().Add(time.Second))
				}
				drain(c, up)
			})
			c := h.dial(up, "p1")
			up.nextRequest(t)
			if tt.fromServer {
				close(start)
				expectClose(t, c, tt.want)
			} else {
				if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(tt.code, tt.text), time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				if got := up.nextClose(t); got != tt.want {
					t.Errorf("game server got close %+v, want %+v", got, tt.want)
				}
				// The client gets its code echoed.
				echoed := closeInfo{tt.code, ""}
				if tt.code == websocket.CloseNoStatusReceived {
					echoed = closeInfo{websocket.CloseNoStatusReceived, ""}
				}
				expectClose(t, c, echoed)
			}
			h.waitReason(tt.reason, 1)
			h.waitIdle()
		})
	}
}

func TestGameServerDiesClientGets1011(t *testing.T) {
	h := newHarness(t, testConfig())
	kill := make(chan struct{})
	up := newUpstream(t, func(c *websocket.Conn, _ *upstream) {
		<-kill
		_ = c.NetConn().Close() // no close frame
	})
	c := h.dial(up, "p1")
	up.nextRequest(t)
	close(kill)
	expectClose(t, c, closeInfo{1011, "game server gone"})
	h.waitReason("server_gone", 1)
	h.waitIdle()
}

// A player whose connection breaks may come back: the game server hears CloseLost (4004), and
// keeps the seat for the reconnect grace.
func TestClientVanishesGameServerGets4004(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, drain)
	c := h.dial(up, "p1")
	up.nextRequest(t)
	_ = c.NetConn().Close() // no close frame
	if got, want := up.nextClose(t), (closeInfo{contract.CloseLost, "connection lost"}); got != want {
		t.Errorf("game server got %+v, want %+v", got, want)
	}
	h.waitReason("client_gone", 1)
	h.waitIdle()
}

func TestMessageTooBig(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes = 1000
	h := newHarness(t, cfg)
	up := newUpstream(t, echo)

	t.Run("at the limit is relayed", func(t *testing.T) {
		c := h.dial(up, "ok")
		want := bytes.Repeat([]byte{1}, 1000)
		_ = c.WriteMessage(websocket.BinaryMessage, want)
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
		_ = c.Close()
		if got := up.nextClose(t); got.Code != contract.CloseLost {
			t.Errorf("game server got %+v, want %d", got, contract.CloseLost)
		}
	})
	t.Run("one frame over", func(t *testing.T) {
		c := h.dial(up, "big")
		up.nextRequest(t)
		_ = c.WriteMessage(websocket.BinaryMessage, make([]byte, 1001))
		expectClose(t, c, closeInfo{1009, "message too big"})
		if got := up.nextClose(t); got.Code != 1001 {
			t.Errorf("game server got %+v, want 1001", got)
		}
	})
	t.Run("over across fragments", func(t *testing.T) {
		c, _, err := (&websocket.Dialer{WriteBufferSize: 256}).Dial(h.url(up, "frag"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		up.nextRequest(t)
		w, _ := c.NextWriter(websocket.TextMessage)
		for range 5 { // five 256-byte frames: each is small, together they are too big
			_, _ = w.Write(bytes.Repeat([]byte("a"), 256))
		}
		_ = w.Close()
		expectClose(t, c, closeInfo{1009, "message too big"})
		if got := up.nextClose(t); got.Code != 1001 {
			t.Errorf("game server got %+v, want 1001", got)
		}
	})
	t.Run("from the game server", func(t *testing.T) {
		up := newUpstream(t, func(c *websocket.Conn, up *upstream) {
			_ = c.WriteMessage(websocket.BinaryMessage, make([]byte, 5000))
			drain(c, up)
		})
		c := h.dial(up, "srv")
		expectClose(t, c, closeInfo{1011, "game server error"})
		if got := up.nextClose(t); got.Code != 1009 {
			t.Errorf("game server got %+v, want 1009", got)
		}
	})
	h.waitIdle()
	if got := h.closes("message_too_big"); got != 2 {
		t.Errorf("message_too_big closes: got %v, want 2", got)
	}
}

func TestInvalidUTF8(t *testing.T) {
	h := newHarness(t, testConfig())
	t.Run("from the client", func(t *testing.T) {
		up := newUpstream(t, echo)
		c := h.dial(up, "p1")
		up.nextRequest(t)
		_ = c.WriteMessage(websocket.TextMessage, []byte{'o', 'k', 0xff, 0xfe})
		expectClose(t, c, closeInfo{1007, "invalid UTF-8 in text message"})
		if got := up.nextClose(t); got.Code != 1001 {
			t.Errorf("game server got %+v, want 1001", got)
		}
		h.waitReason("invalid_utf8", 1)
	})
	t.Run("fragmented, from the client", func(t *testing.T) {
		up := newUpstream(t, echo)
		rc := h.rawDial(up, "p2")
		up.nextRequest(t)
		rc.send(frame(0x01, []byte("caf\xc3"), false)) // text, not final, ends mid-rune
		rc.send(frame(0x80, []byte("\xa9 ok"), false)) // continuation: completes é
		b0, p, err := rc.readFrame()
		if err != nil || b0 != 0x81 || string(p) != "café ok" {
			t.Fatalf("got %#x %q %v, want the joined text", b0, p, err)
		}
		rc.send(frame(0x01, []byte("caf\xc3"), false))
		rc.send(frame(0x80, []byte("("), false))
		rc.expectClose(1007)
		if got := up.nextClose(t); got.Code != 1001 {
			t.Errorf("game server got %+v, want 1001", got)
		}
	})
	t.Run("from the game server", func(t *testing.T) {
		up := newUpstream(t, func(c *websocket.Conn, up *upstream) {
			_ = c.WriteMessage(websocket.TextMessage, []byte{0xc0, 0x80})
			drain(c, up)
		})
		c := h.dial(up, "p3")
		expectClose(t, c, closeInfo{1011, "game server error"})
		if got := up.nextClose(t); got.Code != 1007 {
			t.Errorf("game server got %+v, want 1007", got)
		}
	})
	h.waitIdle()
}

func TestProtocolViolations(t *testing.T) {
	long := bytes.Repeat([]byte("p"), 126)
	tests := []struct {
		name  string
		send  []byte
		close int
	}{
		{"unmasked frame", frame(0x82, []byte("hi"), true), 1002},
		{"RSV1 without compression", frame(0xC2, []byte("hi"), false), 1002},
		{"RSV2", frame(0xA2, []byte("hi"), false), 1002},
		{"unknown data opcode", frame(0x83, []byte("hi"), false), 1002},
		{"unknown control opcode", frame(0x8B, nil, false), 1002},
		{"fragmented ping", frame(0x09, []byte("hi"), false), 1002},
		{"ping longer than 125", frame(0x89, long, false), 1002},
		{"continuation without a message", frame(0x80, []byte("hi"), false), 1002},
		{"new message inside a fragmented one", append(frame(0x01, []byte("a"), false), frame(0x81, []byte("b"), false)...), 1002},
		{"64-bit length with the top bit set", append([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, 1, 2, 3, 4), 1002},
		{"close with a 1-byte payload", frame(0x88, []byte{3}, false), 1002},
		{"close code 1005 on the wire", frame(0x88, []byte{0x03, 0xED}, false), 1002},
		{"close code 999", frame(0x88, []byte{0x03, 0xE7}, false), 1002},
		{"close code 5000", frame(0x88, []byte{0x13, 0x88}, false), 1002},
		{"close reason not UTF-8", frame(0x88, []byte{0x03, 0xE8, 0xff}, false), 1007},
	}
	h := newHarness(t, testConfig())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, drain)
			rc := h.rawDial(up, "p1")
			up.nextRequest(t)
			rc.send(tt.send)
			rc.expectClose(tt.close)
			if got := up.nextClose(t); got.Code != 1001 {
				t.Errorf("game server got %+v, want 1001", got)
			}
			// Usher closes the TCP connection after its close frame.
			_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, rc.br); err != nil {
				t.Errorf("after close: %v, want EOF", err)
			}
		})
	}
	h.waitIdle()
	if got := h.closes("protocol"); got != float64(len(tests)-1) { // the last is invalid_utf8
		t.Errorf("protocol closes: got %v, want 14", got)
	}

	t.Run("by the game server", func(t *testing.T) {
		up := newUpstream(t, func(c *websocket.Conn, up *upstream) {
			_, _ = c.NetConn().Write([]byte{0x82 | 0x40, 2, 'h', 'i'}) // RSV1 set
			drain(c, up)
		})
		c := h.dial(up, "p3")
		expectClose(t, c, closeInfo{1011, "game server error"})
		if got := up.nextClose(t); got != (closeInfo{1002, "reserved bits set"}) {
			t.Errorf("game server got %+v, want 1002", got)
		}
		h.waitReason("server_error", 1)
	})

	t.Run("pings are answered, interleaved control frames are fine", func(t *testing.T) {
		up := newUpstream(t, echo)
		rc := h.rawDial(up, "p2")
		rc.send(frame(0x89, []byte("ping-data"), false))
		if b0, p, err := rc.readFrame(); err != nil || b0 != 0x8A || string(p) != "ping-data" {
			t.Fatalf("got %#x %q %v, want pong ping-data", b0, p, err)
		}
		rc.send(frame(0x02, []byte("ab"), false))
		rc.send(frame(0x89, nil, false))
		rc.send(frame(0x8A, []byte("unsolicited"), false))
		rc.send(frame(0x80, []byte("cd"), false))
		if b0, _, err := rc.readFrame(); err != nil || b0 != 0x8A {
			t.Fatalf("got %#x %v, want pong", b0, err)
		}
		if b0, p, err := rc.readFrame(); err != nil || b0 != 0x82 || string(p) != "abcd" {
			t.Fatalf("got %#x %q %v, want binary abcd", b0, p, err)
		}
	})
}

func TestFloodClosed1008OthersUnaffected(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessagesPerSecond = 50 // burst 100
	h := newHarness(t, cfg)
	up := newUpstream(t, echo)

	calm := h.dial(up, "calm")
	for name, flood := range map[string]func(c *websocket.Conn) error{
		"messages": func(c *websocket.Conn) error { return c.WriteMessage(websocket.BinaryMessage, []byte("spam")) },
		"pings": func(c *websocket.Conn) error {
			return c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := h.dial(up, "flood-"+name)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range 1000 {
					if flood(c) != nil {
						return
					}
				}
			}()
			expectClose(t, c, closeInfo{1008, "rate limit exceeded"})
			<-done
			// The calm session still echoes, promptly.
			start := time.Now()
			if err := calm.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
				t.Fatal(err)
			}
			if _, got, err := calm.ReadMessage(); err != nil || string(got) != "still here" {
				t.Fatalf("calm session: %q %v", got, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("calm echo took %s", d)
			}
		})
	}
	h.waitReason("policy", 2)
	_ = calm.Close()
	h.waitIdle()
}

func TestSlowReaderIsDroppedOthersUnaffected(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	h := newHarness(t, cfg)
	blast := newUpstream(t, func(c *websocket.Conn, up *upstream) {
		go drain(c, up)
		msg := make([]byte, 32<<10)
		for {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				return
			}
		}
	})
	up := newUpstream(t, echo)
	calm := h.dial(up, "calm")

	// The slow client never reads, and keeps its receive buffer small.
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	slow, _, err := d.Dial(h.url(blast, "slow"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	for i := range 20 {
		if err := calm.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := calm.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	h.waitReason("slow_client", 1)
	if got := blast.nextClose(t); got.Code != contract.CloseLost {
		t.Errorf("game server got %+v, want %d", got, contract.CloseLost)
	}
	if err := calm.WriteMessage(websocket.TextMessage, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := calm.ReadMessage(); err != nil || string(got) != "after" {
		t.Fatalf("calm session after the slow one: %q %v", got, err)
	}
	_ = calm.Close()
	h.waitIdle()
}

func TestKeepalive(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = 100 * time.Millisecond
	cfg.PongWait = 100 * time.Millisecond
	h := newHarness(t, cfg)

	t.Run("quiet legs that answer pings stay", func(t *testing.T) {
		var serverPings sync.WaitGroup
		serverPings.Add(3)
		var once [3]sync.Once
		n := 0
		var mu sync.Mutex
		up := newUpstream(t, func(c *websocket.Conn, up *upstream) {
			c.SetPingHandler(func(data string) error {
				mu.Lock()
				if n < 3 {
					once[n].Do(serverPings.Done)
					n++
				}
				mu.Unlock()
				return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
			})
			echo(c, up)
		})
		c := h.dial(up, "quiet")
		pings := make(chan struct{}, 100)
		c.SetPingHandler(func(data string) error {
			pings <- struct{}{}
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() { // reading runs the ping handler
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		time.Sleep(600 * time.Millisecond) // three idle windows of 200ms
		if got := len(pings); got < 3 {
			t.Errorf("client got %d pings in 600ms, want at least 3", got)
		}
		serverPings.Wait()
		if h.p.Sessions() != 1 {
			t.Fatalf("sessions: got %d, want the quiet session alive", h.p.Sessions())
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		h.waitIdle()
	})
	t.Run("client that does not answer is dropped", func(t *testing.T) {
		up := newUpstream(t, drain)
		rc := h.rawDial(up, "dead") // never reads, never answers
		_ = rc
		h.waitReason("client_timeout", 1)
		if got := up.nextClose(t); got.Code != contract.CloseLost {
			t.Errorf("game server got %+v, want %d", got, contract.CloseLost)
		}
		h.waitIdle()
	})
	t.Run("game server that does not answer is dropped", func(t *testing.T) {
		up := newUpstream(t, func(c *websocket.Conn, _ *upstream) {
			_, _ = io.Copy(io.Discard, c.NetConn()) // reads, never answers
		})
		c := h.dial(up, "alive")
		go func() {
			for {
				if _, _, err := c.NextReader(); err != nil {
					return
				}
			}
		}()
		h.waitReason("server_timeout", 1)
		h.waitIdle()
	})
}

// Shutdown closes every session with 1012 on both legs: the players reconnect through
// another replica, and the game servers keep their seats meanwhile.
func TestShutdownClosesWith1012(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, echo)
	var clients []*websocket.Conn
	for i := range 3 {
		c := h.dial(up, fmt.Sprintf("p%d", i))
		up.nextRequest(t)
		clients = append(clients, c)
	}
	waitFor(t, 5*time.Second, "3 sessions", func() bool { return h.p.Sessions() == 3 })

	results := make(chan error, len(clients))
	for _, c := range clients {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				_, _, err := c.ReadMessage()
				var ce *websocket.CloseError
				switch {
				case err == nil:
					continue
				case errors.As(err, &ce) && ce.Code == 1012 && ce.Text == "usher restarting: reconnect":
					results <- nil
				default:
					results <- fmt.Errorf("want close 1012 usher restarting: reconnect, got %v", err)
				}
				return
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range clients {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	for range clients {
		if got := up.nextClose(t); got != (closeInfo{1012, "usher restarting: reconnect"}) {
			t.Errorf("game server got %+v", got)
		}
	}
	if got := h.closes("shutdown"); got != 3 {
		t.Errorf("shutdown closes: got %v, want 3", got)
	}
	h.waitIdle()

	if _, err := h.p.Dial(context.Background(), proxy.Target{Addr: up.addr}); !errors.Is(err, proxy.ErrShuttingDown) {
		t.Errorf("Dial after Shutdown: got %v, want ErrShuttingDown", err)
	}
}

// TestDrainSpreadsCloses: Drain closes the sessions one by one over its window, not all at
// once, so that the players do not all reconnect at the same instant.
func TestDrainSpreadsCloses(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, echo)
	const n, window = 4, 600 * time.Millisecond
	var clients []*websocket.Conn
	for i := range n {
		clients = append(clients, h.dial(up, fmt.Sprintf("p%d", i)))
		up.nextRequest(t)
	}
	waitFor(t, 5*time.Second, "sessions", func() bool { return h.p.Sessions() == n })
	closedAt := make(chan time.Time, n)
	for _, c := range clients {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if !errors.As(err, &ce) || ce.Code != contract.CloseServiceRestart {
						t.Errorf("drained client: %v, want close 1012", err)
					}
					closedAt <- time.Now()
					return
				}
			}
		}()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.p.Drain(ctx, window); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	var last time.Duration
	for range n {
		last = max(last, (<-closedAt).Sub(start))
	}
	// Session i closes at i/n of the window: the last no sooner than 3/4 of it.
	if atLeast := window * (n - 1) / n; last < atLeast {
		t.Errorf("last session closed %v into the drain, want no sooner than %v (spread over %v)", last, atLeast, window)
	}
	h.waitIdle()
}

// A player cannot make the game server keep their seat by sending Usher's own "may come
// back" codes: those arrive as 1000.
func TestClientCannotForgeLost(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, drain)
	for _, code := range []int{contract.CloseLost, contract.CloseServiceRestart} {
		c := h.dial(up, fmt.Sprintf("p%d", code))
		up.nextRequest(t)
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "x"), time.Now().Add(time.Second))
		if got := up.nextClose(t); got.Code != 1000 {
			t.Errorf("client closed with %d: game server got %+v, want 1000", code, got)
		}
	}
	h.waitIdle()
}

func TestShutdownDeadlineDropsConnections(t *testing.T) {
	cfg := testConfig()
	cfg.CloseGrace = 5 * time.Second
	h := newHarness(t, cfg)
	// A game server that ignores close frames.
	up := newUpstream(t, func(c *websocket.Conn, _ *upstream) { _, _ = io.Copy(io.Discard, c.NetConn()) })
	c := h.dial(up, "p1")
	go func() { _, _ = io.Copy(io.Discard, c.NetConn()) }() // a client that ignores them too
	waitFor(t, 5*time.Second, "session", func() bool { return h.p.Sessions() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: got %v, want deadline exceeded", err)
	}
	h.waitIdle()
}

func TestDial(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	cfg := testConfig()
	cfg.DialTimeout = 300 * time.Millisecond
	p := proxy.New(cfg, m, nil)

	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr
	}()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	notWS := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.NotFoundHandler()}
	notWSln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = notWS.Serve(notWSln) }()
	defer notWS.Close()

	tests := []struct {
		name    string
		target  proxy.Target
		within  time.Duration
		errLike string
	}{
		{"closed port fails fast", proxy.Target{Addr: closedPort, Player: "p"}, 200 * time.Millisecond, "connection refused"},
		{"silent server times out", proxy.Target{Addr: silent.Addr().String(), Player: "p"}, time.Second, "deadline exceeded"},
		{"not a WebSocket server", proxy.Target{Addr: notWSln.Addr().String(), Player: "p"}, time.Second, "404"},
		{"header injection refused", proxy.Target{Addr: closedPort, Player: "p", Name: "x\r\nX-Admin: 1"}, 100 * time.Millisecond, "control characters"},
		{"no address", proxy.Target{Player: "p"}, 100 * time.Millisecond, "empty address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			up, err := p.Dial(context.Background(), tt.target)
			if err == nil {
				_ = up.Close()
				t.Fatal("Dial succeeded")
			}
			if d := time.Since(start); d > tt.within {
				t.Errorf("Dial took %s, want under %s", d, tt.within)
			}
			if tt.errLike == "deadline exceeded" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %q is not context.DeadlineExceeded", err)
			}
			if !strings.Contains(err.Error(), tt.errLike) {
				t.Errorf("error %q does not mention %q", err, tt.errLike)
			}
		})
	}
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := p.Dial(ctx, proxy.Target{Addr: silent.Addr().String()})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}

func TestUpstreamClosedWhenUpgradeFails(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, drain)
	// A plain GET: Dial succeeds, the upgrade does not.
	resp, err := http.Get(strings.Replace(h.url(up, "p1"), "ws://", "http://", 1))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status: got %s, want 400", resp.Status)
	}
	if got, want := up.nextClose(t), (closeInfo{1001, "client did not connect"}); got != want {
		t.Errorf("game server got %+v, want %+v", got, want)
	}
	h.waitIdle()
}

func TestHandshakeTimeoutReleasesGameServer(t *testing.T) {
	cfg := testConfig()
	// The timer usually expires before fasthttp hands the connection over, but a fast hijack
	// can still win the race (then the session starts and the client's going ends it: 4004,
	// the client closed its socket without a close frame). Either way the game server
	// connection must be released and nothing may be left behind.
	cfg.HandshakeTimeout = time.Nanosecond
	h := newHarness(t, cfg)
	up := newUpstream(t, drain)
	if c, _, err := websocket.DefaultDialer.Dial(h.url(up, "p1"), nil); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err == nil {
			t.Error("read a message from an abandoned session")
		}
		_ = c.Close()
	}
	got := up.nextClose(t)
	if got != (closeInfo{1001, "client did not connect"}) && got != (closeInfo{contract.CloseLost, "connection lost"}) {
		t.Errorf("game server got %+v, want 1001 \"client did not connect\" (or 4004 \"connection lost\" if the hijack won)", got)
	}
	h.waitIdle()
}

func TestCloseIsNotRateLimited(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessagesPerSecond = 5 // burst 10
	h := newHarness(t, cfg)
	up := newUpstream(t, drain)
	rc := h.rawDial(up, "p1")
	up.nextRequest(t)
	for range 10 {
		rc.send(frame(0x82, []byte("x"), false))
	}
	rc.send(frame(0x88, []byte{0x0f, 0xa1}, false)) // close 4001, with the bucket empty
	if got := up.nextClose(t); got.Code != 4001 {
		t.Errorf("game server got %+v, want 4001", got)
	}
	h.waitReason("client_closed", 1)
}

func TestGameServerMessageRightAfterHandshake(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, func(c *websocket.Conn, up *upstream) {
		_ = c.WriteMessage(websocket.TextMessage, []byte("welcome"))
		echo(c, up)
	})
	c := h.dial(up, "p1")
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "welcome" {
		t.Fatalf("got %q %v, want welcome", got, err)
	}
}

func TestSessionCleanupManyCycles(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, echo)
	for cycle := range 3 {
		var conns []*websocket.Conn
		for i := range 20 {
			c := h.dial(up, fmt.Sprintf("c%d-%d", cycle, i))
			if err := c.WriteMessage(websocket.BinaryMessage, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		waitFor(t, 5*time.Second, "20 sessions", func() bool { return h.p.Sessions() == 20 })
		if got := testutil.ToFloat64(h.m.ProxySessions); got != 20 {
			t.Errorf("sessions gauge: got %v, want 20", got)
		}
		for i, c := range conns {
			if i%2 == 0 {
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			} else {
				_ = c.Close()
			}
		}
		h.waitIdle()
	}
	if got := h.closes("client_closed") + h.closes("client_gone"); got != 60 {
		t.Errorf("closes: got %v, want 60", got)
	}
}

// TestKeepHijackedConns runs the main flows with a Fiber app that keeps hijacked connections,
// where Upgrade relays on a goroutine of its own and fasthttp frees the request's memory.
func TestKeepHijackedConns(t *testing.T) {
	h := newHarness(t, testConfig(), keepHijackedConns)

	t.Run("echo and client close", func(t *testing.T) {
		up := newUpstream(t, echo)
		c := h.dial(up, "p1")
		for _, msg := range []string{"a", strings.Repeat("b", 5000)} {
			_ = c.WriteMessage(websocket.TextMessage, []byte(msg))
			if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
				t.Fatalf("echo: %d bytes, %v", len(got), err)
			}
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "later"), time.Now().Add(time.Second))
		if got := up.nextClose(t); got != (closeInfo{4001, "later"}) {
			t.Errorf("game server got %+v", got)
		}
		h.waitIdle()
	})
	t.Run("client vanishes", func(t *testing.T) {
		up := newUpstream(t, drain)
		c := h.dial(up, "p2")
		up.nextRequest(t)
		_ = c.NetConn().Close()
		if got := up.nextClose(t); got.Code != contract.CloseLost {
			t.Errorf("game server got %+v, want %d", got, contract.CloseLost)
		}
		h.waitIdle()
	})
	t.Run("game server dies", func(t *testing.T) {
		up := newUpstream(t, func(c *websocket.Conn, _ *upstream) { _ = c.NetConn().Close() })
		c := h.dial(up, "p3")
		expectClose(t, c, closeInfo{1011, "game server gone"})
		h.waitIdle()
	})
	t.Run("shutdown", func(t *testing.T) {
		up := newUpstream(t, echo)
		c := h.dial(up, "p4")
		waitFor(t, 5*time.Second, "session", func() bool { return h.p.Sessions() == 1 })
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = h.p.Shutdown(ctx)
		}()
		expectClose(t, c, closeInfo{1012, "usher restarting: reconnect"})
		h.waitIdle()
	})
}

// TestKick: Kick ends the sessions of one player in one room: the player gets 4003
// "joined another room", the game server 1001; other players, and the same player's
// sessions in other rooms, go on.
func TestKick(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, echo)
	kicked := h.dial(up, "p1")
	up.nextRequest(t)
	other := h.dial(up, "p2")
	up.nextRequest(t)
	waitFor(t, 5*time.Second, "2 sessions", func() bool { return h.p.Sessions() == 2 })

	if n := h.p.Kick("p1", "ZZZZ"); n != 0 {
		t.Errorf("Kick in another room ended %d sessions, want 0", n)
	}
	if n := h.p.Kick("p1", "K7QX"); n != 1 {
		t.Fatalf("Kick ended %d sessions, want 1", n)
	}
	expectClose(t, kicked, closeInfo{proxy.CloseMoved, "joined another room"})
	if got := up.nextClose(t); got != (closeInfo{1001, "player joined another room"}) {
		t.Errorf("game server got close %+v, want 1001 player joined another room", got)
	}
	h.waitReason("moved", 1)
	// p2 still relays.
	if err := other.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_ = other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := other.ReadMessage(); err != nil || string(b) != "hi" {
		t.Errorf("p2 after the kick: %q, %v", b, err)
	}
}
