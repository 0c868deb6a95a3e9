//go:build unix

package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
)

// The tests in this file run real game server processes: the test binary itself, re-executed
// as a tiny game server (see testGameMain).

const (
	envTestGame    = "USHER_LOCAL_TEST_GAME"    // the mode of the test game server
	envTestAfter   = "USHER_LOCAL_TEST_AFTER"   // shutdown-after: milliseconds before /shutdown
	envTestPIDFile = "USHER_LOCAL_TEST_PIDFILE" // parent: where to write its child's pid
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envTestGame); mode != "" {
		os.Exit(testGameMain(mode))
	}
	os.Exit(m.Run())
}

// testGameMain is a game server that keeps the bridge contract, with misbehaviours by mode:
//
//	ok                 ready, heartbeats, exits 0 on SIGTERM
//	crash              exits 1 at once, before Ready
//	crash-after-ready  exits 3 300ms after Ready
//	never-ready        heartbeats but never calls Ready
//	no-heartbeat       ready, never heartbeats
//	shutdown-after     calls /shutdown after $USHER_LOCAL_TEST_AFTER ms, then exits 0
//	shutdown-stay      calls /shutdown at once, then does not exit
//	stubborn           like ok, but ignores SIGTERM
//	parent             like ok, with a child process in its group whose pid goes to $USHER_LOCAL_TEST_PIDFILE
//	sleep              the child of parent: waits for a signal
//	broken             breaks the contract on purpose (see brokenGame)
func testGameMain(mode string) int {
	ctx := context.Background()
	switch mode {
	case "crash":
		fmt.Fprintln(os.Stderr, "test game: crashing before ready")
		return 1
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	default:
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGTERM)
		defer stop()
	}
	if mode == "sleep" {
		<-ctx.Done()
		return 0
	}
	if mode == "broken" {
		return brokenGame(ctx)
	}
	bc, err := contract.NewClient(os.Getenv(contract.EnvBridgeURL), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv(contract.EnvHost), os.Getenv(contract.EnvPort)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", os.Getenv(contract.EnvGame), os.Getenv(contract.EnvServer))
	}))
	fmt.Printf("test game %s listening on %s\n", os.Getenv(contract.EnvServer), ln.Addr())
	if mode == "parent" {
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), envTestGame+"=sleep")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := os.WriteFile(os.Getenv(envTestPIDFile), []byte(strconv.Itoa(child.Process.Pid)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	if mode != "no-heartbeat" {
		go func() {
			for {
				_ = bc.Heartbeat(ctx)
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	if mode != "never-ready" {
		if err := bc.Ready(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "ready:", err)
			return 2
		}
	}
	switch mode {
	case "crash-after-ready":
		time.Sleep(300 * time.Millisecond)
		return 3
	case "shutdown-after":
		ms, _ := strconv.Atoi(os.Getenv(envTestAfter))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		if err := bc.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "shutdown:", err)
			return 2
		}
		return 0
	case "shutdown-stay":
		if err := bc.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "shutdown:", err)
			return 2
		}
	}
	<-ctx.Done()
	return 0
}

// testGame is a game whose servers are this test binary in the given mode.
func testGame(id, mode string, env ...string) Game {
	return Game{
		ID: id, MaxPlayers: 4, Buffer: 1,
		Command: []string{os.Args[0]},
		Env:     append([]string{envTestGame + "=" + mode}, env...),
	}
}

// fastConfig has the short timeouts of process tests.
func fastConfig(games ...Game) Config {
	return Config{
		Games:            games,
		SeatTimeout:      time.Minute,
		HeartbeatTimeout: time.Second,
		StartTimeout:     2 * time.Second,
		StopTimeout:      time.Second,
		RestartBackoff:   50 * time.Millisecond,
	}
}

type fleetFixture struct {
	f    *Fleet
	m    *metrics.Metrics
	logs *logSink
	stop func() // cancels Run and waits for it to return
}

// runFleet starts a fleet on cfg and stops it at the end of the test.
func runFleet(tb testing.TB, cfg Config, clk clock.WithTicker) *fleetFixture {
	tb.Helper()
	m := metrics.New(prometheus.NewRegistry())
	logs := &logSink{}
	f, err := New(cfg, m, clk, slog.New(&captureHandler{sink: logs}))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				tb.Errorf("Run did not return 10s after its context was cancelled")
			}
		})
	}
	tb.Cleanup(func() {
		stop()
		if tb.Failed() {
			for _, r := range logs.all() {
				tb.Log(r)
			}
		}
	})
	return &fleetFixture{f: f, m: m, logs: logs, stop: stop}
}

