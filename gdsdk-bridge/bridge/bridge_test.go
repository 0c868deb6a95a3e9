package bridge_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-gg/usher/agones/sdk/sdktest"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/gdsdk-bridge/bridge"
)

// quietTickers keeps the health and seat loops from ticking in tests about something else.
func quietTickers(c *bridge.Config) {
	c.HealthInterval, c.HeartbeatTimeout, c.SeatCheckInterval = time.Hour, 2*time.Hour, time.Hour
}

func TestReadyOnlyAfterTheGameSaysSo(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	// The bridge is up and watching: the game has said nothing, so Agones hears nothing.
	a := h.waitAlloc("the watched GameServer", func(a contract.Allocation) bool { return a.MaxPlayers > 0 })
	if a.State != contract.StateStarting || a.Game != "treasure" || a.MaxPlayers != 8 {
		t.Errorf("allocation before ready = %+v, want Starting, game treasure, 8 seats", a)
	}
	if n := h.calls("POST", "/ready"); n != 0 {
		t.Fatalf("SDK Ready called %d times before the game said ready", n)
	}
	if got := h.sdk.GameServer().State; got != "Scheduled" {
		t.Fatalf("GameServer state %q before the game said ready, want Scheduled", got)
	}

	if err := h.game.Ready(h.ctx()); err != nil {
		t.Fatal(err)
	}
	// The answer comes once the SDK accepted Ready.
	if n := h.calls("POST", "/ready"); n != 1 {
		t.Errorf("SDK Ready called %d times after the game's ready, want 1", n)
	}
	h.waitAlloc("Ready", func(a contract.Allocation) bool { return a.State == contract.StateReady })

	// Idempotent, and an Allocated server is not made Ready again by a late /ready.
	h.sdk.Allocate(sdktest.Allocation{Labels: map[string]string{contract.LabelRoom: "K7QX"}})
	h.waitAlloc("Allocated", func(a contract.Allocation) bool { return a.State == contract.StateAllocated })
	if err := h.game.Ready(h.ctx()); err != nil {
		t.Fatal(err)
	}
	if n := h.calls("POST", "/ready"); n != 1 {
		t.Errorf("SDK Ready called %d times after a second game ready, want 1", n)
	}
	if got := h.sdk.GameServer().State; got != "Allocated" {
		t.Errorf("state after a second game ready = %q, want Allocated", got)
	}
}

func TestReadyRetriedUntilTheSDKStarts(t *testing.T) {
	h := start(t, setup{late: true, cfg: quietTickers})
	ready := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
		defer cancel()
		ready <- h.game.Ready(ctx)
	}()
	waitFor(t, "a failed SDK ready", func() bool { return h.logged("agones sdk ready failed; retrying") })
	h.sdk.Start()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("game ready: %v", err)
		}
	case <-time.After(2 * wait):
		t.Fatal("game ready did not return after the SDK started")
	}
	if n := h.calls("POST", "/ready"); n != 1 {
		t.Errorf("SDK Ready accepted %d times, want 1", n)
	}
	// The watch reconnected too.
	h.waitAlloc("Ready", func(a contract.Allocation) bool { return a.State == contract.StateReady })
}

func TestReadyTimesOutWhileTheSDKIsDown(t *testing.T) {
	h := start(t, setup{late: true, cfg: quietTickers})
	before := h.clk.pendingAfters()
	ready := make(chan error, 1)
	go func() { ready <- h.game.Ready(h.ctx()) }()
	waitFor(t, "ready to wait for the SDK", func() bool { return h.clk.pendingAfters() > before })
	h.clk.Advance(bridge.DefaultSDKTimeout)
	select {
	case err := <-ready:
		var se *contract.StatusError
		if !errors.As(err, &se) || se.Status != 503 {
			t.Errorf("game ready with the SDK down = %v, want 503 (retry)", err)
		}
	case <-time.After(wait):
		t.Fatal("game ready did not time out")
	}
}

