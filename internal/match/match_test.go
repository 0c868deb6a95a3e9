package match

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/usher-gg/usher/internal/metrics"
	"github.com/usher-gg/usher/internal/testclock"
	"github.com/usher-gg/usher/internal/ticket"
)

func TestNewCode(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		for _, n := range []int{4, 5} {
			c := NewCode(n)
			if len(c) != n {
				t.Fatalf("NewCode(%d) = %q", n, c)
			}
			if strings.ContainsAny(c, "0O1IL") {
				t.Fatalf("NewCode gave a look-alike: %q", c)
			}
			for _, r := range c {
				if !strings.ContainsRune(CodeAlphabet, r) {
					t.Fatalf("NewCode gave %q outside the alphabet", c)
				}
			}
			seen[c] = true
		}
	}
	if len(seen) < 3900 { // 4000 draws from ≥ 923k codes: collisions are rare
		t.Errorf("only %d distinct codes of 4000: not random enough", len(seen))
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"k7qx", "K7QX", false},
		{"  K7QXZ ", "K7QXZ", false},
		{"K7Q0", "K7Q0", false}, // well formed; simply names no room
		{"K7Q", "", true},
		{"K7QXZW", "", true},
		{"K7-X", "", true},
		{"K7QÜ", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := NormalizeCode(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrInvalidRoomCode) {
			t.Errorf("NormalizeCode(%q) error %v is not ErrInvalidRoomCode", tt.in, err)
		}
	}
}

// scriptedFleet answers Create from a script of errors, then succeeds. It records codes tried.
type scriptedFleet struct {
	mu       sync.Mutex
	script   []error
	codes    []string
	quick    error
	released []string
}

func (f *scriptedFleet) Create(_ context.Context, game, room string, public bool, player string) (Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codes = append(f.codes, room)
	if len(f.script) > 0 {
		err := f.script[0]
		f.script = f.script[1:]
		return Server{}, err
	}
	return Server{Name: "gs-1", Game: game, Room: room, Addr: "127.0.0.1:1", Public: public, MaxPlayers: 4}, nil
}

func (f *scriptedFleet) Join(context.Context, string, string, string) (Server, error) {
	return Server{}, ErrRoomNotFound
}

func (f *scriptedFleet) QuickJoin(context.Context, string, string) (Server, error) {
	return Server{}, f.quick
}

func (f *scriptedFleet) Release(_ context.Context, game, room, player string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, game+"/"+room+"/"+player)
	return nil
}

func (f *scriptedFleet) Rooms(context.Context, string) ([]Room, error) {
	return []Room{{Game: "g", Connected: 2}, {Game: "g", Connected: 1}, {Game: "other", Connected: 5}}, nil
}

type memTickets struct{ issued []ticket.Ticket }

func (m *memTickets) Issue(_ context.Context, t ticket.Ticket) (string, time.Time, error) {
	m.issued = append(m.issued, t)
	return "tkt", time.Unix(100, 0), nil
}

func (m *memTickets) Redeem(context.Context, string) (ticket.Ticket, error) {
	return ticket.Ticket{}, ticket.ErrInvalid
}

// newTestService runs on a fake clock that moves on by itself whenever the service waits
// on it, so retries take no wall time.
func newTestService(tb testing.TB, f Fleet, tk ticket.Store, wait time.Duration) (*Service, *metrics.Metrics) {
	m := metrics.New(prometheus.NewRegistry())
	clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	tb.Cleanup(autoStep(clk))
	return NewService([]Game{{ID: "g", Name: "G", MaxPlayers: 4}}, f, tk, Shared{}, NewRetry(wait, clk), m, slog.New(slog.NewTextHandler(io.Discard, nil))), m
}

// autoStep moves clk on by 10ms whenever something waits on it, until stop is called.
func autoStep(clk *clocktesting.FakeClock) (stop func()) {
	return testclock.StepWhileWaiting(clk, 10*time.Millisecond)
}

