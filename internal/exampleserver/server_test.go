package exampleserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/usher-gg/usher/contract"
)

func TestReadyAndHeartbeats(t *testing.T) {
	h := start(t, Config{HeartbeatInterval: 10 * time.Millisecond})
	eventually(t, "3 heartbeats", func() bool {
		var n int
		h.bridge.get(func() { n = h.bridge.heartbeats })
		return n >= 3
	})
	var readies int
	h.bridge.get(func() { readies = h.bridge.readies })
	if readies != 1 {
		t.Errorf("ready calls = %d, want 1", readies)
	}
}

func TestWelcome(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 4)

	// The room named in the query wins over the allocation's.
	p1, _, err := h.dial(t, "p1", url.Values{contract.QueryRoom: {"ABCD"}, contract.QueryName: {"Ann"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Welcome{Type: "welcome", Player: "p1", Room: "ABCD", Players: []string{"p1"}}, readWelcome(t, p1)); diff != "" {
		t.Errorf("p1 welcome (-want +got):\n%s", diff)
	}

	// Identity from headers; the room from the allocation. Ids sort: "a0" < "p1".
	p2, _, err := h.dial(t, "", nil, http.Header{contract.HeaderPlayer: {"a0"}, contract.HeaderName: {"Bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Welcome{Type: "welcome", Player: "a0", Room: "K7QX", Players: []string{"a0", "p1"}}, readWelcome(t, p2)); diff != "" {
		t.Errorf("a0 welcome (-want +got):\n%s", diff)
	}

	// p1 was told nothing of a0's arrival: the next thing it reads is what a0 sends.
	send(t, p2, websocket.TextMessage, []byte("first"))
	if _, got := readMessage(t, p1); string(got) != "first" {
		t.Fatalf("p1 read %q, want a0's message", got)
	}

	// The welcome's exact bytes, for clients that do not decode into a struct.
	p3, _, err := h.dial(t, "p3", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, raw := readMessage(t, p3)
	if want := `{"type":"welcome","player":"p3","room":"K7QX","players":["a0","p1","p3"]}`; string(raw) != want {
		t.Errorf("welcome = %s, want %s", raw, want)
	}
}

func TestRelay(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 4)
	p1, _ := h.join(t, "p1")
	p2, _ := h.join(t, "p2")
	p3, _ := h.join(t, "p3")

	big := make([]byte, DefaultMaxMessageBytes) // exactly at the limit
	for i := range big {
		big[i] = byte(i * 7)
	}
	sent := []struct {
		typ  int
		data []byte
	}{
		{websocket.TextMessage, []byte(`{"op":"move","x":1}`)},
		{websocket.BinaryMessage, []byte{0, 1, 2, 0xff, 0xfe}},
		{websocket.TextMessage, []byte("héllo, 世界")},
		{websocket.BinaryMessage, []byte{}},
		{websocket.BinaryMessage, big},
	}
	for _, m := range sent {
		send(t, p1, m.typ, m.data)
	}
	for _, ws := range []*websocket.Conn{p2, p3} {
		for i, m := range sent {
			typ, got := readMessage(t, ws)
			if typ != m.typ || !bytes.Equal(got, m.data) {
				t.Fatalf("message %d: got type %d, %d bytes; want type %d, %d bytes, unchanged", i, typ, len(got), m.typ, len(m.data))
			}
		}
	}
	// p1 got none of its own messages: its next message is p2's.
	send(t, p2, websocket.BinaryMessage, []byte("from p2"))
	if typ, got := readMessage(t, p1); typ != websocket.BinaryMessage || string(got) != "from p2" {
		t.Fatalf("p1 read type %d %q, want p2's binary message", typ, got)
	}
	if _, got := readMessage(t, p3); string(got) != "from p2" {
		t.Fatalf("p3 read %q, want p2's message", got)
	}
}

func TestConnectedAndDisconnectedReported(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 4, "p1")
	p1, _ := h.join(t, "p1")
	// The welcome is sent after the bridge accepted the player.
	a, _, _ := h.bridge.Allocation(context.Background())
	if diff := cmp.Diff([]string{"p1"}, a.Connected); diff != "" {
		t.Fatalf("connected (-want +got):\n%s", diff)
	}

	_ = p1.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	eventually(t, "p1 reported disconnected", func() bool { return h.bridge.hasEvent("disconnected p1") })
	if diff := cmp.Diff([]string{"connected p1", "disconnected p1"}, h.bridge.eventList()); diff != "" {
		t.Errorf("bridge events (-want +got):\n%s", diff)
	}

	// A connection that just drops (no close frame) is reported too, as lost.
	p2, _ := h.join(t, "p2")
	p2.NetConn().Close()
	eventually(t, "p2 reported lost", func() bool { return slices.Contains(h.bridge.eventList(), "disconnected p2 (lost)") })
}

// TestDisconnectReasons: the close code Usher sends tells a player who may come back (lost:
// the bridge keeps the seat) from one who left.
func TestDisconnectReasons(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 8)
	for i, tt := range []struct {
		code int
		want string
	}{
		{websocket.CloseNormalClosure, "left"},
		{websocket.CloseGoingAway, "left"},
		{contract.CloseMoved, "left"},
		{contract.CloseLost, "lost"},
		{contract.CloseServiceRestart, "lost"},
	} {
		player := fmt.Sprintf("p%d", i)
		c, _ := h.join(t, player)
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(tt.code, ""), time.Now().Add(time.Second))
		want := "disconnected " + player
		if tt.want != contract.ReasonLeft {
			want += " (" + tt.want + ")"
		}
		eventually(t, want, func() bool { return slices.Contains(h.bridge.eventList(), want) })
	}
}

