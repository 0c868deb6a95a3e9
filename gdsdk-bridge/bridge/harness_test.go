package bridge_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usher-gg/usher/agones/sdk/sdktest"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/gdsdk-bridge/bridge"
	"github.com/usher-gg/usher/internal/testlog"
)

// The tests run the whole sidecar over real HTTP on both sides: the contract client (the
// game server) → the bridge's handler → the backend → the sdktest fake SDK gateway. Time is
// a fake clock shared by the bridge and the fake, so pings carry fake times.

var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

const wait = 5 * time.Second // deadline of every poll and blocking step

// fakeClock is a bridge.Clock the test moves by hand. Advance fires tickers one tick at a
// time, in time order, and waits until the loop that got the tick has handled it.
type fakeClock struct {
	tb      testing.TB
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	afters  []*fakeAfter
	acks    chan struct{}
}

type fakeTicker struct {
	c       chan time.Time
	d       time.Duration
	next    time.Time
	stopped bool
}

type fakeAfter struct {
	c  chan time.Time
	at time.Time
}

func newFakeClock(tb testing.TB) *fakeClock {
	return &fakeClock{tb: tb, now: t0, acks: make(chan struct{}, 1)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{c: make(chan time.Time), d: d, next: f.now.Add(d)}
	f.tickers = append(f.tickers, t)
	return t.c, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		t.stopped = true
	}
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- f.now
		return c
	}
	f.afters = append(f.afters, &fakeAfter{c: c, at: f.now.Add(d)})
	return c
}

// liveTickers is the number of tickers not stopped.
func (f *fakeClock) liveTickers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.tickers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// pendingAfters is the number of After timers not fired yet.
func (f *fakeClock) pendingAfters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.afters)
}

// ack is the bridge's after-tick hook.
func (f *fakeClock) ack() { f.acks <- struct{}{} }

func (f *fakeClock) Advance(d time.Duration) {
	f.tb.Helper()
	f.mu.Lock()
	target := f.now.Add(d)
	f.mu.Unlock()
	for {
		f.mu.Lock()
		// The earliest event due by target; an After wins a tie with a ticker.
		var tk *fakeTicker
		af, found := -1, false
		var at time.Time
		for i, a := range f.afters {
			if !a.at.After(target) && (!found || a.at.Before(at)) {
				af, at, found = i, a.at, true
			}
		}
		for _, t := range f.tickers {
			if !t.stopped && !t.next.After(target) && (!found || t.next.Before(at)) {
				tk, af, at, found = t, -1, t.next, true
			}
		}
		if !found {
			f.now = target
			f.mu.Unlock()
			return
		}
		f.now = at
		if af >= 0 {
			a := f.afters[af]
			f.afters = append(f.afters[:af], f.afters[af+1:]...)
			f.mu.Unlock()
			a.c <- at
			continue
		}
		tk.next = tk.next.Add(tk.d)
		f.mu.Unlock()
		select {
		case tk.c <- at:
		case <-time.After(wait):
			f.tb.Fatalf("fake clock: no loop took the tick at %v", at.Sub(t0))
		}
		select {
		case <-f.acks:
		case <-time.After(wait):
			f.tb.Fatalf("fake clock: the tick at %v was not handled", at.Sub(t0))
		}
	}
}

type harness struct {
	tb   testing.TB
	clk  *fakeClock
	sdk  *sdktest.Server
	app  *bridge.App
	game *contract.Client
	logs *testlog.Buffer
	sigs chan os.Signal
	done chan error // Run's result
}

type setup struct {
	gs      *sdktest.GameServer // default: sdktest.DefaultGameServer with the game label
	late    bool                // the SDK gateway is not listening yet
	sdkOpts []sdktest.Option
	cfg     func(*bridge.Config)
}

func testGameServer() sdktest.GameServer {
	gs := sdktest.DefaultGameServer()
	gs.Labels[contract.LabelGame] = "treasure" // from the Fleet template
	return gs
}

func start(tb testing.TB, s setup) *harness {
	tb.Helper()
	clk := newFakeClock(tb)
	gs := testGameServer()
	if s.gs != nil {
		gs = *s.gs
	}
	opts := append([]sdktest.Option{sdktest.WithClock(clk.Now)}, s.sdkOpts...)
	var fake *sdktest.Server
	if s.late {
		fake = sdktest.NewLate(tb, gs, opts...)
	} else {
		fake = sdktest.New(tb, gs, opts...)
	}
	cfg, err := bridge.DefaultConfig(func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.SDKURL = fake.URL()
	cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 50*time.Millisecond
	cfg.LogLevel = "debug"
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	logs := &testlog.Buffer{}
	log, err := bridge.NewLogger(logs, "json", "debug")
	if err != nil {
		tb.Fatal(err)
	}
	app, err := bridge.NewApp(cfg, clk, log)
	if err != nil {
		tb.Fatal(err)
	}
	app.SetAfterTick(clk.ack)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{tb: tb, clk: clk, sdk: fake, app: app, logs: logs, sigs: make(chan os.Signal, 2), done: make(chan error, 1)}
	go func() { h.done <- app.Run(ctx, h.sigs) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(wait):
			tb.Error("bridge did not stop")
		}
		if tb.Failed() {
			tb.Logf("bridge logs:\n%s", logs.String())
		}
	})
	h.game, err = contract.NewClient("http://"+app.Addr(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	// The health and seat loops start on their own goroutines: time must not move before
	// their tickers exist.
	waitFor(tb, "the health and seat tickers", func() bool { return clk.liveTickers() == 2 })
	return h
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	h.tb.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, or fails the test after the deadline.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitAlloc long-polls the bridge, as a game server does, until cond holds.
func (h *harness) waitAlloc(what string, cond func(contract.Allocation) bool) contract.Allocation {
	h.tb.Helper()
	ctx := h.ctx()
	a, err := h.game.Allocation(ctx)
	for err == nil && !cond(a) {
		a, err = h.game.WaitAllocation(ctx, a.Version, wait)
	}
	if err != nil {
		h.tb.Fatalf("waiting for the allocation to be %s: %v (last %+v)", what, err, a)
	}
	return a
}

// ready has the game say ready and waits until the bridge reports Ready.
func (h *harness) ready() {
	h.tb.Helper()
	if err := h.game.Ready(h.ctx()); err != nil {
		h.tb.Fatalf("game ready: %v", err)
	}
	h.waitAlloc("Ready", func(a contract.Allocation) bool { return a.State == contract.StateReady })
}

// allocate readies the server, then allocates it as Usher's GameServerAllocation does,
// reserving seats for players, and waits until the bridge reports it.
func (h *harness) allocate(players ...string) contract.Allocation {
	h.tb.Helper()
	h.ready()
	h.sdk.Allocate(sdktest.Allocation{
		Labels:    map[string]string{contract.LabelRoom: "K7QX", contract.LabelPublic: "true"},
		AddValues: map[string][]string{contract.PlayersList: players},
	})
	return h.waitAlloc("Allocated", func(a contract.Allocation) bool { return a.State == contract.StateAllocated })
}

func (h *harness) listValues() []string {
	return h.sdk.GameServer().Lists[contract.PlayersList].Values
}

func (h *harness) calls(method, path string) int { return h.sdk.CallCount(method, path) }

const (
	pathAdd    = "/v1beta1/lists/players:addValue"
	pathRemove = "/v1beta1/lists/players:removeValue"
)

func (h *harness) logged(msg string) bool { return strings.Contains(h.logs.String(), msg) }
