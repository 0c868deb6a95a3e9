package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
)

// The tests in this file drive the fleet's rules (state) with a fake clock and no processes.

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type stateFixture struct {
	st  *state
	clk *clocktesting.FakeClock
	m   *metrics.Metrics
}

func newStateFixture(tb testing.TB, cfg Config) *stateFixture {
	tb.Helper()
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(epoch)
	m := metrics.New(prometheus.NewRegistry())
	return &stateFixture{st: newState(cfg, m, clk, slog.New(slog.DiscardHandler)), clk: clk, m: m}
}

func game(id string, maxPlayers int) Game {
	return Game{ID: id, MaxPlayers: maxPlayers, Command: []string{"/bin/true"}, Buffer: 1}
}

// add records a new server of game in Starting, as the supervisor does before spawning it.
func (fx *stateFixture) add(tb testing.TB, game string) *server {
	tb.Helper()
	fx.st.mu.Lock()
	defer fx.st.mu.Unlock()
	g, ok := fx.st.games[game]
	if !ok {
		tb.Fatalf("no game %q", game)
	}
	s := fx.st.addServerLocked(g, fx.clk.Now())
	s.addr = "127.0.0.1:1" + fmt.Sprint(s.seq)
	return s
}

// ready adds a server of game and makes it Ready.
func (fx *stateFixture) ready(tb testing.TB, game string) *server {
	tb.Helper()
	s := fx.add(tb, game)
	if err := fx.st.ready(s); err != nil {
		tb.Fatal(err)
	}
	return s
}

func (fx *stateFixture) seats(s *server) (players []string) {
	a, _ := fx.st.allocation(s)
	return a.Players
}

func TestConfigValidate(t *testing.T) {
	ok := Game{ID: "g", MaxPlayers: 4, Command: []string{"srv"}, Buffer: 1}
	with := func(f func(*Game)) Game { g := ok; f(&g); return g }
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"valid", Config{Games: []Game{ok}}, ""},
		{"valid with cap", Config{Games: []Game{with(func(g *Game) { g.Buffer, g.MaxServers = 2, 2 })}}, ""},
		{"no games", Config{}, "no games"},
		{"empty id", Config{Games: []Game{with(func(g *Game) { g.ID = "" })}}, "empty id"},
		{"duplicate", Config{Games: []Game{ok, ok}}, "duplicate id"},
		{"no seats", Config{Games: []Game{with(func(g *Game) { g.MaxPlayers = 0 })}}, "max players 0"},
		{"no command", Config{Games: []Game{with(func(g *Game) { g.Command = nil })}}, "empty command"},
		{"no buffer", Config{Games: []Game{with(func(g *Game) { g.Buffer = 0 })}}, "buffer 0"},
		{"cap below buffer", Config{Games: []Game{with(func(g *Game) { g.Buffer, g.MaxServers = 3, 2 })}}, "max servers 2"},
		{"negative timeout", Config{Games: []Game{ok}, SeatTimeout: -time.Second}, "seat timeout -1s: negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Error("New(Config{}) succeeded, want an error")
	}
	got := Config{}.withDefaults()
	want := Config{SeatTimeout: 20 * time.Second, HeartbeatTimeout: 10 * time.Second, StartTimeout: 30 * time.Second,
		StopTimeout: 5 * time.Second, RestartBackoff: time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestCreate(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 4), game("h", 2)}})
	st := fx.st
	if _, err := st.create("g", "ABCD", true, "p1"); !errors.Is(err, match.ErrNoCapacity) {
		t.Fatalf("create with no Ready server: err = %v, want ErrNoCapacity", err)
	}
	fx.add(t, "g") // Starting servers are not allocated
	if _, err := st.create("g", "ABCD", true, "p1"); !errors.Is(err, match.ErrNoCapacity) {
		t.Fatalf("create with only a Starting server: err = %v, want ErrNoCapacity", err)
	}
	older := fx.ready(t, "g")
	fx.clk.Step(time.Second)
	newer := fx.ready(t, "g")
	fx.ready(t, "h")

	if _, err := st.create("nope", "ABCD", true, "p1"); !errors.Is(err, match.ErrUnknownGame) {
		t.Errorf("unknown game: err = %v, want ErrUnknownGame", err)
	}
	got, err := st.create("g", "ABCD", true, "p1")
	if err != nil {
		t.Fatal(err)
	}
	want := match.Server{Name: older.name, Game: "g", Room: "ABCD", Addr: older.addr, Public: true, MaxPlayers: 4}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("create picked (-want +got):\n%s", diff)
	}
	if older.state != StateAllocated || newer.state != StateReady {
		t.Errorf("states: older %s, newer %s; want Allocated, Ready", older.state, newer.state)
	}
	if diff := cmp.Diff([]string{"p1"}, fx.seats(older)); diff != "" {
		t.Errorf("seats (-want +got):\n%s", diff)
	}
	// Room codes are unique across games among live rooms.
	for _, g := range []string{"g", "h"} {
		if _, err := st.create(g, "ABCD", false, "p2"); !errors.Is(err, match.ErrRoomExists) {
			t.Errorf("create %s/ABCD again: err = %v, want ErrRoomExists", g, err)
		}
	}
	select {
	case <-st.kick:
	default:
		t.Error("create did not wake the supervisor to top the buffer up")
	}
	// Once the room ends its code is free again.
	if err := st.shutdown(older); err != nil {
		t.Fatal(err)
	}
	if _, err := st.create("g", "ABCD", false, "p2"); err != nil {
		t.Errorf("create ABCD after its room ended: %v", err)
	}
	if _, err := st.create("g", "EFGH", false, "p2"); !errors.Is(err, match.ErrNoCapacity) {
		t.Errorf("create with every server allocated: err = %v, want ErrNoCapacity", err)
	}
}