func TestHealthPingsFollowHeartbeats(t *testing.T) {
	h := start(t, setup{cfg: func(c *bridge.Config) {
		c.HealthInterval, c.HeartbeatTimeout, c.SeatCheckInterval = 2*time.Second, 10*time.Second, time.Hour
	}})
	waitFor(t, "the first ping, at start", func() bool { return len(h.sdk.Pings()) == 1 })
	if err := h.game.Heartbeat(h.ctx()); err != nil { // at t0
		t.Fatal(err)
	}
	for range 6 { // t2 … t12: pings while the heartbeat is younger than 10s
		h.clk.Advance(2 * time.Second)
	}
	if err := h.game.Heartbeat(h.ctx()); err != nil { // at t12: the game is back
		t.Fatal(err)
	}
	h.clk.Advance(2 * time.Second) // t14
	var want []time.Time
	for _, s := range []int{0, 2, 4, 6, 8, 14} {
		want = append(want, t0.Add(time.Duration(s)*time.Second))
	}
	if diff := cmp.Diff(want, h.sdk.Pings()); diff != "" {
		t.Errorf("health pings (-want +got):\n%s", diff)
	}
	if !h.logged("health pings stopped: the game's heartbeats stopped") {
		t.Error("no log line when pings stopped")
	}
}

func TestHealthPingsDuringStartGraceOnly(t *testing.T) {
	h := start(t, setup{cfg: func(c *bridge.Config) {
		c.HealthInterval, c.HeartbeatTimeout, c.StartGrace, c.SeatCheckInterval = 2*time.Second, 10*time.Second, 5*time.Second, time.Hour
	}})
	waitFor(t, "the first ping, at start", func() bool { return len(h.sdk.Pings()) == 1 })
	for range 4 { // t2 … t8: no heartbeat yet; the grace ends at t5
		h.clk.Advance(2 * time.Second)
	}
	h.ready() // at t8: /ready counts as a heartbeat
	h.clk.Advance(2 * time.Second)
	var want []time.Time
	for _, s := range []int{0, 2, 4, 10} {
		want = append(want, t0.Add(time.Duration(s)*time.Second))
	}
	if diff := cmp.Diff(want, h.sdk.Pings()); diff != "" {
		t.Errorf("health pings (-want +got):\n%s", diff)
	}
}

func TestConnectReservedPlayer(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	a := h.allocate("p1")
	want := contract.Allocation{Version: a.Version, State: "Allocated", Game: "treasure", Room: "K7QX", Public: true,
		MaxPlayers: 8, Players: []string{"p1"}, Connected: []string{}}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("allocation (-want +got):\n%s", diff)
	}
	if err := h.game.PlayerConnected(h.ctx(), "p1"); err != nil {
		t.Fatal(err)
	}
	if n := h.calls("POST", pathAdd); n != 0 {
		t.Errorf("AddListValue called %d times for a player holding a seat", n)
	}
	a = h.waitAlloc("p1 connected", func(a contract.Allocation) bool { return len(a.Connected) == 1 })
	if diff := cmp.Diff([]string{"p1"}, a.Connected); diff != "" {
		t.Errorf("connected (-want +got):\n%s", diff)
	}
	// Reporting it again changes nothing.
	if err := h.game.PlayerConnected(h.ctx(), "p1"); err != nil {
		t.Fatal(err)
	}
	if n := h.calls("POST", pathAdd); n != 0 {
		t.Errorf("AddListValue called %d times", n)
	}
}

