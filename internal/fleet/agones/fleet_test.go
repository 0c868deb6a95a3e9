package agones

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
	"github.com/usher-gg/usher/internal/testclock"
	"github.com/usher-gg/usher/internal/testlog"
)

// The tests run the fleet against agonestest's fake API server: the allocation endpoint
// and the GameServer list/watch the informers use, over HTTP, as in a cluster.

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testGames: treasure dials node addresses (portPolicy Dynamic) in "default"; duel dials
// pod IPs (portPolicy None) from Fleet duel-fleet in "games".
var testGames = []Game{
	{ID: "treasure", MaxPlayers: 3, PortName: "ws"},
	{ID: "duel", MaxPlayers: 2, Namespace: "games", Fleet: "duel-fleet", PortName: "ws", Dial: DialPod},
}

type env struct {
	fake *agonestest.Server
	f    *Fleet
	clk  *clocktesting.FakeClock
	reg  *prometheus.Registry
	logs *testlog.Buffer
	stop func() // stops the fleet (also done by cleanup)
}

// newEnv starts a fake cluster holding servers, and a synced fleet over it.
func newEnv(tb testing.TB, cfg Config, servers ...*agonesv1.GameServer) *env {
	tb.Helper()
	fake := agonestest.NewServer(tb)
	// A short batch window keeps these tests quick; the tests of batching set Agones' own.
	fake.SetBatchWait(2 * time.Millisecond)
	clk := clocktesting.NewFakeClock(t0)
	fake.SetNow(clk.Now)
	for _, gs := range servers {
		fake.Add(gs)
	}
	e := &env{fake: fake, clk: clk}
	e.start(tb, cfg)
	return e
}

// start runs a new fleet over e.fake (a restart when one ran before).
func (e *env) start(tb testing.TB, cfg Config) {
	tb.Helper()
	if cfg.Games == nil {
		cfg.Games = testGames
	}
	if cfg.Coalesce == 0 {
		cfg.Coalesce = -1 // the gathering wait runs on the fake clock: tests of it step it
	}
	e.reg = prometheus.NewRegistry()
	e.logs = &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := New(cfg, e.fake.Client(), metrics.New(e.reg), e.clk, log)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
	tb.Cleanup(e.stop)
	eventually(tb, f.Synced)
	e.f = f
}

// caughtUp waits until the fleet's informers hold exactly the fake's GameServers of the
// configured Fleets, at their latest resource versions.
func (e *env) caughtUp(tb testing.TB) {
	tb.Helper()
	eventually(tb, func() bool {
		want := map[string]string{}
		for _, gs := range e.fake.GameServers() {
			if e.f.gameOf(gs) != nil {
				want[gs.Namespace+"/"+gs.Name] = gs.ResourceVersion
			}
		}
		got := map[string]string{}
		for _, gs := range e.f.gameServers("") {
			got[gs.Namespace+"/"+gs.Name] = gs.ResourceVersion
		}
		return cmp.Equal(want, got)
	})
}

// server is a Ready GameServer of a test game.
func server(game, name string) *agonesv1.GameServer {
	for _, g := range testGames {
		if g.ID == game {
			return serverOf(g, name)
		}
	}
	panic("no test game " + game)
}

// serverOf is a Ready GameServer of g.
func serverOf(g Game, name string) *agonesv1.GameServer {
	g = g.withDefaults()
	return agonestest.GameServer(g.Namespace, g.Fleet, name, g.PortName, int64(g.MaxPlayers))
}

func (g Game) withDefaults() Game { return Config{Games: []Game{g}}.withDefaults().Games[0] }

// room is an Allocated GameServer holding a room, as Create would leave it.
func room(game, name, code string, public bool, players ...string) *agonesv1.GameServer {
	return asRoom(server(game, name), game, code, public, players...)
}

// asRoom makes gs, a GameServer of game, hold a room as Create would leave it.
func asRoom(gs *agonesv1.GameServer, game, code string, public bool, players ...string) *agonesv1.GameServer {
	gs.Status.State = agonesv1.GameServerStateAllocated
	gs.Labels[contract.LabelRoom] = code
	gs.Labels[contract.LabelPublic] = boolLabel(public)
	gs.Labels[contract.LabelGame] = game
	gs.Annotations[AnnotationRoomCreated] = t0.Add(-time.Minute).Format(time.RFC3339Nano)
	l := gs.Spec.Lists[contract.PlayersList]
	l.Values = slices.Clone(players)
	gs.Status.Lists = map[string]agonesv1.ListStatus{contract.PlayersList: l}
	return gs
}

func addr(gs *agonesv1.GameServer) string {
	return net.JoinHostPort(agonestest.NodeAddress, strconv.Itoa(int(agonestest.HostPort(gs.Name))))
}