func TestJoin(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 3), game("h", 3)}})
	st := fx.st
	s := fx.ready(t, "g")
	fx.ready(t, "h")
	if _, err := st.create("g", "ROOM", false, "host"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.create("h", "HHHH", false, "host"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		game, room, player string
		want               error
	}{
		{"nope", "ROOM", "p", match.ErrUnknownGame},
		{"g", "NONE", "p", match.ErrRoomNotFound},
		{"g", "room", "p", match.ErrRoomNotFound}, // codes are case-sensitive; the caller upper-cases
		{"h", "ROOM", "p", match.ErrRoomNotFound}, // a room of another game
		{"g", "HHHH", "p", match.ErrRoomNotFound},
	}
	for _, tt := range tests {
		if _, err := st.join(tt.game, tt.room, tt.player); !errors.Is(err, tt.want) {
			t.Errorf("join(%s, %s, %s): err = %v, want %v", tt.game, tt.room, tt.player, err, tt.want)
		}
	}
	got, err := st.join("g", "ROOM", "p2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != s.name || got.Room != "ROOM" || got.Addr != s.addr {
		t.Errorf("join = %+v, want server %s", got, s.name)
	}
	v := s.version
	// Re-joining is idempotent: same server, no second seat, no allocation change.
	for _, p := range []string{"p2", "host", "p2"} {
		again, err := st.join("g", "ROOM", p)
		if err != nil || again != got {
			t.Errorf("re-join %s = %+v, %v; want %+v", p, again, err, got)
		}
	}
	if s.version != v {
		t.Errorf("re-joins changed the allocation version %d → %d", v, s.version)
	}
	if _, err := st.join("g", "ROOM", "p3"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.join("g", "ROOM", "p4"); !errors.Is(err, match.ErrRoomFull) {
		t.Errorf("join a full room: err = %v, want ErrRoomFull", err)
	}
	if _, err := st.join("g", "ROOM", "p3"); err != nil {
		t.Errorf("re-join a full room by a seated player: %v", err)
	}
	if diff := cmp.Diff([]string{"host", "p2", "p3"}, fx.seats(s)); diff != "" {
		t.Errorf("seats (-want +got):\n%s", diff)
	}
	// A room whose server shut down is gone.
	if err := st.shutdown(s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.join("g", "ROOM", "p2"); !errors.Is(err, match.ErrRoomNotFound) {
		t.Errorf("join a shut down room: err = %v, want ErrRoomNotFound", err)
	}
}

func TestQuickJoin(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 3), game("h", 3)}})
	st := fx.st
	for range 5 {
		fx.ready(t, "g")
	}
	fx.ready(t, "h")
	if _, err := st.quickJoin("g", "q"); !errors.Is(err, match.ErrRoomNotFound) {
		t.Fatalf("quick join with no room: err = %v, want ErrRoomNotFound", err)
	}
	if _, err := st.quickJoin("nope", "q"); !errors.Is(err, match.ErrUnknownGame) {
		t.Fatalf("quick join unknown game: err = %v, want ErrUnknownGame", err)
	}
	mustCreate := func(room string, public bool, players ...string) {
		t.Helper()
		if _, err := st.create("g", room, public, players[0]); err != nil {
			t.Fatal(err)
		}
		for _, p := range players[1:] {
			if _, err := st.join("g", room, p); err != nil {
				t.Fatal(err)
			}
		}
		fx.clk.Step(time.Millisecond)
	}
	mustCreate("OLD1", true, "a")
	mustCreate("PRIV", false, "b", "c") // private: never quick-joined
	mustCreate("NEW1", true, "d")
	mustCreate("FULL", true, "e", "f", "g")
	if _, err := st.create("h", "HHHH", true, "h1"); err != nil { // another game
		t.Fatal(err)
	}

	steps := []struct {
		player string
		want   string
	}{
		{"q1", "OLD1"}, // OLD1 and NEW1 hold one seat each: the oldest wins
		{"q2", "OLD1"}, // now the fullest
		{"q1", "OLD1"}, // already seated: same room, no new seat
		{"d", "NEW1"},  // already seated in NEW1 though OLD1 is fuller
		{"q3", "NEW1"}, // OLD1 is full
		{"q4", "NEW1"},
	}
	for _, step := range steps {
		got, err := st.quickJoin("g", step.player)
		if err != nil || got.Room != step.want {
			t.Fatalf("quickJoin(%s) = %q, %v; want %q", step.player, got.Room, err, step.want)
		}
	}
	if _, err := st.quickJoin("g", "q5"); !errors.Is(err, match.ErrRoomNotFound) {
		t.Errorf("quick join with every public room full: err = %v, want ErrRoomNotFound", err)
	}
	rooms, err := st.listRooms("g")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rooms {
		got = append(got, fmt.Sprintf("%s public=%v seats=%d/%d", r.Code, r.Public, r.Seats, r.MaxPlayers))
	}
	want := []string{"OLD1 public=true seats=3/3", "PRIV public=false seats=2/3", "NEW1 public=true seats=3/3", "FULL public=true seats=3/3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rooms (-want +got):\n%s", diff)
	}
	all, err := st.listRooms("")
	if err != nil || len(all) != 5 {
		t.Errorf("listRooms(\"\") = %d rooms, %v; want 5", len(all), err)
	}
	if _, err := st.listRooms("nope"); !errors.Is(err, match.ErrUnknownGame) {
		t.Errorf("listRooms(nope): err = %v, want ErrUnknownGame", err)
	}
}

