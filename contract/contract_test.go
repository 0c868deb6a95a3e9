package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// memBackend is a small, honest in-memory Backend: it keeps the allocation, applies the
// seat rules of the Backend contract, and closes its change channel on every change.
type memBackend struct {
	mu         sync.Mutex
	a          Allocation
	changed    chan struct{}
	heartbeats int
	reads      int   // calls to Allocation, so tests know a long poll has started
	fail       error // when set, every call returns it
}

func newMemBackend() *memBackend {
	return &memBackend{
		a:       Allocation{Version: 1, State: StateStarting, Game: "demo", Players: []string{}, Connected: []string{}},
		changed: make(chan struct{}),
	}
}

// bumpLocked records a change: a new version, and wakes every waiter.
func (m *memBackend) bumpLocked() {
	m.a.Version++
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *memBackend) Ready(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	switch m.a.State {
	case StateShutdown:
		return fmt.Errorf("ready: %w", ErrBadState)
	case StateStarting:
		m.a.State = StateReady
		m.bumpLocked()
	}
	return nil
}

func (m *memBackend) Heartbeat(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.heartbeats++
	return nil
}

func (m *memBackend) PlayerConnected(_ context.Context, player string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.a.State != StateAllocated {
		return fmt.Errorf("player %s: %w", player, ErrBadState)
	}
	switch {
	case slices.Contains(m.a.Connected, player):
		return nil
	case slices.Contains(m.a.Players, player):
	case len(m.a.Players) < m.a.MaxPlayers:
		m.a.Players = append(m.a.Players, player)
	default:
		return fmt.Errorf("player %s: %w", player, ErrRoomFull)
	}
	m.a.Connected = append(m.a.Connected, player)
	m.bumpLocked()
	return nil
}

func (m *memBackend) PlayerDisconnected(_ context.Context, player, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	n := len(m.a.Players) + len(m.a.Connected)
	m.a.Players = slices.DeleteFunc(m.a.Players, func(p string) bool { return p == player })
	m.a.Connected = slices.DeleteFunc(m.a.Connected, func(p string) bool { return p == player })
	if len(m.a.Players)+len(m.a.Connected) != n {
		m.bumpLocked()
	}
	return nil
}

func (m *memBackend) Shutdown(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.a.State != StateShutdown {
		m.a.State = StateShutdown
		m.bumpLocked()
	}
	return nil
}

func (m *memBackend) Allocation(context.Context) (Allocation, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail != nil {
		return Allocation{}, nil, m.fail
	}
	a := m.a
	a.Players = slices.Clone(m.a.Players)
	a.Connected = slices.Clone(m.a.Connected)
	return a, m.changed, nil
}

// allocate gives the server a room, as Usher does when a player creates one.
func (m *memBackend) allocate(room string, maxPlayers int, seats ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.a.State = StateAllocated
	m.a.Room = room
	m.a.MaxPlayers = maxPlayers
	m.a.Players = append(m.a.Players, seats...)
	m.bumpLocked()
}

func (m *memBackend) snapshot() Allocation {
	a, _, _ := m.Allocation(context.Background())
	return a
}

func (m *memBackend) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

var _ Backend = (*memBackend)(nil)

// newTestBridge serves b over loopback HTTP and returns a Client for it.
func newTestBridge(tb testing.TB, b Backend) (*Client, *httptest.Server) {
	tb.Helper()
	srv := httptest.NewServer(NewHandler(b))
	tb.Cleanup(srv.Close)
	c, err := NewClient(srv.URL+"/", nil) // a trailing slash is tolerated
	if err != nil {
		tb.Fatal(err)
	}
	return c, srv
}