func TestCreateRetriesTakenCodes(t *testing.T) {
	f := &scriptedFleet{script: []error{ErrRoomExists, ErrRoomExists, ErrRoomExists, ErrRoomExists, ErrRoomExists, ErrRoomExists, ErrRoomExists, ErrRoomExists, ErrRoomExists}}
	tk := &memTickets{}
	s, m := newTestService(t, f, tk, 0)
	res, err := s.Join(context.Background(), JoinRequest{Game: "g", Player: "p_1", Name: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.codes) != 10 {
		t.Fatalf("tried %d codes, want 10", len(f.codes))
	}
	if len(f.codes[7]) != 4 || len(f.codes[8]) != 5 {
		t.Errorf("codes %v: want 4 letters for 8 tries, then 5", f.codes)
	}
	if res.Room != f.codes[9] || res.Ticket != "tkt" || res.MaxPlayers != 4 {
		t.Errorf("result %+v", res)
	}
	if got := tk.issued[0]; got.Player != "p_1" || got.Name != "Ann" || got.Server != "gs-1" || got.Room != res.Room {
		t.Errorf("ticket %+v not bound to player and server", got)
	}
	if got := testutil.ToFloat64(m.Joins.WithLabelValues("g", "create", "ok")); got != 1 {
		t.Errorf("joins ok = %v", got)
	}
}

func TestNoCapacityWaitsThenGivesUp(t *testing.T) {
	f := &scriptedFleet{script: []error{ErrNoCapacity, ErrNoCapacity}}
	s, _ := newTestService(t, f, &memTickets{}, 2*time.Second)
	if _, err := s.Join(context.Background(), JoinRequest{Game: "g", Player: "p"}); err != nil {
		t.Fatalf("a server became free within the wait: %v", err)
	}

	f = &scriptedFleet{script: []error{ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity, ErrNoCapacity}}
	s, m := newTestService(t, f, &memTickets{}, 0)
	_, err := s.Join(context.Background(), JoinRequest{Game: "g", Player: "p"})
	if !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("err = %v, want ErrNoCapacity", err)
	}
	if len(f.codes) != 1 {
		t.Errorf("with no wait, tried %d times, want 1", len(f.codes))
	}
	if got := testutil.ToFloat64(m.Joins.WithLabelValues("g", "create", "no_capacity")); got != 1 {
		t.Errorf("joins no_capacity = %v", got)
	}
}