func TestConcurrentJoinsNeverOverfill(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 4)}})
	s := fx.ready(t, "g")
	if _, err := fx.st.create("g", "RACE", true, "host"); err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, full int
		start    = make(chan struct{})
	)
	for i := range 50 {
		wg.Go(func() {
			<-start
			var err error
			if i%2 == 0 {
				_, err = fx.st.join("g", "RACE", fmt.Sprintf("p%d", i))
			} else {
				_, err = fx.st.quickJoin("g", fmt.Sprintf("p%d", i))
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, match.ErrRoomFull), errors.Is(err, match.ErrRoomNotFound):
				full++
			default:
				t.Errorf("join: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 3 || full != 47 {
		t.Errorf("joins: %d ok, %d refused; want 3 ok, 47 refused", ok, full)
	}
	if n := len(fx.seats(s)); n != 4 {
		t.Errorf("seats = %d, want 4", n)
	}
}

func TestSeatExpiry(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 4)}, SeatTimeout: 20 * time.Second, HeartbeatTimeout: time.Hour})
	st := fx.st
	s := fx.ready(t, "g")
	if _, err := st.create("g", "EXPR", true, "host"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.join("g", "EXPR", "late"); err != nil {
		t.Fatal(err)
	}
	if err := st.playerConnected(s, "host"); err != nil {
		t.Fatal(err)
	}
	fx.clk.Step(15 * time.Second)
	if _, err := st.join("g", "EXPR", "refresh"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.join("g", "EXPR", "late"); err != nil { // re-join refreshes late's deadline
		t.Fatal(err)
	}
	fx.clk.Step(10 * time.Second) // 25s after host and late first joined
	st.plan()
	if diff := cmp.Diff([]string{"host", "late", "refresh"}, fx.seats(s)); diff != "" {
		t.Errorf("seats 25s in (-want +got):\n%s", diff)
	}
	_, changed := st.allocation(s)
	fx.clk.Step(10*time.Second + time.Millisecond)
	st.plan()
	if diff := cmp.Diff([]string{"host"}, fx.seats(s)); diff != "" {
		t.Errorf("seats after expiry (-want +got):\n%s", diff)
	}
	select {
	case <-changed:
	default:
		t.Error("expiry did not signal an allocation change")
	}
	rooms, _ := st.listRooms("g")
	if len(rooms) != 1 || rooms[0].Seats != 1 || rooms[0].Connected != 1 {
		t.Errorf("rooms = %+v, want one room with 1 seat, 1 connected", rooms)
	}
}

// TestReconnectGrace: a lost player's seat is kept for the grace — they can rejoin even a
// full room and take it again — and freed after it; a player who left frees it at once.
func TestReconnectGrace(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 2)}, SeatTimeout: 20 * time.Second,
		ReconnectGrace: 30 * time.Second, HeartbeatTimeout: time.Hour})
	st := fx.st
	s := fx.ready(t, "g")
	if _, err := st.create("g", "LOST", false, "host"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.join("g", "LOST", "guest"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"host", "guest"} {
		if err := st.playerConnected(s, p); err != nil {
			t.Fatal(err)
		}
	}
	// The guest leaves cleanly: the seat is free at once.
	if err := st.playerDisconnected(s, "guest", contract.ReasonLeft); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"host"}, fx.seats(s)); diff != "" {
		t.Errorf("seats after a clean leave (-want +got):\n%s", diff)
	}
	if _, err := st.join("g", "LOST", "third"); err != nil {
		t.Fatal(err)
	}
	if err := st.playerConnected(s, "third"); err != nil {
		t.Fatal(err)
	}
	// The host's connection breaks: the seat stays, the room stays full to others.
	if err := st.playerDisconnected(s, "host", contract.ReasonLost); err != nil {
		t.Fatal(err)
	}
	a, _ := st.allocation(s)
	if diff := cmp.Diff([]string{"host", "third"}, a.Players); diff != "" || !slices.Equal(a.Connected, []string{"third"}) {
		t.Errorf("after the host was lost: players %v connected %v, want the host's seat kept, not connected", a.Players, a.Connected)
	}
	if _, err := st.join("g", "LOST", "stranger"); !errors.Is(err, match.ErrRoomFull) {
		t.Errorf("a stranger joining while the lost host's seat is kept: %v, want ErrRoomFull", err)
	}
	// Within the grace the host rejoins the full, private room and takes the seat again.
	fx.clk.Step(29 * time.Second)
	st.plan()
	if _, err := st.join("g", "LOST", "host"); err != nil {
		t.Fatalf("the host rejoining within the grace: %v", err)
	}
	if err := st.playerConnected(s, "host"); err != nil {
		t.Fatal(err)
	}
	// Lost again; after the grace the seat is free.
	if err := st.playerDisconnected(s, "host", contract.ReasonLost); err != nil {
		t.Fatal(err)
	}
	fx.clk.Step(30*time.Second + time.Millisecond)
	st.plan()
	if diff := cmp.Diff([]string{"third"}, fx.seats(s)); diff != "" {
		t.Errorf("seats after the grace (-want +got):\n%s", diff)
	}
	if _, err := st.join("g", "LOST", "stranger"); err != nil {
		t.Errorf("a stranger joining after the grace: %v", err)
	}
}