func TestRefusedPlayers(t *testing.T) {
	h := start(t, Config{})

	// Before any allocation the bridge answers bad_state.
	ws, _, err := h.dial(t, "early", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, ws, websocket.ClosePolicyViolation, "not accepting players")

	h.bridge.allocate("K7QX", 1, "p1")
	p1, _ := h.join(t, "p1")
	p2, _, err := h.dial(t, "p2", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, p2, CloseRoomFull, "room full")
	if h.bridge.hasEvent("connected p2") || h.bridge.hasEvent("disconnected p2") {
		t.Errorf("bridge events = %v: a refused player must not be reported", h.bridge.eventList())
	}

	// p1's seat still holds: p1 may reconnect to the full room.
	p1b, _, err := h.dial(t, "p1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	expectClose(t, p1, CloseReplaced, "replaced")
	if w := readWelcome(t, p1b); w.Player != "p1" {
		t.Fatalf("welcome %+v", w)
	}
}

func TestBadHandshake(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 4)
	tests := []struct {
		name   string
		player string
	}{
		{"no player", ""},
		{"player too long", strings.Repeat("x", contract.MaxPlayerIDLen+1)},
		{"control character", "p\x01"},
		{"newline", "p\n1"},
		{"invalid UTF-8", "p\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{}
			if tt.player != "" {
				q.Set(contract.QueryPlayer, tt.player)
			}
			ws, resp, err := h.dial(t, "", q, nil)
			if err == nil {
				ws.Close()
				t.Fatal("upgrade accepted")
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("err = %v, resp = %v; want a 400 bad handshake", err, resp)
			}
		})
	}
	if ev := h.bridge.eventList(); len(ev) != 0 {
		t.Errorf("bridge events = %v, want none", ev)
	}

	// A plain HTTP request with a player is refused by the upgrader.
	resp, err := http.Get("http://" + h.addr + "/?" + contract.QueryPlayer + "=p1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 4 {
		t.Errorf("plain GET: status %d, want 4xx", resp.StatusCode)
	}
}