func podAddr(gs *agonesv1.GameServer) string {
	return net.JoinHostPort(agonestest.PodIP(gs.Name), strconv.Itoa(int(agonestest.HostPort(gs.Name))))
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name    string
		servers []*agonesv1.GameServer
		game    string
		room    string
		public  bool
		want    match.Server
		wantErr error
	}{
		{
			name:    "public room on a ready server",
			servers: []*agonesv1.GameServer{server("treasure", "t-1")},
			game:    "treasure", room: "ABCD", public: true,
			want: match.Server{Name: "t-1", Game: "treasure", Room: "ABCD", Addr: addr(server("treasure", "t-1")), Public: true, MaxPlayers: 3},
		},
		{
			name:    "private room, pod dialling",
			servers: []*agonesv1.GameServer{server("duel", "d-1")},
			game:    "duel", room: "WXYZ",
			want: match.Server{Name: "d-1", Game: "duel", Room: "WXYZ", Addr: podAddr(server("duel", "d-1")), MaxPlayers: 2},
		},
		{
			name:    "allocated servers are not taken",
			servers: []*agonesv1.GameServer{room("treasure", "t-1", "QQQQ", true, "p")},
			game:    "treasure", room: "ABCD",
			wantErr: match.ErrNoCapacity,
		},
		{
			name: "a ready server without a free seat is not taken",
			servers: []*agonesv1.GameServer{func() *agonesv1.GameServer {
				gs := server("treasure", "t-1")
				gs.Spec.Lists[contract.PlayersList] = agonesv1.ListStatus{Capacity: 0}
				return gs
			}()},
			game: "treasure", room: "ABCD",
			wantErr: match.ErrNoCapacity,
		},
		{
			name:    "servers of another fleet are not taken",
			servers: []*agonesv1.GameServer{server("duel", "d-1")},
			game:    "treasure", room: "ABCD",
			wantErr: match.ErrNoCapacity,
		},
		{
			name:    "code in use in the same game",
			servers: []*agonesv1.GameServer{room("treasure", "t-1", "ABCD", false, "p"), server("treasure", "t-2")},
			game:    "treasure", room: "ABCD",
			wantErr: match.ErrRoomExists,
		},
		{
			name:    "code in use in another game",
			servers: []*agonesv1.GameServer{room("duel", "d-1", "ABCD", false, "p"), server("treasure", "t-2")},
			game:    "treasure", room: "ABCD",
			wantErr: match.ErrRoomExists,
		},
		{
			name: "a stale room label on a ready server is no room",
			servers: []*agonesv1.GameServer{func() *agonesv1.GameServer {
				gs := room("treasure", "t-1", "ABCD", false, "old")
				gs.Status.State = agonesv1.GameServerStateReady
				gs.Status.Lists = nil // emptied on reuse
				return gs
			}()},
			game: "treasure", room: "ABCD", public: true,
			want: match.Server{Name: "t-1", Game: "treasure", Room: "ABCD", Addr: addr(server("treasure", "t-1")), Public: true, MaxPlayers: 3},
		},
		{
			name:    "unknown game",
			servers: []*agonesv1.GameServer{server("treasure", "t-1")},
			game:    "chess", room: "ABCD",
			wantErr: match.ErrUnknownGame,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, tt.servers...)
			got, err := e.f.Create(context.Background(), tt.game, tt.room, tt.public, "host")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(tt.wantErr, match.ErrRoomExists) && len(e.fake.Requests()) != 0 {
					t.Errorf("sent %d allocations for a code in use, want none", len(e.fake.Requests()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("server (-want +got):\n%s", diff)
			}
			g := e.f.games[tt.game]
			gs, _ := e.fake.Get(g.Namespace, got.Name)
			wantLabels := map[string]string{contract.LabelRoom: tt.room, contract.LabelPublic: boolLabel(tt.public), contract.LabelGame: tt.game}
			for k, v := range wantLabels {
				if gs.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, gs.Labels[k], v)
				}
			}
			if gs.Status.State != agonesv1.GameServerStateAllocated || !slices.Equal(seats(gs), []string{"host"}) {
				t.Errorf("gameserver = %s with seats %v, want Allocated with [host]", gs.Status.State, seats(gs))
			}
			if got := gs.Annotations[AnnotationRoomCreated]; got != t0.Format(time.RFC3339Nano) {
				t.Errorf("room created annotation = %q, want %q", got, t0.Format(time.RFC3339Nano))
			}
		})
	}
}