func TestReconnectGraceOff(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 2)}, HeartbeatTimeout: time.Hour})
	s := fx.ready(t, "g")
	if _, err := fx.st.create("g", "NOGR", false, "host"); err != nil {
		t.Fatal(err)
	}
	if err := fx.st.playerConnected(s, "host"); err != nil {
		t.Fatal(err)
	}
	if err := fx.st.playerDisconnected(s, "host", contract.ReasonLost); err != nil {
		t.Fatal(err)
	}
	if got := fx.seats(s); len(got) != 0 {
		t.Errorf("seats %v with no reconnect grace, want none", got)
	}
}

func TestBridgeBackend(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 2)}})
	st := fx.st
	s := fx.add(t, "g")
	srv := httptest.NewServer(contract.NewHandler(backend{st: st, s: s}))
	defer srv.Close()
	c, err := contract.NewClient(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alloc := func() contract.Allocation {
		t.Helper()
		a, err := c.Allocation(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := c.PlayerConnected(ctx, "x"); !errors.Is(err, contract.ErrBadState) {
		t.Errorf("connected to a Starting server: err = %v, want ErrBadState", err)
	}
	for range 2 { // idempotent
		if err := c.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.PlayerConnected(ctx, "x"); !errors.Is(err, contract.ErrBadState) {
		t.Errorf("connected to a Ready server: err = %v, want ErrBadState", err)
	}
	ready := alloc()
	if ready.State != contract.StateReady || ready.Version < 2 {
		t.Errorf("allocation = %+v, want Ready at version >= 2", ready)
	}

	if _, err := st.create("g", "BRDG", true, "host"); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	got := alloc()
	want := contract.Allocation{Version: got.Version, State: contract.StateAllocated, Game: "g", Room: "BRDG", Public: true,
		MaxPlayers: 2, Players: []string{"host"}, Connected: []string{}}
	if diff := cmp.Diff(want, got); diff != "" || got.Version <= ready.Version {
		t.Errorf("allocation after create and a second Ready (-want +got):\n%s(version %d → %d)", diff, ready.Version, got.Version)
	}
	// A player the game server let in without a seat takes a free one; then the room is full.
	if err := c.PlayerConnected(ctx, "walkin"); err != nil {
		t.Fatal(err)
	}
	if err := c.PlayerConnected(ctx, "host"); err != nil {
		t.Fatal(err)
	}
	if err := c.PlayerConnected(ctx, "host"); err != nil { // repeated: no change
		t.Fatal(err)
	}
	if err := c.PlayerConnected(ctx, "third"); !errors.Is(err, contract.ErrRoomFull) {
		t.Errorf("connected to a full room: err = %v, want ErrRoomFull", err)
	}
	if _, err := st.join("g", "BRDG", "joiner"); !errors.Is(err, match.ErrRoomFull) {
		t.Errorf("join a room full of connected players: err = %v, want ErrRoomFull", err)
	}
	got = alloc()
	if diff := cmp.Diff([]string{"host", "walkin"}, got.Connected); diff != "" {
		t.Errorf("connected (-want +got):\n%s", diff)
	}
	if n := testutil.ToFloat64(fx.m.Players.WithLabelValues("g")); n != 2 {
		t.Errorf("players gauge = %v, want 2", n)
	}
	if err := c.PlayerDisconnected(ctx, "walkin", contract.ReasonLeft); err != nil {
		t.Fatal(err)
	}
	if err := c.PlayerDisconnected(ctx, "stranger", contract.ReasonLost); err != nil { // unknown: ignored
		t.Fatal(err)
	}
	if _, err := st.join("g", "BRDG", "joiner"); err != nil {
		t.Errorf("join after a disconnect freed a seat: %v", err)
	}
	if diff := cmp.Diff([]string{"host", "joiner"}, alloc().Players); diff != "" {
		t.Errorf("players (-want +got):\n%s", diff)
	}

	// A long poll sees the next change.
	before := alloc()
	done := make(chan contract.Allocation)
	go func() {
		a, err := c.WaitAllocation(ctx, before.Version, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-done:
		if a.State != contract.StateShutdown || a.Version <= before.Version {
			t.Errorf("long poll = %+v, want Shutdown after version %d", a, before.Version)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not return after shutdown")
	}
	if rooms, _ := st.listRooms(""); len(rooms) != 0 {
		t.Errorf("rooms after shutdown = %+v, want none", rooms)
	}
	if err := c.Shutdown(ctx); err != nil { // idempotent
		t.Error(err)
	}
	if err := c.Ready(ctx); !errors.Is(err, contract.ErrBadState) {
		t.Errorf("ready after shutdown: err = %v, want ErrBadState", err)
	}
}

func TestHealthChecks(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 2)}, HeartbeatTimeout: 10 * time.Second,
		StartTimeout: 30 * time.Second, SeatTimeout: time.Hour})
	st := fx.st
	alive := fx.ready(t, "g")
	silent := fx.ready(t, "g")
	starting := fx.add(t, "g")
	if _, err := st.create("g", "SICK", false, "p"); err != nil { // allocates alive (oldest)
		t.Fatal(err)
	}
	for range 4 {
		fx.clk.Step(3 * time.Second)
		if err := st.heartbeat(alive); err != nil {
			t.Fatal(err)
		}
	}
	st.plan() // 12s: silent missed its heartbeats
	if alive.state != StateAllocated || silent.state != StateUnhealthy || silent.exitReason != exitUnhealthy {
		t.Errorf("after 12s: alive %s, silent %s (%s); want Allocated, Unhealthy (unhealthy)", alive.state, silent.state, silent.exitReason)
	}
	if err := st.heartbeat(silent); !errors.Is(err, contract.ErrBadState) {
		t.Errorf("heartbeat when Unhealthy: err = %v, want ErrBadState (Unhealthy is terminal)", err)
	}
	fx.clk.Step(11 * time.Second)
	st.plan() // 23s: alive stopped too; its room ends
	if alive.state != StateUnhealthy {
		t.Errorf("alive = %s, want Unhealthy", alive.state)
	}
	if _, err := st.join("g", "SICK", "q"); !errors.Is(err, match.ErrRoomNotFound) {
		t.Errorf("join the room of an unhealthy server: err = %v, want ErrRoomNotFound", err)
	}
	if starting.state != StateStarting {
		t.Errorf("starting = %s before its start timeout", starting.state)
	}
	fx.clk.Step(8 * time.Second)
	st.plan() // 31s
	if starting.state != StateUnhealthy || starting.exitReason != exitStartTimeout {
		t.Errorf("starting = %s (%s), want Unhealthy (start_timeout)", starting.state, starting.exitReason)
	}
	if n := testutil.ToFloat64(fx.m.GameServers.WithLabelValues("g", StateUnhealthy)); n != 3 {
		t.Errorf("unhealthy gauge = %v, want 3", n)
	}
}

func TestPlanBufferAndCap(t *testing.T) {
	g := game("g", 2)
	g.Buffer, g.MaxServers = 2, 3
	fx := newStateFixture(t, Config{Games: []Game{g, game("h", 2)}})
	st := fx.st
	p := st.plan()
	if len(p.spawn) != 3 {
		t.Fatalf("first plan spawns %d, want 3 (2 of g, 1 of h)", len(p.spawn))
	}
	if p := st.plan(); len(p.spawn) != 0 {
		t.Fatalf("buffer full of Starting servers: plan spawns %d, want 0", len(p.spawn))
	}
	for _, s := range p.spawn {
		if err := st.ready(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.create("g", "AAAA", true, "p"); err != nil {
		t.Fatal(err)
	}
	if p := st.plan(); len(p.spawn) != 1 || p.spawn[0].game != "g" {
		t.Fatalf("after one allocation: plan spawns %v, want one of g", names(p.spawn))
	}
	if _, err := st.create("g", "BBBB", true, "p"); err != nil {
		t.Fatal(err)
	}
	if p := st.plan(); len(p.spawn) != 0 {
		t.Fatalf("at MaxServers: plan spawns %v, want none", names(p.spawn))
	}
	checkGauges(t, fx, map[string]float64{StateStarting: 1, StateReady: 0, StateAllocated: 2})
	// The stopping fleet starts nothing.
	st.stopAll()
	if p := st.plan(); len(p.spawn) != 0 {
		t.Errorf("stopping: plan spawns %v", names(p.spawn))
	}
	checkGauges(t, fx, map[string]float64{StateStarting: 0, StateShutdown: 3})
}

func TestExitAndBackoff(t *testing.T) {
	fx := newStateFixture(t, Config{Games: []Game{game("g", 2)}, RestartBackoff: time.Second})
	st := fx.st
	exits := func(reason string) float64 {
		return testutil.ToFloat64(fx.m.GameServerExits.WithLabelValues("g", reason))
	}
	crash := errors.New("exit status 1")

	// A clean exit after /shutdown counts shutdown; an exit without it is a crash.
	s := fx.ready(t, "g")
	if _, err := st.create("g", "ROOM", false, "p"); err != nil {
		t.Fatal(err)
	}
	_ = st.shutdown(s)
	st.exited(s, nil, true)
	s2 := fx.ready(t, "g")
	st.exited(s2, nil, true)
	if exits(exitShutdown) != 1 || exits(exitCrashed) != 1 {
		t.Errorf("exits: shutdown %v, crashed %v; want 1, 1", exits(exitShutdown), exits(exitCrashed))
	}
	if got := st.games["g"].backoff; got != 0 {
		t.Errorf("backoff after failures past Ready = %v, want 0", got)
	}

	// Failures before Ready back off: 1s, 2s, 4s, ... capped at 30s.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		p := st.plan()
		if len(p.spawn) != 1 {
			t.Fatalf("failure %d: plan spawns %v, want 1", i, names(p.spawn))
		}
		st.exited(p.spawn[0], crash, true)
		g := st.games["g"]
		if g.backoff != want {
			t.Fatalf("failure %d: backoff %v, want %v", i, g.backoff, want)
		}
		if p := st.plan(); len(p.spawn) != 0 || !p.wake.Equal(fx.clk.Now().Add(want)) {
			t.Fatalf("failure %d: during backoff plan spawns %v, wakes at %v; want none, %v", i, names(p.spawn), p.wake, fx.clk.Now().Add(want))
		}
		fx.clk.Step(want)
	}
	// While backing off, one server at a time probes; a Ready resets the backoff.
	p := st.plan()
	if len(p.spawn) != 1 {
		t.Fatalf("after backoff: plan spawns %v, want 1", names(p.spawn))
	}
	if err := st.ready(p.spawn[0]); err != nil {
		t.Fatal(err)
	}
	if g := st.games["g"]; g.backoff != 0 || !g.notBefore.IsZero() {
		t.Errorf("after a Ready: backoff %v until %v, want none", g.backoff, g.notBefore)
	}
	if exits(exitCrashed) != 8 {
		t.Errorf("crashed exits = %v, want 8", exits(exitCrashed))
	}
	checkGauges(t, fx, map[string]float64{StateReady: 1})
}

func names(ss []*server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.name)
	}
	return out
}