func TestReplacedConnection(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 2)
	old, _ := h.join(t, "p1")
	other, _ := h.join(t, "p2")
	cur, w := h.join(t, "p1")
	expectClose(t, old, CloseReplaced, "replaced")
	if diff := cmp.Diff([]string{"p1", "p2"}, w.Players); diff != "" {
		t.Errorf("players (-want +got):\n%s", diff)
	}
	send(t, other, websocket.TextMessage, []byte("to the new p1"))
	if _, got := readMessage(t, cur); string(got) != "to the new p1" {
		t.Fatalf("new p1 read %q", got)
	}

	// Stop the server: the current connection is closed like any other, and Run waits for
	// every connection to end, so the events are final.
	h.cancel()
	expectClose(t, cur, websocket.CloseGoingAway, "server stopping")
	if err := h.wait(t); err != nil {
		t.Fatal(err)
	}
	var p1 []string
	for _, e := range h.bridge.eventList() {
		if strings.HasSuffix(e, " p1") {
			p1 = append(p1, e)
		}
	}
	// The replaced connection's end must not report p1 gone while the new one is connected.
	if diff := cmp.Diff([]string{"connected p1", "connected p1", "disconnected p1"}, p1); diff != "" {
		t.Errorf("p1 bridge events (-want +got):\n%s", diff)
	}
}

func TestCancelClosesPlayersWithGoingAway(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 4)
	p1, _ := h.join(t, "p1")
	p2, _ := h.join(t, "p2")
	h.cancel()
	expectClose(t, p1, websocket.CloseGoingAway, "server stopping")
	expectClose(t, p2, websocket.CloseGoingAway, "server stopping")
	if err := h.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for _, e := range []string{"disconnected p1", "disconnected p2"} {
		if !h.bridge.hasEvent(e) {
			t.Errorf("bridge events %v lack %q", h.bridge.eventList(), e)
		}
	}
	var shutdowns int
	h.bridge.get(func() { shutdowns = h.bridge.shutdowns })
	if shutdowns != 0 {
		t.Errorf("shutdown calls = %d: a stop asked from outside is not the end of the match", shutdowns)
	}
}

