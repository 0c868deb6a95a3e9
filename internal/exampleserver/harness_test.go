package exampleserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/contract"
)

const waitFor = 10 * time.Second // upper bound for anything a test waits on

// fakeBridge is a small, honest in-memory bridge Backend: it keeps the allocation and the
// seats as the Backend contract says, closes its change channel on each change, and records
// what the game server told it.
type fakeBridge struct {
	mu         sync.Mutex
	a          contract.Allocation
	changed    chan struct{}
	readies    int
	heartbeats int
	shutdowns  int
	events     []string // "connected p1", "disconnected p1", "disconnected p2 (lost)", in order
}

func newFakeBridge() *fakeBridge {
	return &fakeBridge{
		a:       contract.Allocation{Version: 1, State: contract.StateStarting, Game: "demo", Players: []string{}, Connected: []string{}},
		changed: make(chan struct{}),
	}
}

var _ contract.Backend = (*fakeBridge)(nil)

func (f *fakeBridge) bumpLocked() {
	f.a.Version++
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeBridge) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readies++
	switch f.a.State {
	case contract.StateShutdown:
		return contract.ErrBadState
	case contract.StateStarting:
		f.a.State = contract.StateReady
		f.bumpLocked()
	}
	return nil
}

func (f *fakeBridge) Heartbeat(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heartbeats++
	return nil
}

func (f *fakeBridge) PlayerConnected(_ context.Context, player string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.a.State != contract.StateAllocated {
		return fmt.Errorf("player %s: %w", player, contract.ErrBadState)
	}
	switch {
	case slices.Contains(f.a.Connected, player):
	case slices.Contains(f.a.Players, player):
		f.a.Connected = append(f.a.Connected, player)
	case len(f.a.Players) < f.a.MaxPlayers:
		f.a.Players = append(f.a.Players, player)
		f.a.Connected = append(f.a.Connected, player)
	default:
		return fmt.Errorf("player %s: %w", player, contract.ErrRoomFull)
	}
	f.events = append(f.events, "connected "+player)
	f.bumpLocked()
	return nil
}

func (f *fakeBridge) PlayerDisconnected(_ context.Context, player, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := "disconnected " + player
	if reason != contract.ReasonLeft {
		ev += " (" + reason + ")"
	}
	f.events = append(f.events, ev)
	f.a.Players = slices.DeleteFunc(f.a.Players, func(p string) bool { return p == player })
	f.a.Connected = slices.DeleteFunc(f.a.Connected, func(p string) bool { return p == player })
	f.bumpLocked()
	return nil
}

func (f *fakeBridge) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdowns++
	f.a.State = contract.StateShutdown
	f.bumpLocked()
	return nil
}

func (f *fakeBridge) Allocation(context.Context) (contract.Allocation, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.a
	a.Players = slices.Clone(f.a.Players)
	a.Connected = slices.Clone(f.a.Connected)
	return a, f.changed, nil
}

// allocate gives the server a room with seats reserved for players, as Usher does.
func (f *fakeBridge) allocate(room string, maxPlayers int, seats ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.a.State = contract.StateAllocated
	f.a.Room = room
	f.a.MaxPlayers = maxPlayers
	f.a.Players = append(f.a.Players, seats...)
	f.bumpLocked()
}

func (f *fakeBridge) setState(state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.a.State = state
	f.bumpLocked()
}

// get reads fields under the lock: b.get(func() { n = b.heartbeats }).
func (f *fakeBridge) get(read func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	read()
}

func (f *fakeBridge) eventList() []string {
	var ev []string
	f.get(func() { ev = slices.Clone(f.events) })
	return ev
}

// hasEvent reports whether event e was seen; "disconnected p1" also matches p1's
// disconnection with a reason ("disconnected p1 (lost)").
func (f *fakeBridge) hasEvent(e string) bool {
	return slices.ContainsFunc(f.eventList(), func(got string) bool {
		return got == e || strings.HasPrefix(e, "disconnected ") && strings.HasPrefix(got, e+" (")
	})
}

