package proxy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/contract"
)

// TestBackpressureLosesNothing has a game server send faster than its player reads: the relay
// must hold the game server back (not drop, not buffer without bound, not close the session
// while the player still reads within WriteTimeout) and deliver every message in order.
func TestBackpressureLosesNothing(t *testing.T) {
	h := newHarness(t, testConfig())
	const n, size = 200, 32 << 10 // 6.4 MB: far more than the socket buffers hold
	up := newUpstream(t, func(c *websocket.Conn, up *upstream) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			drain(c, up)
		}()
		msg := make([]byte, size)
		for i := range n {
			binary.BigEndian.PutUint32(msg, uint32(i))
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				return
			}
		}
		<-done // keep the connection until the player is done
	})
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(32 << 10)
		}
		return c, err
	}}
	c, _, err := d.Dial(h.url(up, "slow-but-reading"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		if i%20 == 0 {
			time.Sleep(20 * time.Millisecond) // a reader slower than the sender
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(got) != size || binary.BigEndian.Uint32(got) != uint32(i) {
			t.Fatalf("message %d: got %d bytes numbered %d", i, len(got), binary.BigEndian.Uint32(got))
		}
	}
	if h.p.Sessions() != 1 {
		t.Fatalf("sessions: %d, want the session alive", h.p.Sessions())
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	h.waitIdle()
}

// TestEventLoopHoldsNoGoroutinePerSession checks the point of the event loop: relayed sessions
// cost no goroutine of their own, only the loops (at most GOMAXPROCS) and the coarse clock.
func TestEventLoopHoldsNoGoroutinePerSession(t *testing.T) {
	cfg, ok := eventLoopConfig(t, "runs two goroutines per session")
	if !ok {
		return
	}
	h := newHarness(t, cfg, keepHijackedConns)
	up := newUpstream(t, echo)
	const sessions = 40
	var conns []*websocket.Conn
	for i := range sessions {
		c := h.dial(up, fmt.Sprintf("p%d", i))
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 5*time.Second, "sessions", func() bool { return h.p.Sessions() == sessions })
	limit := runtime.GOMAXPROCS(0) + 1 // the loops and the clock
	waitFor(t, 5*time.Second, fmt.Sprintf("at most %d proxy goroutines", limit), func() bool {
		return proxyGoroutines() <= limit
	})
	for _, c := range conns {
		_ = c.Close()
	}
	h.waitIdle()
}

// TestFrameThenCloseSeenAtOnce has players send a frame and close the connection at once, so
// the frame and the end of the stream arrive together and are reported to the relay in one
// wake-up. A read returns the frame and only the next read the end: a relay that stopped at
// the short read missed the close until the read timeout (PingInterval+PongWait, 10 s here),
// which made TestHandshakeTimeoutReleasesGameServer flaky. The game server must hear of each
// player's going within a moment.
func TestFrameThenCloseSeenAtOnce(t *testing.T) {
	h := newHarness(t, testConfig())
	up := newUpstream(t, drain)
	for i := range 30 {
		rc := h.rawDial(up, fmt.Sprintf("p%d", i))
		up.nextRequest(t)
		rc.send(frame(0x8A, nil, false)) // a pong, as a client answering a keepalive would
		_ = rc.nc.Close()
		select {
		case got := <-up.closes:
			if got != (closeInfo{contract.CloseLost, "connection lost"}) {
				t.Fatalf("player %d: game server got %+v", i, got)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("player %d: its close unnoticed after 2s", i)
		}
	}
	h.waitIdle()
}