// TestCreateRequest pins the allocation Create sends (AGONES.md §1.4).
func TestCreateRequest(t *testing.T) {
	e := newEnv(t, Config{}, server("treasure", "t-1"))
	if _, err := e.f.Create(context.Background(), "treasure", "ABCD", false, "host"); err != nil {
		t.Fatal(err)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("sent %d allocations, want 1", len(reqs))
	}
	want := agonesv1.GameServerAllocationSpec{
		Selectors: []agonesv1.GameServerSelector{{
			LabelSelector:   metav1.LabelSelector{MatchLabels: map[string]string{"agones.dev/fleet": "treasure"}},
			GameServerState: ptr(agonesv1.GameServerStateReady),
			Lists:           map[string]agonesv1.ListSelector{"players": {MinAvailable: 1}},
		}},
		Scheduling: agonesv1.Packed,
		MetaPatch: agonesv1.MetaPatch{
			Labels:      map[string]string{"usher.dev/room": "ABCD", "usher.dev/public": "false", "usher.dev/game": "treasure"},
			Annotations: map[string]string{AnnotationRoomCreated: t0.Format(time.RFC3339Nano)},
		},
		Lists: map[string]agonesv1.ListAction{"players": {AddValues: []string{"host"}}},
	}
	if diff := cmp.Diff(want, reqs[0].Spec); diff != "" {
		t.Errorf("allocation spec (-want +got):\n%s", diff)
	}
	for _, key := range []string{"game=treasure", "room=ABCD", "gameserver=t-1", "ns=default"} {
		if !strings.Contains(e.logs.String(), key) {
			t.Errorf("logs lack %q:\n%s", key, e.logs.String())
		}
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		name      string
		servers   []*agonesv1.GameServer
		game      string
		room      string
		player    string
		want      string   // the server's name
		wantSeats []string // its seats afterwards
		wantErr   error
		wantSent  int // allocations sent
	}{
		{
			name:    "free seat",
			servers: []*agonesv1.GameServer{room("treasure", "t-1", "ABCD", false, "host"), server("treasure", "t-2")},
			game:    "treasure", room: "ABCD", player: "p2",
			want: "t-1", wantSeats: []string{"host", "p2"}, wantSent: 1,
		},
		{
			name:    "already seated: no allocation",
			servers: []*agonesv1.GameServer{room("treasure", "t-1", "ABCD", false, "host", "p2")},
			game:    "treasure", room: "ABCD", player: "p2",
			want: "t-1", wantSeats: []string{"host", "p2"}, wantSent: 0,
		},
		{
			name:    "full",
			servers: []*agonesv1.GameServer{room("treasure", "t-1", "ABCD", false, "a", "b", "c")},
			game:    "treasure", room: "ABCD", player: "p2",
			wantErr: match.ErrRoomFull, wantSent: 1,
		},
		{
			name:    "no such room",
			servers: []*agonesv1.GameServer{room("treasure", "t-1", "ABCD", false, "host")},
			game:    "treasure", room: "QQQQ", player: "p2",
			wantErr: match.ErrRoomNotFound, wantSent: 1,
		},
		{
			name:    "room of another game",
			servers: []*agonesv1.GameServer{room("duel", "d-1", "ABCD", false, "host")},
			game:    "treasure", room: "ABCD", player: "p2",
			wantErr: match.ErrRoomNotFound, wantSent: 0,
		},
		{
			name: "room ended",
			servers: []*agonesv1.GameServer{func() *agonesv1.GameServer {
				gs := room("treasure", "t-1", "ABCD", false, "host")
				gs.Status.State = agonesv1.GameServerStateShutdown
				return gs
			}()},
			game: "treasure", room: "ABCD", player: "p2",
			wantErr: match.ErrRoomNotFound, wantSent: 1,
		},
		{
			name:    "a code that cannot be a label value",
			servers: []*agonesv1.GameServer{room("treasure", "t-1", "ABCD", false, "host")},
			game:    "treasure", room: "AB CD", player: "p2",
			wantErr: match.ErrRoomNotFound, wantSent: 0,
		},
		{
			name: "unknown game",
			game: "chess", room: "ABCD", player: "p2",
			wantErr: match.ErrUnknownGame, wantSent: 0,
		},
		{
			name:    "pod dialling",
			servers: []*agonesv1.GameServer{room("duel", "d-1", "DUEL", false, "host")},
			game:    "duel", room: "DUEL", player: "p2",
			want: "d-1", wantSeats: []string{"host", "p2"}, wantSent: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, tt.servers...)
			got, err := e.f.Join(context.Background(), tt.game, tt.room, tt.player)
			if n := len(e.fake.Requests()); n != tt.wantSent {
				t.Errorf("sent %d allocations, want %d", n, tt.wantSent)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := e.f.games[tt.game]
			gs, _ := e.fake.Get(g.Namespace, tt.want)
			wantAddr := addr(gs)
			if g.Dial == DialPod {
				wantAddr = podAddr(gs)
			}
			want := match.Server{Name: tt.want, Game: tt.game, Room: tt.room, Addr: wantAddr, MaxPlayers: g.MaxPlayers}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("server (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSeats, seats(gs)); diff != "" {
				t.Errorf("seats (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJoinRequest pins the allocation Join sends (AGONES.md §1.5).
func TestJoinRequest(t *testing.T) {
	e := newEnv(t, Config{}, room("treasure", "t-1", "ABCD", false, "host"))
	if _, err := e.f.Join(context.Background(), "treasure", "ABCD", "p2"); err != nil {
		t.Fatal(err)
	}
	want := agonesv1.GameServerAllocationSpec{
		Selectors: []agonesv1.GameServerSelector{{
			LabelSelector:   metav1.LabelSelector{MatchLabels: map[string]string{"agones.dev/fleet": "treasure", "usher.dev/room": "ABCD"}},
			GameServerState: ptr(agonesv1.GameServerStateAllocated),
			Lists:           map[string]agonesv1.ListSelector{"players": {MinAvailable: 1}},
		}},
		Scheduling: agonesv1.Packed,
		Lists:      map[string]agonesv1.ListAction{"players": {AddValues: []string{"p2"}}},
	}
	if diff := cmp.Diff(want, e.fake.Requests()[0].Spec); diff != "" {
		t.Errorf("allocation spec (-want +got):\n%s", diff)
	}
}

// TestJoinFillsRoom joins until the room is full, then once more.
func TestJoinFillsRoom(t *testing.T) {
	e := newEnv(t, Config{}, server("treasure", "t-1"))
	ctx := context.Background()
	if _, err := e.f.Create(ctx, "treasure", "ABCD", false, "p1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p2", "p3"} {
		if _, err := e.f.Join(ctx, "treasure", "ABCD", p); err != nil {
			t.Fatalf("join %s: %v", p, err)
		}
	}
	e.caughtUp(t) // ErrRoomFull needs the watch to know the room
	if _, err := e.f.Join(ctx, "treasure", "ABCD", "p4"); !errors.Is(err, match.ErrRoomFull) {
		t.Fatalf("join p4: err = %v, want ErrRoomFull", err)
	}
	gs, _ := e.fake.Get("default", "t-1")
	if diff := cmp.Diff([]string{"p1", "p2", "p3"}, seats(gs)); diff != "" {
		t.Errorf("seats (-want +got):\n%s", diff)
	}
}

func TestQuickJoin(t *testing.T) {
	servers := []*agonesv1.GameServer{
		room("treasure", "t-1", "ONE1", true, "a"),
		room("treasure", "t-2", "TWO2", true, "b", "c"),
		room("treasure", "t-3", "FULL", true, "d", "e", "f"),
		room("treasure", "t-4", "PRIV", false, "g", "h"),
		room("duel", "d-1", "DUEL", true, "i"),
		server("treasure", "t-5"),
	}
	e := newEnv(t, Config{}, servers...)
	ctx := context.Background()
	// The fullest public room with a free seat first, then the next; never the private
	// room, the full one, another game's, or a Ready server.
	for i, want := range []string{"TWO2", "ONE1", "ONE1"} {
		got, err := e.f.QuickJoin(ctx, "treasure", fmt.Sprintf("q%d", i))
		if err != nil {
			t.Fatalf("quick join %d: %v", i, err)
		}
		if got.Room != want || !got.Public {
			t.Errorf("quick join %d: room %s (public %v), want public room %s", i, got.Room, got.Public, want)
		}
	}
	if _, err := e.f.QuickJoin(ctx, "treasure", "q3"); !errors.Is(err, match.ErrRoomNotFound) {
		t.Errorf("quick join with every public room full: err = %v, want ErrRoomNotFound", err)
	}
	// Usher picks the room; the allocation names it, and still requires it public, live
	// and with a free seat.
	want := agonesv1.GameServerSelector{
		LabelSelector: metav1.LabelSelector{MatchLabels: map[string]string{
			agonesv1.LabelFleet: "treasure", contract.LabelRoom: "TWO2", contract.LabelPublic: "true"}},
		GameServerState: ptr(agonesv1.GameServerStateAllocated),
		Lists:           map[string]agonesv1.ListSelector{contract.PlayersList: {MinAvailable: 1}},
	}
	if diff := cmp.Diff([]agonesv1.GameServerSelector{want}, e.fake.Requests()[0].Spec.Selectors); diff != "" {
		t.Errorf("quick join allocation selectors (-want +got):\n%s", diff)
	}
	// A player already seated in a public room gets it back without an allocation.
	e.caughtUp(t)
	sent := len(e.fake.Requests())
	got, err := e.f.QuickJoin(ctx, "treasure", "q0")
	if err != nil || got.Room != "TWO2" {
		t.Errorf("quick join again = %s, %v; want TWO2", got.Room, err)
	}
	if n := len(e.fake.Requests()); n != sent {
		t.Errorf("quick join again sent %d allocations, want none", n-sent)
	}
}

// TestContention: Contention is retried under the retry policy, on the injected clock,
// until the policy's wait runs out.
func TestContention(t *testing.T) {
	tests := []struct {
		name       string
		contend    int
		wait       time.Duration
		wantErr    error
		minSent    int
		maxSent    int
		minW, maxW time.Duration // total waited on the fake clock
	}{
		// Waits: 400-600ms, then 600-900ms (match.DefaultBackoff).
		{"two contentions, then allocated", 2, 3 * time.Second, nil, 3, 3, 1000 * time.Millisecond, 1500 * time.Millisecond},
		{"contention every time", 1000, 3 * time.Second, match.ErrNoCapacity, 4, 6, 1000 * time.Millisecond, 3 * time.Second},
		{"no wait", 1000, time.Nanosecond, match.ErrNoCapacity, 1, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{Retry: match.Retry{Wait: tt.wait}}, server("treasure", "t-1"))
			e.fake.Contend(tt.contend)
			stop := stepWhileWaiting(e.clk)
			_, err := e.f.Create(context.Background(), "treasure", "ABCD", true, "host")
			stop()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := len(e.fake.Requests()); n < tt.minSent || n > tt.maxSent {
				t.Errorf("sent %d allocations, want %d to %d", n, tt.minSent, tt.maxSent)
			}
			// The stepper moves the clock 1ms at a time, so up to 1ms per wait is added.
			if waited := e.clk.Since(t0); waited < tt.minW || waited > tt.maxW+10*time.Millisecond {
				t.Errorf("waited %v, want %v to %v", waited, tt.minW, tt.maxW)
			}
		})
	}
}

// stepWhileWaiting advances clk by 1ms whenever something waits on it, until stopped.
func stepWhileWaiting(clk *clocktesting.FakeClock) (stop func()) {
	return testclock.StepWhileWaiting(clk, time.Millisecond)
}

func TestContentionCancelled(t *testing.T) {
	e := newEnv(t, Config{}, server("treasure", "t-1"))
	e.fake.Contend(100)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.f.Create(ctx, "treasure", "ABCD", true, "host")
		errc <- err
	}()
	eventually(t, e.clk.HasWaiters) // backing off after the first Contention
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestAllocationErrors: 422 and 500 reach the caller, unretried and not taken for
// expected outcomes.
func TestAllocationErrors(t *testing.T) {
	tests := []struct {
		name        string
		inject      func(*agonestest.Server)
		call        func(*Fleet) error
		wantText    string
		wantInvalid bool
	}{
		{"422 on create", func(s *agonestest.Server) { s.RejectNext("spec.metadata.labels: Invalid value") },
			func(f *Fleet) error {
				_, err := f.Create(context.Background(), "treasure", "ABCD", true, "host")
				return err
			},
			"spec.metadata.labels: Invalid value", true},
		{"500 on create", func(s *agonestest.Server) { s.FailNext(500, "allocator exploded") },
			func(f *Fleet) error {
				_, err := f.Create(context.Background(), "treasure", "ABCD", true, "host")
				return err
			},
			"allocator exploded", false},
		{"500 on join", func(s *agonestest.Server) { s.FailNext(500, "allocator exploded") },
			func(f *Fleet) error { _, err := f.Join(context.Background(), "treasure", "QQQQ", "p"); return err },
			"allocator exploded", false},
		{"422 on quick join", func(s *agonestest.Server) {
			s.Add(room("treasure", "t-2", "OPEN", true, "a"))
			s.RejectNext("bad selector")
		},
			func(f *Fleet) error { _, err := f.QuickJoin(context.Background(), "treasure", "p"); return err },
			"bad selector", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{}, server("treasure", "t-1"))
			tt.inject(e.fake)
			e.caughtUp(t)
			err := tt.call(e.f)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantText)
			}
			if apierrors.IsInvalid(err) != tt.wantInvalid {
				t.Errorf("IsInvalid = %v, want %v", !tt.wantInvalid, tt.wantInvalid)
			}
			for _, expected := range []error{match.ErrNoCapacity, match.ErrRoomNotFound, match.ErrRoomFull, match.ErrRoomExists} {
				if errors.Is(err, expected) {
					t.Errorf("err = %v, is %v; want an unexpected error", err, expected)
				}
			}
			if n := len(e.fake.Requests()); n != 1 {
				t.Errorf("sent %d allocations, want 1 (no retry)", n)
			}
		})
	}
}