// eventually polls cond until it holds or timeout passes.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (fx *fleetFixture) servers(game, state string) []ServerInfo {
	var out []ServerInfo
	for _, s := range fx.f.Servers() {
		if s.Game == game && (state == "" || s.State == state) {
			out = append(out, s)
		}
	}
	return out
}

func (fx *fleetFixture) exits(game, reason string) float64 {
	return testutil.ToFloat64(fx.m.GameServerExits.WithLabelValues(game, reason))
}

// bridgeURL returns the bridge URL of the named server, from the fleet's state.
func (fx *fleetFixture) bridgeURL(tb testing.TB, name string) string {
	tb.Helper()
	fx.f.st.mu.Lock()
	defer fx.f.st.mu.Unlock()
	s, ok := fx.f.st.servers[name]
	if !ok {
		tb.Fatalf("no server %s", name)
	}
	return s.bridgeURL
}

// createWhenReady retries Create until a server is Ready.
func (fx *fleetFixture) createWhenReady(tb testing.TB, game, room, player string) match.Server {
	tb.Helper()
	var srv match.Server
	eventually(tb, 10*time.Second, "a Ready server of "+game, func() bool {
		var err error
		srv, err = fx.f.Create(context.Background(), game, room, true, player)
		if err != nil && !errors.Is(err, match.ErrNoCapacity) {
			tb.Fatalf("create %s: %v", room, err)
		}
		return err == nil
	})
	return srv
}