func TestQuickFallsBackToPublicRoom(t *testing.T) {
	f := &scriptedFleet{quick: ErrRoomNotFound}
	s, _ := newTestService(t, f, &memTickets{}, 0)
	res, err := s.Join(context.Background(), JoinRequest{Game: "g", Quick: true, Player: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Public || len(f.codes) != 1 {
		t.Errorf("quick with no open room should create a public room: %+v, codes %v", res, f.codes)
	}
}

func TestJoinErrors(t *testing.T) {
	s, _ := newTestService(t, &scriptedFleet{}, &memTickets{}, 0)
	if _, err := s.Join(context.Background(), JoinRequest{Game: "nope", Player: "p"}); !errors.Is(err, ErrUnknownGame) {
		t.Errorf("unknown game: err = %v", err)
	}
	if _, err := s.Join(context.Background(), JoinRequest{Game: "g", Room: "AB", Player: "p"}); !errors.Is(err, ErrInvalidRoomCode) {
		t.Errorf("bad code: err = %v", err)
	}
	if _, err := s.Join(context.Background(), JoinRequest{Game: "g", Room: "ABCD", Player: "p"}); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("missing room: err = %v", err)
	}
}

func TestGamesCounts(t *testing.T) {
	s, _ := newTestService(t, &scriptedFleet{}, &memTickets{}, 0)
	games, err := s.Games(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(games) != 1 || games[0].ID != "g" || games[0].Rooms != 2 || games[0].Players != 3 {
		t.Errorf("games = %+v, want g with 2 rooms and 3 players", games)
	}
}

// quickFleet has no public room until its first create fails for want of a server; then
// a room made by someone else shows up.
type quickFleet struct {
	scriptedFleet
	quickCalls int
}

func (f *quickFleet) QuickJoin(_ context.Context, game, player string) (Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quickCalls++
	if len(f.codes) == 0 {
		return Server{}, ErrRoomNotFound
	}
	return Server{Name: "gs-9", Game: game, Room: "OTHR", Addr: "127.0.0.1:2", Public: true, MaxPlayers: 4}, nil
}

// TestQuickTriesRoomsAgain: when quick match finds no room and no server is free to make
// one, it looks for a room again (someone else may have made one), within the wait.
func TestQuickTriesRoomsAgain(t *testing.T) {
	f := &quickFleet{scriptedFleet: scriptedFleet{script: []error{ErrNoCapacity}}}
	s, _ := newTestService(t, f, &memTickets{}, 3*time.Second)
	res, err := s.Join(context.Background(), JoinRequest{Game: "g", Quick: true, Player: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Room != "OTHR" || f.quickCalls != 2 || len(f.codes) != 1 {
		t.Errorf("joined %s after %d quick joins and %d creates; want OTHR after 2 and 1", res.Room, f.quickCalls, len(f.codes))
	}
}

// TestOneRoomPerPlayer: a player who joins a second room gives up the seat of the first.
func TestOneRoomPerPlayer(t *testing.T) {
	f := &scriptedFleet{}
	s, _ := newTestService(t, f, &memTickets{}, 0)
	first, err := s.Join(context.Background(), JoinRequest{Game: "g", Player: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.released) != 0 {
		t.Fatalf("released %v on the first join", f.released)
	}
	second, err := s.Join(context.Background(), JoinRequest{Game: "g", Player: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"g/" + first.Room + "/p"}; !slices.Equal(f.released, want) {
		t.Errorf("released %v, want %v", f.released, want)
	}
	if h, ok, _ := s.Holds(context.Background(), "p"); !ok || h.Room != second.Room {
		t.Errorf("hold = %+v, %v; want room %s", h, ok, second.Room)
	}
	// Another player's join releases nothing of p's.
	if _, err := s.Join(context.Background(), JoinRequest{Game: "g", Player: "q"}); err != nil || len(f.released) != 1 {
		t.Errorf("q's join: %v, released %v", err, f.released)
	}
}

func TestMemoryHoldsExpire(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	h := NewMemoryHolds(time.Minute, clk)
	ctx := context.Background()
	if prev, _ := h.Move(ctx, "p", Hold{Game: "g", Room: "AAAA"}); prev != (Hold{}) {
		t.Errorf("first move: prev %+v", prev)
	}
	if prev, _ := h.Move(ctx, "p", Hold{Game: "g", Room: "BBBB"}); prev.Room != "AAAA" {
		t.Errorf("second move: prev %+v, want AAAA", prev)
	}
	clk.Step(2 * time.Minute)
	if _, ok, _ := h.Get(ctx, "p"); ok {
		t.Error("hold still there after its ttl")
	}
	if prev, _ := h.Move(ctx, "p", Hold{Game: "g", Room: "CCCC"}); prev != (Hold{}) {
		t.Errorf("move after expiry: prev %+v, want none", prev)
	}
}

func TestOnMove(t *testing.T) {
	s, _ := newTestService(t, &scriptedFleet{}, &memTickets{}, 0)
	var moves []string
	s.OnMove(func(player string, from Hold) { moves = append(moves, player+" left "+from.Room) })
	first, _ := s.Join(context.Background(), JoinRequest{Game: "g", Player: "p"})
	if _, err := s.Join(context.Background(), JoinRequest{Game: "g", Room: first.Room, Player: "p"}); err == nil {
		t.Fatal("scriptedFleet's Join should fail")
	}
	if len(moves) != 0 {
		t.Errorf("moves %v after a failed join, want none", moves)
	}
	if _, err := s.Join(context.Background(), JoinRequest{Game: "g", Player: "p"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"p left " + first.Room}; !slices.Equal(moves, want) {
		t.Errorf("moves %v, want %v", moves, want)
	}
}
