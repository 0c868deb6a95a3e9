package proxy_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// writeCalls is this process's write system calls so far (/proc/self/io, every thread).
func writeCalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no write counts: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("/proc/self/io has no syscw")
	return 0
}

// TestFramesOfOneReadOneWrite sends ten small frames in one write each way and counts the
// process's write calls: the event loop reads each burst at once and relays its ten frames in
// one write (they lie end to end in its read buffer, each re-framed in place), where a write
// per frame took ten. Every frame still arrives, in order.
func TestFramesOfOneReadOneWrite(t *testing.T) {
	cfg, ok := eventLoopConfig(t, "writes each message on its own")
	if !ok {
		return
	}
	const n = 10
	got := make(chan []string, 1)
	up := newUpstream(t, func(c *websocket.Conn, _ *upstream) {
		var msgs []string
		for range n {
			_, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			msgs = append(msgs, string(m))
		}
		got <- msgs
		var burst []byte
		for i := range n {
			burst = append(burst, frame(0x81, fmt.Appendf(nil, "down-%d", i), true)...)
		}
		if _, err := c.UnderlyingConn().Write(burst); err != nil { // ten frames, one write
			return
		}
		drain(c, nil)
	})
	h := newHarness(t, cfg)
	rc := h.rawDial(up, "p1")
	var burst []byte
	for i := range n {
		burst = append(burst, frame(0x81, fmt.Appendf(nil, "up-%d", i), false)...)
	}

	before := writeCalls(t)
	rc.send(burst) // ten frames, one write
	select {
	case msgs := <-got:
		for i, m := range msgs {
			if want := fmt.Sprintf("up-%d", i); m != want {
				t.Errorf("game server got %q as message %d, want %q", m, i, want)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the game server did not get the ten messages")
	}
	for i := range n {
		_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, p, err := rc.readFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want := fmt.Sprintf("down-%d", i); string(p) != want {
			t.Errorf("player got %q as frame %d, want %q", p, i, want)
		}
	}
	// The two bursts take two writes (the client's, the game server's) and Usher's two relays;
	// what else writes meanwhile (the runtime waking a thread, a keepalive ping) takes a few.
	// A write per frame would be at least 2 + 2×10.
	if calls := writeCalls(t) - before; calls > 2+2+4 {
		t.Errorf("%d write calls for two bursts of %d frames: want about 4 (one per burst and per relay)", calls, n)
	}
}