func testContext(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

func TestClientLifecycle(t *testing.T) {
	b := newMemBackend()
	c, _ := newTestBridge(t, b)
	ctx := testContext(t, 10*time.Second)

	mustDo := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check := func(want Allocation) {
		t.Helper()
		got, err := c.Allocation(ctx)
		mustDo("allocation", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("allocation (-want +got):\n%s", diff)
		}
	}

	check(Allocation{Version: 1, State: StateStarting, Game: "demo", Players: []string{}, Connected: []string{}})

	mustDo("ready", c.Ready(ctx))
	mustDo("ready again", c.Ready(ctx)) // idempotent: no new version
	check(Allocation{Version: 2, State: StateReady, Game: "demo", Players: []string{}, Connected: []string{}})

	for range 3 {
		mustDo("heartbeat", c.Heartbeat(ctx))
	}
	if got := b.heartbeatCount(); got != 3 {
		t.Fatalf("heartbeats = %d, want 3", got)
	}

	if err := c.PlayerConnected(ctx, "p1"); !errors.Is(err, ErrBadState) {
		t.Fatalf("connect before allocation: err = %v, want ErrBadState", err)
	}

	b.allocate("K7QX", 2, "p1")
	mustDo("connect p1 (holds a seat)", c.PlayerConnected(ctx, "p1"))
	mustDo("connect p2 (free seat)", c.PlayerConnected(ctx, "p2"))
	check(Allocation{Version: 5, State: StateAllocated, Game: "demo", Room: "K7QX", MaxPlayers: 2,
		Players: []string{"p1", "p2"}, Connected: []string{"p1", "p2"}})

	err := c.PlayerConnected(ctx, "p3")
	if !errors.Is(err, ErrRoomFull) || errors.Is(err, ErrBadState) {
		t.Fatalf("connect p3 to a full room: err = %v, want ErrRoomFull only", err)
	}

	mustDo("disconnect p1", c.PlayerDisconnected(ctx, "p1", ReasonLeft))
	mustDo("disconnect unknown", c.PlayerDisconnected(ctx, "nobody", ""))
	check(Allocation{Version: 6, State: StateAllocated, Game: "demo", Room: "K7QX", MaxPlayers: 2,
		Players: []string{"p2"}, Connected: []string{"p2"}})
	mustDo("connect p3 after p1 left", c.PlayerConnected(ctx, "p3"))

	mustDo("shutdown", c.Shutdown(ctx))
	if got := b.snapshot().State; got != StateShutdown {
		t.Fatalf("state after shutdown = %q, want %q", got, StateShutdown)
	}
	if err := c.Ready(ctx); !errors.Is(err, ErrBadState) {
		t.Fatalf("ready after shutdown: err = %v, want ErrBadState", err)
	}
}

func (m *memBackend) heartbeatCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heartbeats
}