// TestDroppedSeat: when Agones allocates but drops the player past the list's capacity
// (possible while its cache lags), the fleet does not hand out a seat it lacks.
func TestDroppedSeat(t *testing.T) {
	t.Run("join", func(t *testing.T) {
		e := newEnv(t, Config{}, room("treasure", "t-1", "ABCD", false, "a", "b", "c"))
		e.fake.StaleCache(1)
		_, err := e.f.Join(context.Background(), "treasure", "ABCD", "p")
		if !errors.Is(err, match.ErrRoomFull) || !errors.Is(err, errSeatDropped) {
			t.Fatalf("err = %v, want ErrRoomFull from a dropped seat", err)
		}
		if gs, _ := e.fake.Get("default", "t-1"); slices.Contains(seats(gs), "p") {
			t.Errorf("seats %v hold the player: the fake did not drop it", seats(gs))
		}
	})
	t.Run("create", func(t *testing.T) {
		// t-1's List has no room at all, as far as the stored object goes; the allocator
		// picks it from a stale cache all the same and drops the host.
		gs := server("treasure", "t-1")
		gs.Spec.Lists[contract.PlayersList] = agonesv1.ListStatus{Capacity: 0}
		e := newEnv(t, Config{}, gs, server("treasure", "t-2"))
		e.fake.StaleCache(1)
		stop := stepWhileWaiting(e.clk)
		_, err := e.f.Create(context.Background(), "treasure", "ABCD", false, "host")
		stop()
		if !errors.Is(err, errSeatDropped) || !errors.Is(err, match.ErrNoCapacity) {
			t.Fatalf("err = %v, want a dropped seat taken for no capacity (the service tries another server)", err)
		}
		if !strings.Contains(e.logs.String(), "room created without its host was released") {
			t.Errorf("no release logged:\n%s", e.logs.String())
		}
		// No room is left with nobody in it: t-1 holds no room any more.
		for _, gs := range e.fake.GameServers() {
			if isLiveRoom(gs) && len(seats(gs)) == 0 {
				t.Errorf("gameserver %s is a live room %q with nobody in it", gs.Name, gs.Labels[contract.LabelRoom])
			}
		}
		// The next try takes t-2.
		srv, err := e.f.Create(context.Background(), "treasure", "EFGH", false, "host")
		if err != nil || srv.Name != "t-2" {
			t.Errorf("second create = %s, %v; want t-2", srv.Name, err)
		}
	})
}