func TestFleetWarmBuffer(t *testing.T) {
	t.Parallel()
	g := testGame("warm", "ok")
	g.Buffer = 2
	fx := runFleet(t, fastConfig(g), clock.RealClock{})
	ctx := context.Background()
	eventually(t, 10*time.Second, "2 Ready servers", func() bool { return len(fx.servers("warm", StateReady)) == 2 })

	a, err := fx.f.Create(ctx, "warm", "AAAA", true, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.f.Create(ctx, "warm", "BBBB", false, "p2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the buffer back at 2 Ready beside 2 Allocated", func() bool {
		return len(fx.servers("warm", StateReady)) == 2 && len(fx.servers("warm", StateAllocated)) == 2
	})

	// The server listens where the fleet says, with the environment it was given.
	resp, err := http.Get("http://" + a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "warm " + a.Name; string(body) != want {
		t.Errorf("game server at %s answered %q, want %q", a.Addr, body, want)
	}
	// Its stdout is logged line by line under its name.
	eventually(t, 5*time.Second, "its output in the log", func() bool {
		return fx.logs.has(func(r logRecord) bool {
			return r.msg == "game server output" && r.attrs["gameserver"] == a.Name &&
				strings.HasPrefix(r.attrs["line"], "test game "+a.Name+" listening")
		})
	})
	for _, s := range fx.f.Servers() {
		if s.PID == 0 || s.Started.IsZero() || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
			t.Errorf("server info %+v: want a pid, a start time and a loopback address", s)
		}
	}
	// The gauges count exactly what runs.
	eventually(t, 5*time.Second, "exact gauges", func() bool {
		return testutil.ToFloat64(fx.m.GameServers.WithLabelValues("warm", StateReady)) == 2 &&
			testutil.ToFloat64(fx.m.GameServers.WithLabelValues("warm", StateAllocated)) == 2 &&
			testutil.ToFloat64(fx.m.GameServers.WithLabelValues("warm", StateStarting)) == 0 &&
			testutil.ToFloat64(fx.m.Rooms.WithLabelValues("warm")) == 2
	})
}

func TestFleetAllocationLongPoll(t *testing.T) {
	t.Parallel()
	fx := runFleet(t, fastConfig(testGame("poll", "ok")), clock.RealClock{})
	ctx := context.Background()
	eventually(t, 10*time.Second, "a Ready server", func() bool { return len(fx.servers("poll", StateReady)) == 1 })
	name := fx.servers("poll", StateReady)[0].Name
	bc, err := contract.NewClient(fx.bridgeURL(t, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := bc.Allocation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.State != contract.StateReady || before.Room != "" {
		t.Fatalf("allocation before create = %+v, want Ready without a room", before)
	}
	got := make(chan contract.Allocation, 1)
	go func() {
		a, err := bc.WaitAllocation(ctx, before.Version, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- a
	}()
	srv, err := fx.f.Create(ctx, "poll", "POLL", false, "host")
	if err != nil {
		t.Fatal(err)
	}
	if srv.Name != name {
		t.Errorf("create picked %s, want the only Ready server %s", srv.Name, name)
	}
	select {
	case a := <-got:
		if a.State != contract.StateAllocated || a.Room != "POLL" || a.Public || !slices.Equal(a.Players, []string{"host"}) {
			t.Errorf("long poll = %+v, want Allocated, room POLL, private, players [host]", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll did not see the allocation")
	}
	// The game server reports the host connected, then gone: the seat is freed.
	if err := bc.PlayerConnected(ctx, "host"); err != nil {
		t.Fatal(err)
	}
	rooms, err := fx.f.Rooms(ctx, "poll")
	if err != nil || len(rooms) != 1 || rooms[0].Connected != 1 || rooms[0].Server != name {
		t.Errorf("rooms = %+v, %v; want POLL with 1 connected on %s", rooms, err, name)
	}
	if n := testutil.ToFloat64(fx.m.Players.WithLabelValues("poll")); n != 1 {
		t.Errorf("players gauge = %v, want 1", n)
	}
	if err := bc.PlayerDisconnected(ctx, "host", contract.ReasonLeft); err != nil {
		t.Fatal(err)
	}
	if rooms, _ := fx.f.Rooms(ctx, "poll"); len(rooms) != 1 || rooms[0].Seats != 0 {
		t.Errorf("rooms after disconnect = %+v, want POLL with no seat held", rooms)
	}
}

func TestFleetCrashReplaced(t *testing.T) {
	t.Parallel()
	fx := runFleet(t, fastConfig(testGame("crashy", "crash-after-ready")), clock.RealClock{})
	ctx := context.Background()
	srv := fx.createWhenReady(t, "crashy", "BOOM", "host")
	eventually(t, 10*time.Second, "the room to end with its process", func() bool {
		_, err := fx.f.Join(ctx, "crashy", "BOOM", "late")
		return errors.Is(err, match.ErrRoomNotFound)
	})
	if rooms, _ := fx.f.Rooms(ctx, ""); slices.ContainsFunc(rooms, func(r match.Room) bool { return r.Code == "BOOM" }) {
		t.Errorf("rooms = %+v, want no BOOM", rooms)
	}
	eventually(t, 5*time.Second, "the crash logged at warn", func() bool {
		return fx.logs.has(func(r logRecord) bool {
			return r.level == slog.LevelWarn && r.msg == "game server crashed" && r.attrs["gameserver"] == srv.Name &&
				r.attrs["game"] == "crashy" && r.attrs["room"] == "BOOM" && r.attrs["exit"] == "exit status 3"
		})
	})
	if n := fx.exits("crashy", exitCrashed); n < 1 {
		t.Errorf("crashed exits = %v, want at least 1", n)
	}
	eventually(t, 10*time.Second, "a replacement", func() bool {
		return slices.ContainsFunc(fx.f.Servers(), func(s ServerInfo) bool { return s.Name != srv.Name })
	})
}

func TestFleetShutdown(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(
		testGame("bye", "shutdown-after", envTestAfter+"=500"),
		testGame("linger", "shutdown-stay"),
	)
	cfg.StopTimeout = 300 * time.Millisecond
	fx := runFleet(t, cfg, clock.RealClock{})
	ctx := context.Background()
	srv := fx.createWhenReady(t, "bye", "DONE", "host")
	eventually(t, 10*time.Second, "a clean exit after /shutdown", func() bool { return fx.exits("bye", exitShutdown) >= 1 })
	if _, err := fx.f.Join(ctx, "bye", "DONE", "late"); !errors.Is(err, match.ErrRoomNotFound) {
		t.Errorf("join after shutdown: err = %v, want ErrRoomNotFound", err)
	}
	eventually(t, 10*time.Second, "a replacement", func() bool {
		return slices.ContainsFunc(fx.servers("bye", ""), func(s ServerInfo) bool { return s.Name != srv.Name })
	})
	// A server that says /shutdown but does not exit is terminated after StopTimeout; it
	// still counts as a shutdown, not a crash.
	eventually(t, 10*time.Second, "the lingering server terminated", func() bool { return fx.exits("linger", exitShutdown) >= 1 })
	if n := fx.exits("bye", exitCrashed) + fx.exits("linger", exitCrashed); n != 0 {
		t.Errorf("crashed exits = %v, want 0", n)
	}
}

func TestFleetUnhealthy(t *testing.T) {
	t.Parallel()
	fx := runFleet(t, fastConfig(testGame("mute", "no-heartbeat")), clock.RealClock{})
	eventually(t, 10*time.Second, "a Ready server", func() bool { return len(fx.servers("mute", StateReady)) == 1 })
	first := fx.servers("mute", StateReady)[0]
	eventually(t, 10*time.Second, "an unhealthy exit", func() bool { return fx.exits("mute", exitUnhealthy) >= 1 })
	if alive(first.PID) {
		t.Errorf("unhealthy server %s (pid %d) still runs", first.Name, first.PID)
	}
	eventually(t, 10*time.Second, "a Ready replacement", func() bool {
		return slices.ContainsFunc(fx.servers("mute", StateReady), func(s ServerInfo) bool { return s.Name != first.Name })
	})
}

func TestFleetStartTimeout(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testGame("slow", "never-ready"))
	cfg.StartTimeout = time.Second
	fx := runFleet(t, cfg, clock.RealClock{})
	eventually(t, 10*time.Second, "a start timeout", func() bool { return fx.exits("slow", exitStartTimeout) >= 1 })
	eventually(t, 10*time.Second, "a replacement Starting", func() bool { return len(fx.servers("slow", StateStarting)) == 1 })
}

func TestFleetMaxServers(t *testing.T) {
	t.Parallel()
	g := testGame("capped", "ok")
	g.Buffer, g.MaxServers = 2, 3
	fx := runFleet(t, fastConfig(g), clock.RealClock{})
	ctx := context.Background()
	fx.createWhenReady(t, "capped", "AAAA", "a")
	fx.createWhenReady(t, "capped", "BBBB", "b")
	fx.createWhenReady(t, "capped", "CCCC", "c")
	if _, err := fx.f.Create(ctx, "capped", "DDDD", true, "d"); !errors.Is(err, match.ErrNoCapacity) {
		t.Errorf("create beyond MaxServers: err = %v, want ErrNoCapacity", err)
	}
	// Over half a second the cap holds.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := len(fx.servers("capped", "")); n > 3 {
			t.Fatalf("%d servers, want at most 3", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A room that ends frees a slot for the buffer.
	name := fx.servers("capped", StateAllocated)[0].Name
	bc, err := contract.NewClient(fx.bridgeURL(t, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	fx.createWhenReady(t, "capped", "DDDD", "d")
}

func TestFleetCrashLoopBacksOff(t *testing.T) {
	t.Parallel()
	g := testGame("loop", "crash")
	g.Buffer = 2
	fx := runFleet(t, fastConfig(g), clock.RealClock{}) // backoff 50ms, 100ms, 200ms, 400ms, 800ms, ...
	window := 1500 * time.Millisecond
	time.Sleep(window) // measuring a rate over a window, not waiting for a state
	n := fx.exits("loop", exitCrashed) + float64(len(fx.servers("loop", "")))
	t.Logf("%v servers started in %v", n, window)
	// Without backoff this is hundreds; with it, 2 at first then one probe per delay.
	if n < 3 || n > 10 {
		t.Errorf("%v servers started in %v, want 3 to 10", n, window)
	}
	if !fx.logs.has(func(r logRecord) bool { return r.msg == "game servers fail before ready; backing off" }) {
		t.Error("backoff not logged")
	}
	if !fx.logs.has(func(r logRecord) bool {
		return r.msg == "game server output" && r.level == slog.LevelInfo && r.attrs["stream"] == "stderr" &&
			r.attrs["line"] == "test game: crashing before ready"
	}) {
		t.Error("stderr of the crashing server not logged")
	}
}

func TestFleetStopKillsEverything(t *testing.T) {
	t.Parallel()
	pidFile := t.TempDir() + "/child.pid"
	cfg := fastConfig(
		testGame("calm", "ok"),
		testGame("stubborn", "stubborn"),
		testGame("parent", "parent", envTestPIDFile+"="+pidFile),
	)
	cfg.StopTimeout = 300 * time.Millisecond
	fx := runFleet(t, cfg, clock.RealClock{})
	eventually(t, 10*time.Second, "every game Ready", func() bool {
		for _, g := range []string{"calm", "stubborn", "parent"} {
			if len(fx.servers(g, StateReady)) != 1 {
				return false
			}
		}
		return true
	})
	if _, err := fx.f.Create(context.Background(), "calm", "LIVE", true, "p"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a refilled buffer", func() bool { return len(fx.servers("calm", StateReady)) == 1 })
	var pids []int
	var bridges []string
	for _, s := range fx.f.Servers() {
		pids = append(pids, s.PID)
		bridges = append(bridges, fx.bridgeURL(t, s.Name))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(string(b))
	pids = append(pids, child)
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d not running before stop", pid)
		}
	}

	start := time.Now()
	fx.stop()
	t.Logf("stopped %d processes in %v", len(pids), time.Since(start))
	// The game servers are reaped before Run returns. The parent's child got the SIGKILL
	// sent to its process group before Run returned too, but the kernel ends it
	// asynchronously: give it a moment (it cannot catch SIGKILL).
	for _, pid := range pids[:len(pids)-1] {
		if alive(pid) {
			t.Errorf("pid %d still runs after Run returned", pid)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(child) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if alive(child) {
		t.Errorf("the game server's child %d still runs 5s after Run returned", child)
	}
	for _, u := range bridges {
		if resp, err := http.Get(u + contract.PathAllocation); err == nil {
			resp.Body.Close()
			t.Errorf("bridge %s still answers after Run returned", u)
		}
	}
	if s := fx.f.Servers(); len(s) != 0 {
		t.Errorf("servers after stop = %+v, want none", s)
	}
	if rooms, _ := fx.f.Rooms(context.Background(), ""); len(rooms) != 0 {
		t.Errorf("rooms after stop = %+v, want none", rooms)
	}
	if n := fx.exits("calm", exitStopped); n != 2 {
		t.Errorf("calm stopped exits = %v, want 2", n)
	}
	for _, g := range []string{"stubborn", "parent"} {
		if n := fx.exits(g, exitStopped); n != 1 {
			t.Errorf("%s stopped exits = %v, want 1", g, n)
		}
	}
	for _, state := range allStates {
		if n := testutil.ToFloat64(fx.m.GameServers.WithLabelValues("calm", state)); n != 0 {
			t.Errorf("usher_gameservers{calm,%s} = %v after stop, want 0", state, n)
		}
	}
}

// TestFleetSeatExpiry drives seat expiry through Run's ticker with a fake clock; the game
// server is real.
func TestFleetSeatExpiry(t *testing.T) {
	t.Parallel()
	clk := clocktesting.NewFakeClock(epoch)
	cfg := Config{
		Games:       []Game{testGame("expiry", "ok")},
		SeatTimeout: 20 * time.Second, HeartbeatTimeout: time.Hour, StartTimeout: time.Hour,
	}
	fx := runFleet(t, cfg, clk)
	ctx := context.Background()
	srv := fx.createWhenReady(t, "expiry", "SEAT", "host")
	if _, err := fx.f.Join(ctx, "expiry", "SEAT", "ghost"); err != nil {
		t.Fatal(err)
	}
	bc, err := contract.NewClient(fx.bridgeURL(t, srv.Name), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.PlayerConnected(ctx, "host"); err != nil {
		t.Fatal(err)
	}
	seats := func() int {
		rooms, err := fx.f.Rooms(ctx, "expiry")
		if err != nil || len(rooms) != 1 {
			t.Fatalf("rooms = %+v, %v; want SEAT", rooms, err)
		}
		return rooms[0].Seats
	}
	clk.Step(19 * time.Second)
	time.Sleep(100 * time.Millisecond) // give a wrong expiry the chance to happen
	if n := seats(); n != 2 {
		t.Fatalf("seats 19s in = %d, want 2", n)
	}
	clk.Step(2 * time.Second)
	eventually(t, 5*time.Second, "the ghost's seat released", func() bool { return seats() == 1 })
	a, err := bc.Allocation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Players, []string{"host"}) {
		t.Errorf("players = %v, want [host]", a.Players)
	}
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs: trust kill
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