func TestBridgeShutdownStopsServer(t *testing.T) {
	h := start(t, Config{})
	h.bridge.allocate("K7QX", 4)
	p1, _ := h.join(t, "p1")
	h.bridge.setState(contract.StateShutdown)
	expectClose(t, p1, websocket.CloseGoingAway, "server stopping")
	if err := h.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

func TestEmptyTimeout(t *testing.T) {
	t.Run("nobody ever arrives", func(t *testing.T) {
		const empty = 100 * time.Millisecond
		h := start(t, Config{EmptyTimeout: empty})
		allocated := time.Now()
		h.bridge.allocate("K7QX", 4, "never-comes")
		if err := h.wait(t); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if d := time.Since(allocated); d < empty {
			t.Errorf("stopped %v after the allocation, before the %v empty timeout", d, empty)
		}
		var shutdowns int
		var state string
		h.bridge.get(func() { shutdowns, state = h.bridge.shutdowns, h.bridge.a.State })
		if shutdowns != 1 || state != contract.StateShutdown {
			t.Errorf("shutdowns = %d, state = %s; want 1, Shutdown", shutdowns, state)
		}
	})

	t.Run("not while unallocated", func(t *testing.T) {
		h := start(t, Config{EmptyTimeout: time.Millisecond, HeartbeatInterval: time.Millisecond})
		// Many heartbeats later the server still waits for a room.
		eventually(t, "heartbeats", func() bool {
			var n int
			h.bridge.get(func() { n = h.bridge.heartbeats })
			return n >= 50
		})
		if h.returned() {
			t.Fatal("Run returned while the server was only Ready")
		}
	})

	t.Run("counts from the last player leaving", func(t *testing.T) {
		const empty = 500 * time.Millisecond
		h := start(t, Config{EmptyTimeout: empty})
		h.bridge.allocate("K7QX", 4)
		p1, _ := h.join(t, "p1")
		p2, _ := h.join(t, "p2")
		// Stay past the timeout, with one player leaving midway.
		time.Sleep(empty / 2)
		p2.Close()
		time.Sleep(empty)
		if h.returned() {
			t.Fatal("Run returned while a player was connected")
		}
		left := time.Now()
		p1.Close()
		if err := h.wait(t); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		if d := time.Since(left); d < empty {
			t.Errorf("stopped %v after the last player left, before the %v empty timeout", d, empty)
		}
		if !slices.Contains(h.bridge.eventList(), "disconnected p1 (lost)") {
			t.Errorf("bridge events %v: p1's departure not reported as lost", h.bridge.eventList())
		}
	})
}

func TestSlowPlayerIsDropped(t *testing.T) {
	h := start(t, Config{SendQueue: 8, SlowTimeout: 300 * time.Millisecond})
	h.bridge.allocate("K7QX", 4)
	sender, _ := h.join(t, "sender")
	fast, _ := h.join(t, "fast")
	_, _ = h.join(t, "slow") // never reads again

	// The sender sends numbered 16 KiB messages until the slow player is dropped; the
	// kernel's socket buffers must fill before the slow player's queue does. It keeps at
	// most 4 messages in flight to the fast player, as a game's steady rate would: a
	// player that reads more slowly than the others send is, by design, too slow.
	var sent atomic.Int64
	window := make(chan struct{}, 4)
	stop := make(chan struct{})
	senderDone := make(chan error, 1)
	go func() {
		msg := make([]byte, 16<<10)
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				senderDone <- nil
				return
			case window <- struct{}{}:
			}
			if i == 1<<16 {
				senderDone <- errors.New("slow player never dropped")
				return
			}
			binary.BigEndian.PutUint64(msg, uint64(i))
			_ = sender.SetWriteDeadline(time.Now().Add(waitFor))
			if err := sender.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				senderDone <- err
				return
			}
			sent.Add(1)
		}
	}()
	received := make(chan error, 1)
	var got atomic.Int64
	go func() {
		for i := int64(0); ; i++ {
			_ = fast.SetReadDeadline(time.Now().Add(waitFor))
			_, data, err := fast.ReadMessage()
			if err != nil {
				received <- err
				return
			}
			if n := int64(binary.BigEndian.Uint64(data)); n != i {
				received <- errors.New("fast player got message " + strconv.FormatInt(n, 10) + ", want " + strconv.FormatInt(i, 10))
				return
			}
			got.Add(1)
			<-window
		}
	}()

	eventually(t, "slow player reported disconnected", func() bool {
		select {
		case err := <-senderDone:
			t.Fatalf("sender: %v", err)
		case err := <-received:
			t.Fatalf("fast player: %v", err)
		default:
		}
		return h.bridge.hasEvent("disconnected slow")
	})
	close(stop)
	if err := <-senderDone; err != nil {
		t.Fatalf("sender: %v", err)
	}
	// The fast player keeps receiving: every message sent arrives, in order.
	eventually(t, "fast player received everything", func() bool {
		select {
		case err := <-received:
			t.Fatalf("fast player: %v", err)
		default:
		}
		return got.Load() == sent.Load()
	})
	if h.bridge.hasEvent("disconnected fast") || h.bridge.hasEvent("disconnected sender") {
		t.Errorf("bridge events %v: only the slow player should be gone", h.bridge.eventList())
	}
}

func TestMessageTooBig(t *testing.T) {
	h := start(t, Config{MaxMessageBytes: 1024})
	h.bridge.allocate("K7QX", 4)
	p1, _ := h.join(t, "p1")
	p2, _ := h.join(t, "p2")
	send(t, p1, websocket.BinaryMessage, make([]byte, 1025))
	expectClose(t, p1, websocket.CloseMessageTooBig, "")
	eventually(t, "p1 reported disconnected", func() bool { return h.bridge.hasEvent("disconnected p1") })
	// p2 never saw the oversized message: the next thing it reads is the next player's.
	p3, _ := h.join(t, "p3")
	send(t, p3, websocket.TextMessage, []byte("ok"))
	if _, got := readMessage(t, p2); string(got) != "ok" {
		t.Fatalf("p2 read %d bytes %.20q, want p3's message", len(got), got)
	}
}

func TestReadyRetriesUntilTheBridgeListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet

	h := startWith(t, Config{}, "http://"+addr)
	time.Sleep(200 * time.Millisecond) // let a few attempts fail

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	b := newFakeBridge()
	srv := httptest.NewUnstartedServer(contract.NewHandler(b))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	eventually(t, "ready reported", func() bool {
		var n int
		b.get(func() { n = b.readies })
		return n == 1
	})
	if h.returned() {
		t.Fatal("Run returned")
	}
}

func TestReadyRefused(t *testing.T) {
	b := newFakeBridge()
	b.setState(contract.StateShutdown) // the bridge answers 409 bad_state to ready
	srv := httptest.NewServer(contract.NewHandler(b))
	t.Cleanup(srv.Close)
	h := startWith(t, Config{}, srv.URL)
	err := h.wait(t)
	if !errors.Is(err, contract.ErrBadState) {
		t.Fatalf("Run = %v, want an error wrapping ErrBadState", err)
	}
}

func TestRun(t *testing.T) {
	t.Run("invalid config", func(t *testing.T) {
		err := Run(context.Background(), Config{Port: 0, BridgeURL: "nope"}, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), "port") || !strings.Contains(err.Error(), "bridge url") {
			t.Fatalf("Run = %v, want errors about the port and the bridge url", err)
		}
	})

	t.Run("port taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, BridgeURL: "http://127.0.0.1:1"}
		if err := Run(context.Background(), cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "listen") {
			t.Fatalf("Run = %v, want a listen error", err)
		}
	})

	t.Run("listens on host and port", func(t *testing.T) {
		b := newFakeBridge()
		bsrv := httptest.NewServer(contract.NewHandler(b))
		t.Cleanup(bsrv.Close)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		cfg := Config{Host: "127.0.0.1", Port: port, BridgeURL: bsrv.URL}
		log := testLogger(t)
		go func() { done <- Run(ctx, cfg, log) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}()
		eventually(t, "ready", func() bool {
			var n int
			b.get(func() { n = b.readies })
			return n == 1
		})
		b.allocate("K7QX", 2)
		h := &harness{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		_, w := h.join(t, "p1")
		if w.Room != "K7QX" {
			t.Errorf("welcome %+v", w)
		}
	})
}

// TestBurstSparesBystanders: one player sends a burst as large as Usher lets through
// (twice --max-message-rate: 400 at the default) at once; the other players, reading at
// their own pace, are not dropped and receive every message in order.
func TestBurstSparesBystanders(t *testing.T) {
	h := start(t, Config{}) // the defaults, as Usher runs the example server
	h.bridge.allocate("K7QX", 4)
	sender, _ := h.join(t, "sender")
	var bystanders []*websocket.Conn
	for _, p := range []string{"b1", "b2", "b3"} {
		c, _ := h.join(t, p)
		bystanders = append(bystanders, c)
	}
	const burst = 400
	var wg sync.WaitGroup
	errs := make(chan error, len(bystanders))
	for i, c := range bystanders {
		wg.Go(func() {
			for n := range burst {
				_ = c.SetReadDeadline(time.Now().Add(waitFor))
				_, data, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("bystander %d after %d messages: %w", i+1, n, err)
					return
				}
				if got := binary.BigEndian.Uint32(data); got != uint32(n) {
					errs <- fmt.Errorf("bystander %d got message %d, want %d", i+1, got, n)
					return
				}
				if i == 0 && n%50 == 0 {
					time.Sleep(20 * time.Millisecond) // a slower (but not slow) reader
				}
			}
		})
	}
	msg := make([]byte, 512)
	for n := range burst {
		binary.BigEndian.PutUint32(msg, uint32(n))
		_ = sender.SetWriteDeadline(time.Now().Add(waitFor))
		if err := sender.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatalf("sender, message %d: %v", n, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, p := range []string{"b1", "b2", "b3", "sender"} {
		if h.bridge.hasEvent("disconnected " + p) {
			t.Errorf("%s was disconnected", p)
		}
	}
}