func TestConnectWalkInAndFull(t *testing.T) {
	gs := testGameServer()
	gs.Lists[contract.PlayersList] = sdktest.List{Capacity: 2, Values: []string{}}
	h := start(t, setup{gs: &gs, cfg: quietTickers})
	h.allocate("p1")
	if err := h.game.PlayerConnected(h.ctx(), "p2"); err != nil {
		t.Fatalf("walk-in with a free seat: %v", err)
	}
	if diff := cmp.Diff([]string{"p1", "p2"}, h.listValues()); diff != "" {
		t.Errorf("players list (-want +got):\n%s", diff)
	}
	a, err := h.game.Allocation(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"p2"}, a.Connected); diff != "" {
		t.Errorf("connected right after the walk-in (-want +got):\n%s", diff)
	}
	err = h.game.PlayerConnected(h.ctx(), "p3")
	var se *contract.StatusError
	if !errors.Is(err, contract.ErrRoomFull) || !errors.As(err, &se) || se.Status != 409 || se.Code != "room_full" {
		t.Errorf("walk-in to a full room = %v, want 409 room_full", err)
	}
	if diff := cmp.Diff([]string{"p1", "p2"}, h.listValues()); diff != "" {
		t.Errorf("players list after the refused walk-in (-want +got):\n%s", diff)
	}
}

// A player reserved by an allocation the bridge has not seen yet connects to a full room:
// AddListValue answers "out of range" (the SDK checks capacity before duplicates), and the
// bridge must find the player in the list rather than refuse it.
func TestConnectReservedPlayerToFullListBeforeTheWatchShowsIt(t *testing.T) {
	gs := testGameServer()
	gs.Lists[contract.PlayersList] = sdktest.List{Capacity: 1, Values: []string{}}
	h := start(t, setup{gs: &gs, cfg: quietTickers})
	h.allocate()
	h.sdk.PauseWatches() // the sidecar's informer lags
	h.sdk.Allocate(sdktest.Allocation{AddValues: map[string][]string{contract.PlayersList: {"p1"}}})
	if err := h.game.PlayerConnected(h.ctx(), "p1"); err != nil {
		t.Fatalf("reserved player on a full list: %v", err)
	}
	if err := h.game.PlayerConnected(h.ctx(), "p2"); !errors.Is(err, contract.ErrRoomFull) {
		t.Errorf("walk-in to the full list = %v, want room_full", err)
	}
	h.sdk.ResumeWatches()
	a := h.waitAlloc("p1 seen", func(a contract.Allocation) bool { return len(a.Players) == 1 && len(a.Connected) == 1 })
	if a.Players[0] != "p1" || a.Connected[0] != "p1" {
		t.Errorf("allocation %+v, want p1 holding and connected", a)
	}
}

func TestConnectNotAllocated(t *testing.T) {
	t.Run("no wait", func(t *testing.T) {
		h := start(t, setup{cfg: func(c *bridge.Config) { quietTickers(c); c.ConnectWait = 0 }})
		h.ready()
		err := h.game.PlayerConnected(h.ctx(), "p1")
		var se *contract.StatusError
		if !errors.Is(err, contract.ErrBadState) || !errors.As(err, &se) || se.Status != 409 {
			t.Errorf("connect on a Ready server = %v, want 409 bad_state", err)
		}
		if n := h.calls("POST", pathAdd); n != 0 {
			t.Errorf("AddListValue called %d times", n)
		}
	})
	t.Run("allocation arrives while waiting", func(t *testing.T) {
		h := start(t, setup{cfg: quietTickers})
		h.ready()
		before := h.clk.pendingAfters()
		got := make(chan error, 1)
		go func() { got <- h.game.PlayerConnected(h.ctx(), "p1") }()
		waitFor(t, "the connect to wait", func() bool { return h.clk.pendingAfters() > before })
		h.sdk.Allocate(sdktest.Allocation{
			Labels:    map[string]string{contract.LabelRoom: "K7QX"},
			AddValues: map[string][]string{contract.PlayersList: {"p1"}},
		})
		select {
		case err := <-got:
			if err != nil {
				t.Errorf("connect = %v, want success once allocated", err)
			}
		case <-time.After(wait):
			t.Fatal("connect still waiting after the allocation")
		}
	})
	t.Run("wait times out", func(t *testing.T) {
		h := start(t, setup{cfg: quietTickers})
		h.ready()
		before := h.clk.pendingAfters()
		got := make(chan error, 1)
		go func() { got <- h.game.PlayerConnected(h.ctx(), "p1") }()
		waitFor(t, "the connect to wait", func() bool { return h.clk.pendingAfters() > before })
		h.clk.Advance(bridge.DefaultConnectWait)
		select {
		case err := <-got:
			if !errors.Is(err, contract.ErrBadState) {
				t.Errorf("connect = %v, want bad_state", err)
			}
		case <-time.After(wait):
			t.Fatal("connect still waiting after ConnectWait")
		}
	})
}