// checkGauges compares usher_gameservers of game g with want (missing states want 0) and
// with the servers the state holds.
func checkGauges(tb testing.TB, fx *stateFixture, want map[string]float64) {
	tb.Helper()
	counts := map[string]float64{}
	for _, s := range fx.st.snapshot() {
		if s.Game == "g" {
			counts[s.State]++
		}
	}
	for _, state := range allStates {
		got := testutil.ToFloat64(fx.m.GameServers.WithLabelValues("g", state))
		if got != want[state] || got != counts[state] {
			tb.Errorf("usher_gameservers{game=g,state=%s} = %v, want %v (servers in that state: %v)", state, got, want[state], counts[state])
		}
	}
}

func TestLineWriter(t *testing.T) {
	sink := &logSink{}
	w := &lineWriter{log: slog.New(&captureHandler{sink: sink}), level: slog.LevelInfo, stream: "stderr"}
	long := strings.Repeat("x", maxLogLine+10)
	for _, chunk := range []string{"one\r\ntw", "o\n", "\n", long[:100], long[100:] + "\nthree", " and a half"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(chunk))
		}
	}
	w.Close()
	var got []string
	for _, r := range sink.all() {
		got = append(got, fmt.Sprintf("%s len=%d truncated=%s", r.attrs["stream"], len(r.attrs["line"]), r.attrs["truncated"]))
	}
	want := []string{
		"stderr len=3 truncated=",                               // one
		"stderr len=3 truncated=",                               // two
		"stderr len=0 truncated=",                               // an empty line
		fmt.Sprintf("stderr len=%d truncated=true", maxLogLine), // the long line, cut
		"stderr len=16 truncated=",                              // "three and a half", flushed by Close
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logged lines (-want +got):\n%s", diff)
	}
}