// TestHandlerErrors checks every error answer on the wire: status, code, JSON body, and
// what the Client makes of it.
func TestHandlerErrors(t *testing.T) {
	// One seat, held by p1: p1 may connect, anyone else finds the room full.
	oneSeat := func(b *memBackend) { b.allocate("ROOM", 1, "p1") }
	tests := []struct {
		name       string
		setup      func(*memBackend)
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string // "" means a success without an error body
		wantAllow  string
		wantIs     error // what errors.Is must match on the client side, when the client can send it
		call       func(context.Context, *Client) error
	}{
		{name: "ready", method: "POST", path: PathReady, body: "{}", wantStatus: 204,
			call: func(ctx context.Context, c *Client) error { return c.Ready(ctx) }},
		{name: "ready without body", method: "POST", path: PathReady, wantStatus: 204},
		{name: "heartbeat", method: "POST", path: PathHeartbeat, body: "{}", wantStatus: 204},
		{name: "shutdown", method: "POST", path: PathShutdown, body: "{}", wantStatus: 204},
		{name: "connected holding a seat", setup: oneSeat, method: "POST", path: PathConnected,
			body: `{"player":"p1"}`, wantStatus: 204,
			call: func(ctx context.Context, c *Client) error { return c.PlayerConnected(ctx, "p1") }},
		{name: "connected room full", setup: oneSeat, method: "POST", path: PathConnected,
			body: `{"player":"p2"}`, wantStatus: 409, wantCode: "room_full", wantIs: ErrRoomFull,
			call: func(ctx context.Context, c *Client) error { return c.PlayerConnected(ctx, "p2") }},
		{name: "connected not allocated", method: "POST", path: PathConnected,
			body: `{"player":"p1"}`, wantStatus: 409, wantCode: "bad_state", wantIs: ErrBadState,
			call: func(ctx context.Context, c *Client) error { return c.PlayerConnected(ctx, "p1") }},
		{name: "disconnected unknown player", method: "POST", path: PathDisconnected,
			body: `{"player":"ghost"}`, wantStatus: 204},
		{name: "player id of 128 bytes", method: "POST", path: PathDisconnected,
			body: `{"player":"` + strings.Repeat("a", MaxPlayerIDLen) + `"}`, wantStatus: 204},
		{name: "player id with non-ASCII letters", method: "POST", path: PathDisconnected,
			body: `{"player":"Zoë 東京"}`, wantStatus: 204},
		{name: "bad JSON", method: "POST", path: PathConnected, body: `{"player":`,
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "empty body", method: "POST", path: PathDisconnected,
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "player not a string", method: "POST", path: PathConnected, body: `{"player":7}`,
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "empty player", method: "POST", path: PathConnected, body: `{"player":""}`,
			wantStatus: 400, wantCode: "invalid_request",
			call: func(ctx context.Context, c *Client) error { return c.PlayerConnected(ctx, "") }},
		{name: "missing player", method: "POST", path: PathDisconnected, body: `{}`,
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "unknown reason", method: "POST", path: PathDisconnected, body: `{"player":"p1","reason":"gone"}`,
			wantStatus: 400, wantCode: "invalid_request",
			call: func(ctx context.Context, c *Client) error { return c.PlayerDisconnected(ctx, "p1", "gone") }},
		{name: "reason on connected", method: "POST", path: PathConnected, body: `{"player":"p1","reason":"lost"}`,
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "player id too long", method: "POST", path: PathDisconnected,
			body: `{"player":"` + strings.Repeat("a", MaxPlayerIDLen+1) + `"}`, wantStatus: 400, wantCode: "invalid_request",
			call: func(ctx context.Context, c *Client) error {
				return c.PlayerDisconnected(ctx, strings.Repeat("a", MaxPlayerIDLen+1), ReasonLeft)
			}},
		{name: "player id with newline", method: "POST", path: PathConnected, body: `{"player":"a\nb"}`,
			wantStatus: 400, wantCode: "invalid_request",
			call: func(ctx context.Context, c *Client) error { return c.PlayerConnected(ctx, "a\nb") }},
		{name: "player id with NUL", method: "POST", path: PathConnected, body: `{"player":"a\u0000"}`,
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "player id with DEL", method: "POST", path: PathConnected, body: "{\"player\":\"a\x7f\"}",
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "player id with invalid UTF-8", method: "POST", path: PathConnected, body: "{\"player\":\"a\xff\"}",
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "unknown path", method: "POST", path: "/nope", body: "{}",
			wantStatus: 404, wantCode: "not_found"},
		{name: "root", method: "GET", path: "/", wantStatus: 404, wantCode: "not_found"},
		{name: "GET on a POST endpoint", method: "GET", path: PathReady,
			wantStatus: 405, wantCode: "method_not_allowed", wantAllow: "POST"},
		{name: "DELETE on players", method: "DELETE", path: PathConnected,
			wantStatus: 405, wantCode: "method_not_allowed", wantAllow: "POST"},
		{name: "POST on allocation", method: "POST", path: PathAllocation, body: "{}",
			wantStatus: 405, wantCode: "method_not_allowed", wantAllow: "GET, HEAD"},
		{name: "bad after", method: "GET", path: PathAllocation + "?after=-1&wait=1",
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "bad wait", method: "GET", path: PathAllocation + "?after=1&wait=soon",
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "negative wait", method: "GET", path: PathAllocation + "?after=1&wait=-2",
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "NaN wait", method: "GET", path: PathAllocation + "?after=1&wait=NaN",
			wantStatus: 400, wantCode: "invalid_request"},
		{name: "backend failure", setup: func(b *memBackend) { b.fail = errors.New("disk on fire") },
			method: "POST", path: PathHeartbeat, wantStatus: 500, wantCode: "internal",
			call: func(ctx context.Context, c *Client) error { return c.Heartbeat(ctx) }},
		{name: "backend timeout", setup: func(b *memBackend) { b.fail = fmt.Errorf("sdk: %w", context.DeadlineExceeded) },
			method: "GET", path: PathAllocation, wantStatus: 503, wantCode: "unavailable",
			call: func(ctx context.Context, c *Client) error { _, err := c.Allocation(ctx); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t, 10*time.Second)
			for _, viaClient := range []bool{false, true} {
				if viaClient && tt.call == nil {
					continue
				}
				b := newMemBackend()
				if tt.setup != nil {
					tt.setup(b)
				}
				c, srv := newTestBridge(t, b)
				if !viaClient {
					status, header, eb := rawRequest(t, srv.URL, tt.method, tt.path, tt.body)
					if status != tt.wantStatus {
						t.Fatalf("status = %d, want %d (body %+v)", status, tt.wantStatus, eb)
					}
					if got := header.Get("Allow"); got != tt.wantAllow {
						t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
					}
					if tt.wantCode == "" {
						continue
					}
					if got := header.Get("Content-Type"); got != "application/json" {
						t.Errorf("Content-Type = %q, want application/json", got)
					}
					if eb.Error.Code != tt.wantCode || eb.Error.Message == "" {
						t.Errorf("error body = %+v, want code %q and a message", eb, tt.wantCode)
					}
					continue
				}
				err := tt.call(ctx, c)
				if tt.wantCode == "" {
					if err != nil {
						t.Fatalf("client: %v", err)
					}
					continue
				}
				var se *StatusError
				if !errors.As(err, &se) || se.Status != tt.wantStatus || se.Code != tt.wantCode {
					t.Fatalf("client err = %#v, want a StatusError %d %s", err, tt.wantStatus, tt.wantCode)
				}
				for _, target := range []error{ErrRoomFull, ErrBadState} {
					if got, want := errors.Is(err, target), target == tt.wantIs; got != want {
						t.Errorf("errors.Is(err, %v) = %v, want %v", target, got, want)
					}
				}
			}
		})
	}
}