func TestDisconnect(t *testing.T) {
	// Batched: the GameServer lags behind the SDK's list, as in a cluster.
	h := start(t, setup{cfg: quietTickers, sdkOpts: []sdktest.Option{sdktest.Batched()}})
	h.allocate("p1", "p2")
	if err := h.game.PlayerConnected(h.ctx(), "p1"); err != nil {
		t.Fatal(err)
	}
	if err := h.game.PlayerDisconnected(h.ctx(), "p1", contract.ReasonLeft); err != nil {
		t.Fatal(err)
	}
	if n := h.calls("POST", pathRemove); n != 1 {
		t.Errorf("RemoveListValue called %d times, want 1", n)
	}
	// The seat is gone for the game at once, before the SDK writes it.
	a, err := h.game.Allocation(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"p2"}, a.Players); diff != "" || len(a.Connected) != 0 {
		t.Errorf("allocation after disconnect: %+v (-want +got players):\n%s", a, diff)
	}
	h.sdk.Flush()
	waitFor(t, "the list to lose p1", func() bool { return cmp.Equal([]string{"p2"}, h.listValues()) })

	// Unknown players are ignored, without an SDK call.
	if err := h.game.PlayerDisconnected(h.ctx(), "nobody", contract.ReasonLost); err != nil {
		t.Fatal(err)
	}
	// A reserved player who leaves without connecting frees the seat too.
	if err := h.game.PlayerDisconnected(h.ctx(), "p2", contract.ReasonLost); err != nil {
		t.Fatal(err)
	}
	if n := h.calls("POST", pathRemove); n != 2 {
		t.Errorf("RemoveListValue called %d times, want 2", n)
	}
}

func seatCfg(c *bridge.Config) {
	c.HealthInterval, c.HeartbeatTimeout = time.Hour, 2*time.Hour
	c.SeatTimeout, c.SeatCheckInterval = 20*time.Second, time.Second
}

func TestUnusedSeatReleased(t *testing.T) {
	h := start(t, setup{cfg: seatCfg})
	h.allocate("p1", "p2") // both seen at t0
	if err := h.game.PlayerConnected(h.ctx(), "p1"); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(19 * time.Second)
	if n := h.calls("POST", pathRemove); n != 0 {
		t.Fatalf("RemoveListValue called %d times before the seat timeout", n)
	}
	h.clk.Advance(time.Second) // t20: p2's reservation is over
	if n := h.calls("POST", pathRemove); n != 1 {
		t.Fatalf("RemoveListValue called %d times at the seat timeout, want 1", n)
	}
	if diff := cmp.Diff([]string{"p1"}, h.listValues()); diff != "" {
		t.Errorf("players list (-want +got):\n%s", diff)
	}
	// The allocation hides p2 at once; wait until the watch shows the removal too.
	waitFor(t, "the watch to show the removal", func() bool { return h.logged("seat removal applied") })
	h.clk.Advance(60 * time.Second) // a connected player is never released
	if n := h.calls("POST", pathRemove); n != 1 {
		t.Errorf("RemoveListValue called %d times, want 1", n)
	}
	if diff := cmp.Diff([]string{"p1"}, h.listValues()); diff != "" {
		t.Errorf("players list (-want +got):\n%s", diff)
	}
}