// TestRestart: a new fleet over the same cluster knows the rooms the first one made.
func TestRestart(t *testing.T) {
	e := newEnv(t, Config{}, server("treasure", "t-1"), server("treasure", "t-2"), server("duel", "d-1"))
	ctx := context.Background()
	for _, c := range []struct {
		game, room string
		public     bool
	}{{"treasure", "ABCD", true}, {"treasure", "EFGH", false}, {"duel", "DUEL", false}} {
		if _, err := e.f.Create(ctx, c.game, c.room, c.public, "host-"+c.room); err != nil {
			t.Fatal(err)
		}
	}
	e.caughtUp(t)
	before, err := e.f.Rooms(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	e.stop()

	e.start(t, Config{})
	after, err := e.f.Rooms(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 3 {
		t.Errorf("rooms after restart: %d, want 3", len(after))
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("rooms changed across the restart (-before +after):\n%s", diff)
	}
	if _, err := e.f.Create(ctx, "treasure", "ABCD", true, "x"); !errors.Is(err, match.ErrRoomExists) {
		t.Errorf("create ABCD after restart: err = %v, want ErrRoomExists", err)
	}
	sent := len(e.fake.Requests())
	srv, err := e.f.Join(ctx, "treasure", "EFGH", "host-EFGH")
	if err != nil || srv.Name != "t-2" && srv.Name != "t-1" {
		t.Fatalf("rejoin after restart = %+v, %v", srv, err)
	}
	if len(e.fake.Requests()) != sent {
		t.Error("rejoin of a seated player after restart sent an allocation")
	}
	if _, err := e.f.Join(ctx, "treasure", "EFGH", "p2"); err != nil {
		t.Errorf("join after restart: %v", err)
	}
	e.fake.Update("default", srv.Name, func(gs *agonesv1.GameServer) { gs.Status.State = agonesv1.GameServerStateShutdown })
	e.caughtUp(t)
	if _, err := e.f.Join(ctx, "treasure", "EFGH", "p3"); !errors.Is(err, match.ErrRoomNotFound) {
		t.Errorf("join a room whose server shut down: err = %v, want ErrRoomNotFound", err)
	}
}

func TestRooms(t *testing.T) {
	deleting := room("treasure", "t-5", "GONE", true, "x")
	now := metav1.NewTime(t0)
	deleting.DeletionTimestamp = &now
	stale := room("treasure", "t-6", "OLD1", true, "x")
	stale.Status.State = agonesv1.GameServerStateReady
	e := newEnv(t, Config{},
		room("treasure", "t-1", "ABCD", true, "a", "b"),
		room("duel", "d-1", "DUEL", false, "c"),
		server("treasure", "t-2"),
		deleting, stale,
		agonestest.GameServer("default", "not-ours", "n-1", "ws", 8),
	)
	e.fake.Update("default", "n-1", func(gs *agonesv1.GameServer) {
		gs.Status.State = agonesv1.GameServerStateAllocated
		gs.Labels[contract.LabelRoom] = "NOPE"
	})
	e.fake.Update("default", "t-1", func(gs *agonesv1.GameServer) {
		gs.Annotations[AnnotationRoomCreated] = t0.Add(-2 * time.Minute).Format(time.RFC3339Nano)
	})
	e.caughtUp(t)
	treasure := match.Room{Code: "ABCD", Game: "treasure", Server: "t-1", Public: true, MaxPlayers: 3, Seats: 2, Connected: 2, CreatedAt: t0.Add(-2 * time.Minute)}
	duel := match.Room{Code: "DUEL", Game: "duel", Server: "d-1", MaxPlayers: 2, Seats: 1, Connected: 1, CreatedAt: t0.Add(-time.Minute)}
	tests := []struct {
		game    string
		want    []match.Room
		wantErr error
	}{
		{"", []match.Room{treasure, duel}, nil},
		{"treasure", []match.Room{treasure}, nil},
		{"duel", []match.Room{duel}, nil},
		{"chess", nil, match.ErrUnknownGame},
	}
	for _, tt := range tests {
		t.Run("game="+tt.game, func(t *testing.T) {
			got, err := e.f.Rooms(context.Background(), tt.game)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rooms (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServers(t *testing.T) {
	r := room("treasure", "t-1", "ABCD", true, "a")
	r.Annotations[agonesv1.AnnotationLastAllocated] = t0.Format(time.RFC3339Nano)
	e := newEnv(t, Config{}, r, server("duel", "d-1"))
	e.caughtUp(t)
	got := e.f.Servers()
	want := []ServerInfo{
		{Name: "d-1", Namespace: "games", Game: "duel", State: "Ready", Addr: podAddr(server("duel", "d-1")),
			Node: agonestest.NodeName, MaxPlayers: 2, Started: t0},
		{Name: "t-1", Namespace: "default", Game: "treasure", State: "Allocated", Room: "ABCD", Public: true,
			Addr: addr(r), Node: agonestest.NodeName, MaxPlayers: 3, Seats: 1, Connected: 1, Started: t0, Allocated: t0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
}

// TestMetrics: the gauges follow the watch exactly.
func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{}, server("treasure", "t-1"), server("treasure", "t-2"), server("duel", "d-1"))
	ctx := context.Background()
	if _, err := e.f.Create(ctx, "treasure", "ABCD", true, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.Join(ctx, "treasure", "ABCD", "p2"); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t)
	// The store catches up before the event handlers that recompute the gauges have run, so
	// wait (boundedly) for the gauges to follow.
	check := func(want map[string]float64) {
		t.Helper()
		var got map[string]float64
		deadline := time.Now().Add(5 * time.Second)
		for {
			got = map[string]float64{}
			for k := range want {
				parts := strings.Split(k, "/")
				switch parts[0] {
				case "gameservers":
					got[k] = gauge(t, e.reg, "usher_gameservers", map[string]string{"game": parts[1], "state": parts[2]})
				case "rooms":
					got[k] = gauge(t, e.reg, "usher_rooms", map[string]string{"game": parts[1]})
				case "players":
					got[k] = gauge(t, e.reg, "usher_players", map[string]string{"game": parts[1]})
				}
			}
			if cmp.Equal(want, got) || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("gauges (-want +got):\n%s", diff)
		}
	}
	check(map[string]float64{
		"gameservers/treasure/Ready": 1, "gameservers/treasure/Allocated": 1, "gameservers/duel/Ready": 1,
		"gameservers/treasure/Shutdown": 0, "rooms/treasure": 1, "rooms/duel": 0, "players/treasure": 2, "players/duel": 0,
	})
	e.fake.Update("default", "t-1", func(gs *agonesv1.GameServer) { gs.Status.State = agonesv1.GameServerStateShutdown })
	e.caughtUp(t)
	check(map[string]float64{"gameservers/treasure/Allocated": 0, "gameservers/treasure/Shutdown": 1, "rooms/treasure": 0, "players/treasure": 0})
	e.fake.Delete("default", "t-1")
	e.caughtUp(t)
	check(map[string]float64{"gameservers/treasure/Shutdown": 0, "gameservers/treasure/Ready": 1})
	if !strings.Contains(e.logs.String(), "room ended") {
		t.Errorf("no room ended log:\n%s", e.logs.String())
	}
}

func gauge(tb testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	tb.Fatalf("no %s%v", name, labels)
	return 0
}

// TestNotSynced: before the watch has synced, nothing is allocated.
func TestNotSynced(t *testing.T) {
	fake := agonestest.NewServer(t)
	fake.Add(server("treasure", "t-1"))
	f, err := New(Config{Games: testGames}, fake.Client(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Synced() {
		t.Error("Synced before Run")
	}
	_, err = f.Create(context.Background(), "treasure", "ABCD", true, "host")
	if !errors.Is(err, match.ErrNoCapacity) {
		t.Errorf("create before sync: err = %v, want ErrNoCapacity", err)
	}
	if _, err := f.Rooms(context.Background(), ""); !errors.Is(err, match.ErrNoCapacity) {
		t.Errorf("rooms before sync: err = %v, want ErrNoCapacity", err)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("sent %d allocations before sync", n)
	}
}

func TestEndpoint(t *testing.T) {
	gs := server("treasure", "t-1")
	st := gs.Status
	tests := []struct {
		name    string
		game    Game
		want    string
		wantErr bool
	}{
		{"address", Game{PortName: "ws", Dial: DialAddress}, addr(gs), false},
		{"pod", Game{PortName: "ws", Dial: DialPod}, podAddr(gs), false},
		{"no such port", Game{PortName: "game", Dial: DialAddress}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := endpoint(&tt.game, st.Address, st.Addresses, st.Ports)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("endpoint = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
	t.Run("no pod IP", func(t *testing.T) {
		if _, err := endpoint(&Game{PortName: "ws", Dial: DialPod}, st.Address, nil, st.Ports); err == nil {
			t.Error("no error without a PodIP address")
		}
	})
	t.Run("IPv6", func(t *testing.T) {
		got, err := endpoint(&Game{PortName: "ws", Dial: DialAddress}, "2001:db8::1", nil, st.Ports)
		if want := net.JoinHostPort("2001:db8::1", strconv.Itoa(int(st.Ports[0].Port))); err != nil || got != want {
			t.Errorf("endpoint = %q, %v; want %q", got, err, want)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	ok := Game{ID: "g", MaxPlayers: 4, PortName: "ws"}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" for valid
	}{
		{"valid", Config{Games: []Game{ok}}, ""},
		{"no games", Config{}, "no games"},
		{"duplicate id", Config{Games: []Game{ok, ok}}, "duplicate id"},
		{"same fleet twice", Config{Games: []Game{ok, {ID: "h", MaxPlayers: 2, PortName: "ws", Fleet: "g"}}}, "fleet default/g is also"},
		{"no port", Config{Games: []Game{{ID: "g", MaxPlayers: 4}}}, "empty port name"},
		{"bad dial", Config{Games: []Game{{ID: "g", MaxPlayers: 4, PortName: "ws", Dial: "node"}}}, `dial "node"`},
		{"too many players", Config{Games: []Game{{ID: "g", MaxPlayers: 1001, PortName: "ws"}}}, "max players 1001"},
		{"bad namespace", Config{Games: []Game{{ID: "g", MaxPlayers: 4, PortName: "ws", Namespace: "Games"}}}, `namespace "Games"`},
		{"bad fleet", Config{Games: []Game{{ID: "g", MaxPlayers: 4, PortName: "ws", Fleet: "a b"}}}, `fleet "a b"`},
		{"negative timeout", Config{Games: []Game{ok}, AllocateTimeout: -1}, "allocate timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.withDefaults().Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	got := Config{Games: []Game{ok}}.withDefaults()
	want := Config{Games: []Game{{ID: "g", MaxPlayers: 4, PortName: "ws", Namespace: "default", Fleet: "g", Dial: DialAddress}},
		AllocateTimeout: 10 * time.Second, Retry: match.Retry{Backoff: match.DefaultBackoff(), Wait: 3 * time.Second}, Coalesce: 10 * time.Millisecond}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(wait.Backoff{})); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// eventually waits for cond, which the informers make true asynchronously.
func eventually(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestJoinsCoalesce: players joining one room at the same moment go out in one
// allocation carrying all of them (at most the free seats); each learns from the List
// whether they got in. Agones' own batch window is in force.
func TestJoinsCoalesce(t *testing.T) {
	e := newEnv(t, Config{Coalesce: 20 * time.Millisecond}, room("treasure", "t-1", "ABCD", false, "host"))
	e.fake.SetBatchWait(agonestest.DefaultBatchWait)
	type result struct {
		player string
		err    error
	}
	results := make(chan result, 6)
	for i := range 6 {
		go func() {
			p := fmt.Sprintf("p%d", i)
			_, err := e.f.Join(context.Background(), "treasure", "ABCD", p)
			results <- result{p, err}
		}()
	}
	// The queue gathers on the fake clock: let it run once all six are waiting.
	eventually(t, func() bool {
		e.f.q.mu.Lock()
		defer e.f.q.mu.Unlock()
		q := e.f.q.byKey["treasure/ABCD"]
		return q != nil && len(q.waiting) == 6
	})
	stop := stepWhileWaiting(e.clk)
	defer stop()
	admitted, full := 0, 0
	for range 6 {
		r := <-results
		switch {
		case r.err == nil:
			admitted++
		case errors.Is(r.err, match.ErrRoomFull):
			full++
		default:
			t.Errorf("%s: %v", r.player, r.err)
		}
	}
	if admitted != 2 || full != 4 {
		t.Errorf("admitted %d, room_full %d; want 2 and 4 (room of 3, host seated)", admitted, full)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 || len(reqs[0].Spec.Lists[contract.PlayersList].AddValues) != 2 {
		var sizes []int
		for _, r := range reqs {
			sizes = append(sizes, len(r.Spec.Lists[contract.PlayersList].AddValues))
		}
		t.Errorf("sent allocations adding %v players, want one adding 2 (the free seats)", sizes)
	}
	gs, _ := e.fake.Get("default", "t-1")
	if n := len(seats(gs)); n != 3 {
		t.Errorf("seats %v, want 3", seats(gs))
	}
}

// TestJoinBusyRoom: when another allocation takes the room in the same Agones batch (here
// one sent straight to the fake, as another Usher replica would), Agones answers
// UnAllocated although the room has free seats. The join backs off and gets in; it does
// not hear room_full.
func TestJoinBusyRoom(t *testing.T) {
	e := newEnv(t, Config{}, room("treasure", "t-1", "ABCD", false, "host"))
	e.fake.SetBatchWait(agonestest.DefaultBatchWait)
	e.fake.Hold()
	other := make(chan error, 1)
	g := testGames[0].withDefaults()
	go func() {
		res, err := e.fake.Client().Allocate(context.Background(), "default", joinAllocation(&g, "ABCD", "other-replica"))
		if err == nil && res.Status.State != agonesv1.GameServerAllocationAllocated {
			err = fmt.Errorf("other replica's allocation: %s", res.Status.State)
		}
		other <- err
	}()
	eventually(t, func() bool { return e.fake.Pending() == 1 })
	stop := stepWhileWaiting(e.clk)
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := e.f.Join(context.Background(), "treasure", "ABCD", "p")
		done <- err
	}()
	eventually(t, func() bool { return e.fake.Pending() == 2 })
	e.fake.Release()
	if err := <-done; err != nil {
		t.Fatalf("join: %v, want a seat (the room had two free)", err)
	}
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Requests()); n != 3 {
		t.Errorf("%d allocations, want 3 (the other replica's, the busy one, the retry)", n)
	}
	gs, _ := e.fake.Get("default", "t-1")
	if diff := cmp.Diff([]string{"host", "other-replica", "p"}, seats(gs)); diff != "" {
		t.Errorf("seats (-want +got):\n%s", diff)
	}
}

// TestJoinBusyUntilDeadline: a room that stays busy (here: Contention on every try) past
// the retry policy's wait is answered no capacity (try again), never room_full.
func TestJoinBusyUntilDeadline(t *testing.T) {
	e := newEnv(t, Config{Retry: match.Retry{Wait: 2 * time.Second}}, room("treasure", "t-1", "ABCD", false, "host"))
	e.fake.Contend(1000)
	stop := stepWhileWaiting(e.clk)
	_, err := e.f.Join(context.Background(), "treasure", "ABCD", "p")
	stop()
	if !errors.Is(err, match.ErrNoCapacity) || errors.Is(err, match.ErrRoomFull) {
		t.Fatalf("err = %v, want no capacity", err)
	}
	if waited := e.clk.Since(t0); waited > 2*time.Second+10*time.Millisecond {
		t.Errorf("gave up after %v, past the 2s wait", waited)
	}
	if n := len(e.fake.Requests()); n < 3 {
		t.Errorf("%d allocations, want retries", n)
	}
}