// rawRequest sends one request without the Client, so tests see exactly what is on the wire.
func rawRequest(tb testing.TB, base, method, path, body string) (int, http.Header, ErrorBody) {
	tb.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var eb ErrorBody
	if resp.StatusCode/100 != 2 {
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			tb.Fatalf("%s %s: status %d with a body that is not an error object: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, resp.Header, eb
}

func TestLongPoll(t *testing.T) {
	t.Run("returns at once when the version differs", func(t *testing.T) {
		b := newMemBackend()
		c, _ := newTestBridge(t, b)
		// The bridge would hold the request for 30 s; the context gives it 3.
		got, err := c.WaitAllocation(testContext(t, 3*time.Second), 0, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 1 || got.State != StateStarting {
			t.Fatalf("got %+v, want version 1 Starting", got)
		}
	})

	t.Run("without after it does not wait", func(t *testing.T) {
		b := newMemBackend()
		_, srv := newTestBridge(t, b)
		status, _, _ := rawRequest(t, srv.URL, "GET", PathAllocation+"?wait=30", "")
		if status != http.StatusOK {
			t.Fatalf("status = %d, want 200", status)
		}
	})

	t.Run("returns after a change made elsewhere", func(t *testing.T) {
		b := newMemBackend()
		c, _ := newTestBridge(t, b)
		before := b.readCount()
		go func() {
			// Change the allocation once the long poll has read it.
			for b.readCount() == before {
				time.Sleep(time.Millisecond)
			}
			b.allocate("K7QX", 4, "host")
		}()
		got, err := c.WaitAllocation(testContext(t, 5*time.Second), 1, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := Allocation{Version: 2, State: StateAllocated, Game: "demo", Room: "K7QX", MaxPlayers: 4,
			Players: []string{"host"}, Connected: []string{}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("allocation (-want +got):\n%s", diff)
		}
	})

	t.Run("returns the unchanged allocation when the wait elapses", func(t *testing.T) {
		b := newMemBackend()
		c, _ := newTestBridge(t, b)
		const wait = 100 * time.Millisecond
		start := time.Now()
		got, err := c.WaitAllocation(testContext(t, 5*time.Second), 1, wait)
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed < wait {
			t.Errorf("returned after %v, before the %v wait", elapsed, wait)
		}
		if got.Version != 1 || got.State != StateStarting {
			t.Fatalf("got %+v, want the unchanged version 1", got)
		}
	})

	t.Run("a huge wait is capped, not overflowed", func(t *testing.T) {
		// 1e300 s used to overflow into a negative duration, so the poll did not wait at all.
		b := newMemBackend()
		_, srv := newTestBridge(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+PathAllocation+"?after=1&wait=1e300", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("answered %d at once; want the poll to block", resp.StatusCode)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the client's deadline", err)
		}
	})

	t.Run("seat changes close together come in one answer", func(t *testing.T) {
		defer func(d time.Duration) { listCoalesce = d }(listCoalesce)
		listCoalesce = 2 * time.Second // a window no scheduling delay outlasts
		b := newMemBackend()
		b.allocate("K7QX", 8, "host") // version 2
		c, _ := newTestBridge(t, b)
		before := b.readCount()
		go func() {
			for b.readCount() == before {
				time.Sleep(time.Millisecond)
			}
			// Three seats taken in quick succession, as when a lobby fills: versions 3, 4, 5.
			for _, p := range []string{"p1", "p2", "p3"} {
				time.Sleep(20 * time.Millisecond)
				b.mu.Lock()
				b.a.Players = append(b.a.Players, p)
				b.bumpLocked()
				b.mu.Unlock()
			}
		}()
		got, err := c.WaitAllocation(testContext(t, 5*time.Second), 2, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 5 || !slices.Equal(got.Players, []string{"host", "p1", "p2", "p3"}) {
			t.Fatalf("got version %d players %v, want version 5 with all four seats in one answer", got.Version, got.Players)
		}
	})

	t.Run("the client's context ends the wait", func(t *testing.T) {
		b := newMemBackend()
		c, _ := newTestBridge(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		before := b.readCount()
		go func() {
			for b.readCount() == before {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err := c.WaitAllocation(ctx, 1, 30*time.Second)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestParseWait(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"59.999", 59999 * time.Millisecond, true},
		{"60", MaxWait, true},
		{"3600", MaxWait, true},
		{"1e300", MaxWait, true},
		{"+Inf", MaxWait, true},
		{fmt.Sprint(math.MaxFloat64), MaxWait, true},
		{"-1", 0, false},
		{"-Inf", 0, false},
		{"NaN", 0, false},
		{"", 0, false},
		{"5s", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseWait(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("parseWait(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestClientStatusErrorIs(t *testing.T) {
	tests := []struct {
		code     string
		roomFull bool
		badState bool
	}{
		{code: "room_full", roomFull: true},
		{code: "bad_state", badState: true},
		{code: "internal"},
		{code: ""},
	}
	for _, tt := range tests {
		t.Run("code "+tt.code, func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &StatusError{Status: 409, Code: tt.code})
			if got := errors.Is(err, ErrRoomFull); got != tt.roomFull {
				t.Errorf("Is(ErrRoomFull) = %v, want %v", got, tt.roomFull)
			}
			if got := errors.Is(err, ErrBadState); got != tt.badState {
				t.Errorf("Is(ErrBadState) = %v, want %v", got, tt.badState)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		url    string
		wantOK bool
	}{
		{"http://127.0.0.1:9359", true},
		{"http://localhost:9359/", true},
		{"https://bridge.local", true},
		{"", false},
		{"127.0.0.1:9359", false},
		{"ftp://127.0.0.1:9359", false},
		{"http://", false},
		{"http://[::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := NewClient(tt.url, nil)
			if (err == nil) != tt.wantOK {
				t.Fatalf("NewClient(%q) err = %v, want ok %v", tt.url, err, tt.wantOK)
			}
		})
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(NewHandler(newMemBackend()))
	url := srv.URL
	srv.Close()
	c, err := NewClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Ready(testContext(t, 5*time.Second))
	var se *StatusError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("err = %v, want a transport error", err)
	}
	if !strings.Contains(err.Error(), PathReady) {
		t.Errorf("err = %q, want it to name the endpoint", err)
	}
}