// TestLostPlayerKeepsSeat: a player reported lost keeps their value in the players list (so
// Usher lets them back into the room, however full) for the reconnect grace; coming back
// takes the seat again with no SDK call; not coming back frees it when the grace ends. A
// player who leaves frees the seat at once.
func TestLostPlayerKeepsSeat(t *testing.T) {
	h := start(t, setup{cfg: func(c *bridge.Config) { seatCfg(c); c.ReconnectGrace = 30 * time.Second }})
	h.allocate("p1", "p2")
	for _, p := range []string{"p1", "p2"} {
		if err := h.game.PlayerConnected(h.ctx(), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.game.PlayerDisconnected(h.ctx(), "p1", contract.ReasonLost); err != nil {
		t.Fatal(err)
	}
	a, err := h.game.Allocation(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"p1", "p2"}, a.Players); diff != "" || !cmp.Equal([]string{"p2"}, a.Connected) {
		t.Errorf("allocation after p1 was lost: players %v connected %v, want p1 still seated, not connected", a.Players, a.Connected)
	}
	h.clk.Advance(29 * time.Second)
	if n := h.calls("POST", pathRemove); n != 0 {
		t.Fatalf("RemoveListValue called %d times within the grace", n)
	}
	// p1 comes back: the kept seat is theirs, no list change.
	if err := h.game.PlayerConnected(h.ctx(), "p1"); err != nil {
		t.Fatal(err)
	}
	if n := h.calls("POST", pathAdd); n != 0 {
		t.Errorf("AddListValue called %d times for a player coming back to a kept seat", n)
	}
	h.clk.Advance(60 * time.Second) // connected again: never released
	if n := h.calls("POST", pathRemove); n != 0 {
		t.Fatalf("RemoveListValue called %d times for a player who came back", n)
	}
	// Lost again, and gone for good: freed when the grace ends.
	if err := h.game.PlayerDisconnected(h.ctx(), "p1", contract.ReasonLost); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(29 * time.Second)
	if n := h.calls("POST", pathRemove); n != 0 {
		t.Fatalf("RemoveListValue called %d times within the second grace", n)
	}
	h.clk.Advance(time.Second)
	if n := h.calls("POST", pathRemove); n != 1 {
		t.Fatalf("RemoveListValue called %d times when the grace ended, want 1", n)
	}
	if diff := cmp.Diff([]string{"p2"}, h.listValues()); diff != "" {
		t.Errorf("players list (-want +got):\n%s", diff)
	}
	waitFor(t, "the release to be logged", func() bool { return h.logged("lost player did not come back") })
	// p2 leaves cleanly: freed at once.
	if err := h.game.PlayerDisconnected(h.ctx(), "p2", contract.ReasonLeft); err != nil {
		t.Fatal(err)
	}
	if n := h.calls("POST", pathRemove); n != 2 {
		t.Errorf("RemoveListValue called %d times after a clean leave, want 2", n)
	}
}

// The SDK applies list changes about a second later; the bridge must not remove the same
// value again meanwhile, and must treat the value coming back as a fresh reservation.
func TestSeatReleaseDoesNotFightPendingChanges(t *testing.T) {
	h := start(t, setup{cfg: seatCfg, sdkOpts: []sdktest.Option{sdktest.Batched()}})
	h.allocate("p1")
	h.clk.Advance(20 * time.Second)
	if n := h.calls("POST", pathRemove); n != 1 {
		t.Fatalf("RemoveListValue called %d times at the seat timeout, want 1", n)
	}
	a, err := h.game.Allocation(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Players) != 0 {
		t.Errorf("players while the removal is pending = %v, want none", a.Players)
	}
	h.clk.Advance(5 * time.Second) // still pending in the SDK: no second removal
	if n := h.calls("POST", pathRemove); n != 1 {
		t.Errorf("RemoveListValue called %d times while pending, want 1", n)
	}
	h.sdk.Flush()
	waitFor(t, "the list to be empty", func() bool { return len(h.listValues()) == 0 })
	h.waitAlloc("p1 gone", func(a contract.Allocation) bool { return len(a.Players) == 0 })

	// p1 joins again (a new ticket): a fresh reservation, with a fresh timeout.
	h.sdk.Allocate(sdktest.Allocation{AddValues: map[string][]string{contract.PlayersList: {"p1"}}})
	h.waitAlloc("p1 back", func(a contract.Allocation) bool { return cmp.Equal([]string{"p1"}, a.Players) })
	h.clk.Advance(19 * time.Second)
	if n := h.calls("POST", pathRemove); n != 1 {
		t.Errorf("RemoveListValue called %d times before the new timeout, want 1", n)
	}
	h.clk.Advance(time.Second)
	if n := h.calls("POST", pathRemove); n != 2 {
		t.Errorf("RemoveListValue called %d times at the new timeout, want 2", n)
	}
}

// A bridge that (re)starts beside a room in progress cannot know who is connected: it leaves
// the seats it finds until their players disconnect.
func TestSeatsHeldAtRestartAreLeftAlone(t *testing.T) {
	gs := testGameServer()
	gs.State = "Allocated"
	gs.Labels[contract.LabelRoom] = "K7QX"
	gs.Lists[contract.PlayersList] = sdktest.List{Capacity: 8, Values: []string{"p1"}}
	h := start(t, setup{gs: &gs, cfg: seatCfg})
	h.waitAlloc("Allocated", func(a contract.Allocation) bool { return a.State == contract.StateAllocated })
	h.sdk.Allocate(sdktest.Allocation{AddValues: map[string][]string{contract.PlayersList: {"p2"}}})
	h.waitAlloc("p2 reserved", func(a contract.Allocation) bool { return len(a.Players) == 2 })
	h.clk.Advance(60 * time.Second)
	if diff := cmp.Diff([]string{"p1"}, h.listValues()); diff != "" {
		t.Errorf("players list (-want +got): p2 released, p1 kept\n%s", diff)
	}
	if err := h.game.PlayerDisconnected(h.ctx(), "p1", contract.ReasonLeft); err != nil {
		t.Fatal(err)
	}
	if got := h.listValues(); len(got) != 0 {
		t.Errorf("players list after p1 left = %v, want empty", got)
	}
}

func TestAllocationLongPoll(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	h.ready()
	a, err := h.game.Allocation(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan contract.Allocation, 1)
	go func() {
		next, err := h.game.WaitAllocation(h.ctx(), a.Version, wait)
		if err != nil {
			t.Error(err)
		}
		got <- next
	}()
	h.sdk.Allocate(sdktest.Allocation{
		Labels:    map[string]string{contract.LabelRoom: "K7QX", contract.LabelPublic: "false"},
		AddValues: map[string][]string{contract.PlayersList: {"host", "p2"}},
	})
	want := contract.Allocation{Version: a.Version + 1, State: "Allocated", Game: "treasure", Room: "K7QX",
		MaxPlayers: 8, Players: []string{"host", "p2"}, Connected: []string{}}
	select {
	case next := <-got:
		if diff := cmp.Diff(want, next); diff != "" {
			t.Errorf("allocation (-want +got):\n%s", diff)
		}
	case <-time.After(wait):
		t.Fatal("the long poll did not see the allocation")
	}
}

func TestShutdown(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	h.allocate("p1")
	if err := h.game.Shutdown(h.ctx()); err != nil {
		t.Fatal(err)
	}
	// Answered once the SDK accepted it: the game may exit now.
	if got := h.sdk.GameServer().State; got != "Shutdown" {
		t.Errorf("GameServer state after the game's shutdown = %q", got)
	}
	a, err := h.game.Allocation(h.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if a.State != contract.StateShutdown || a.Room != "K7QX" {
		t.Errorf("allocation after shutdown = %+v", a)
	}
	if err := h.game.Shutdown(h.ctx()); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	if n := h.calls("POST", "/shutdown"); n != 1 {
		t.Errorf("SDK Shutdown called %d times, want 1", n)
	}
	if err := h.game.Heartbeat(h.ctx()); !errors.Is(err, contract.ErrBadState) {
		t.Errorf("heartbeat after shutdown = %v, want bad_state", err)
	}
	if err := h.game.Ready(h.ctx()); !errors.Is(err, contract.ErrBadState) {
		t.Errorf("ready after shutdown = %v, want bad_state", err)
	}
}

func TestUnhealthyIsShutdownForTheGame(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	h.allocate("p1")
	h.sdk.Update(func(gs *sdktest.GameServer) { gs.State = "Unhealthy" })
	h.waitAlloc("Shutdown", func(a contract.Allocation) bool { return a.State == contract.StateShutdown })
	if err := h.game.Shutdown(h.ctx()); !errors.Is(err, contract.ErrBadState) {
		t.Errorf("shutdown when Unhealthy = %v, want bad_state (as in local mode)", err)
	}
}

func TestWatchReconnects(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	h.ready()
	h.sdk.FailWatches(14, "sidecar restarting")
	h.sdk.Allocate(sdktest.Allocation{Labels: map[string]string{contract.LabelRoom: "AAAA"}})
	h.waitAlloc("room AAAA", func(a contract.Allocation) bool { return a.Room == "AAAA" })

	h.sdk.Stop() // the SDK sidecar goes away and comes back
	h.sdk.Update(func(gs *sdktest.GameServer) { gs.Labels[contract.LabelRoom] = "BBBB" })
	h.sdk.Start()
	h.waitAlloc("room BBBB", func(a contract.Allocation) bool { return a.Room == "BBBB" })
}

func TestSIGTERMKeepsServingUntilShutdown(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	h.allocate("p1")
	if err := h.game.PlayerConnected(h.ctx(), "p1"); err != nil {
		t.Fatal(err)
	}
	h.sigs <- syscall.SIGTERM
	waitFor(t, "the signal to be handled", func() bool { return h.logged("signal received") })
	// Still serving: the game reports its players leaving and ends the room.
	if err := h.game.PlayerDisconnected(h.ctx(), "p1", contract.ReasonLeft); err != nil {
		t.Fatalf("disconnect after SIGTERM: %v", err)
	}
	if _, err := h.game.Allocation(h.ctx()); err != nil {
		t.Fatalf("allocation after SIGTERM: %v", err)
	}
	select {
	case err := <-h.done:
		t.Fatalf("bridge stopped (%v) before the GameServer was Shutdown", err)
	default:
	}
	if err := h.game.Shutdown(h.ctx()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		h.done <- err // for the cleanup
	case <-time.After(wait):
		t.Fatal("bridge still running after the GameServer was Shutdown")
	}
	if _, err := h.game.Allocation(h.ctx()); err == nil {
		t.Error("bridge still answers after it stopped")
	}
}

func TestSIGTERMTerminateTimeout(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	before := h.clk.pendingAfters()
	h.sigs <- syscall.SIGTERM
	waitFor(t, "the terminate timer", func() bool { return h.clk.pendingAfters() > before })
	h.clk.Advance(bridge.DefaultTerminateTimeout - time.Second)
	if _, err := h.game.Allocation(h.ctx()); err != nil {
		t.Fatalf("bridge stopped before the terminate timeout: %v", err)
	}
	h.clk.Advance(time.Second)
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		h.done <- err
	case <-time.After(wait):
		t.Fatal("bridge still running after the terminate timeout")
	}
}

func TestSecondInterruptStopsAtOnce(t *testing.T) {
	h := start(t, setup{cfg: quietTickers})
	h.sigs <- syscall.SIGTERM
	waitFor(t, "the signal to be handled", func() bool { return h.logged("signal received") })
	h.sigs <- syscall.SIGTERM // delivered twice by some inits: keep waiting
	waitFor(t, "the second SIGTERM to be handled", func() bool { return h.logged("signal received again") })
	if _, err := h.game.Allocation(h.ctx()); err != nil {
		t.Fatalf("bridge stopped on a second SIGTERM: %v", err)
	}
	h.sigs <- os.Interrupt
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		h.done <- err
	case <-time.After(wait):
		t.Fatal("bridge still running after a second signal")
	}
}