// harness runs the example server against a fakeBridge over loopback.
type harness struct {
	bridge *fakeBridge
	addr   string // host:port of the game server
	cancel context.CancelFunc
	done   chan error // Run's result
}

// start runs serve with cfg (BridgeURL and Port are filled in) and waits until it is ready.
func start(tb testing.TB, cfg Config) *harness {
	tb.Helper()
	b := newFakeBridge()
	bsrv := httptest.NewServer(contract.NewHandler(b))
	tb.Cleanup(bsrv.Close) // runs last: the server reports departures while it stops
	h := startWith(tb, cfg, bsrv.URL)
	h.bridge = b
	eventually(tb, "server reported ready", func() bool {
		var st string
		b.get(func() { st = b.a.State })
		return st == contract.StateReady
	})
	return h
}

func startWith(tb testing.TB, cfg Config, bridgeURL string) *harness {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.BridgeURL = bridgeURL
	cfg.Port = ln.Addr().(*net.TCPAddr).Port
	if cfg.EmptyTimeout == 0 {
		cfg.EmptyTimeout = time.Hour // tests of the empty timeout set their own
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	log := testLogger(tb)
	go func() { h.done <- serve(ctx, cfg, log, ln) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(waitFor):
			tb.Errorf("server did not stop within %v", waitFor)
		}
	})
	return h
}

// wait returns Run's result, failing the test if it does not come.
func (h *harness) wait(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-h.done:
		h.done <- err // for Cleanup
		return err
	case <-time.After(waitFor):
		tb.Fatalf("Run did not return within %v", waitFor)
		return nil
	}
}

func (h *harness) returned() bool {
	select {
	case err := <-h.done:
		h.done <- err
		return true
	default:
		return false
	}
}

// dial connects as player (none when ""), with extra query parameters and headers.
func (h *harness) dial(tb testing.TB, player string, query url.Values, header http.Header) (*websocket.Conn, *http.Response, error) {
	tb.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	if player != "" {
		q.Set(contract.QueryPlayer, player)
	}
	u := "ws://" + h.addr + "/play?" + q.Encode()
	d := websocket.Dialer{HandshakeTimeout: waitFor}
	ws, resp, err := d.Dial(u, header)
	if ws != nil {
		tb.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// join dials as player and reads the welcome.
func (h *harness) join(tb testing.TB, player string) (*websocket.Conn, Welcome) {
	tb.Helper()
	ws, _, err := h.dial(tb, player, nil, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", player, err)
	}
	return ws, readWelcome(tb, ws)
}

func readWelcome(tb testing.TB, ws *websocket.Conn) Welcome {
	tb.Helper()
	typ, data := readMessage(tb, ws)
	if typ != websocket.TextMessage {
		tb.Fatalf("first message type = %d, want text", typ)
	}
	var w Welcome
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		tb.Fatalf("welcome %s: %v", data, err)
	}
	return w
}

func readMessage(tb testing.TB, ws *websocket.Conn) (int, []byte) {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	typ, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return typ, data
}

// expectClose reads and wants the connection closed with code and text, before any message.
func expectClose(tb testing.TB, ws *websocket.Conn, code int, text string) {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	typ, data, err := ws.ReadMessage()
	if err == nil {
		tb.Fatalf("got message (type %d) %q, want close %d", typ, data, code)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Text != text {
		tb.Fatalf("read err = %v, want close %d %q", err, code, text)
	}
}

func send(tb testing.TB, ws *websocket.Conn, typ int, data []byte) {
	tb.Helper()
	_ = ws.SetWriteDeadline(time.Now().Add(waitFor))
	if err := ws.WriteMessage(typ, data); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

// eventually polls cond until it holds, failing after waitFor.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testLogger logs to the test's output until the test ends.
func testLogger(tb testing.TB) *slog.Logger {
	w := &testWriter{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
