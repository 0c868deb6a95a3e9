// Package local runs game servers as processes on this machine: the fleet backend of `usher dev`.
//
// It mirrors what Agones does in a cluster. Each game keeps a warm buffer of servers that are
// Starting or Ready; Create allocates the oldest Ready one to a room (Allocated), Join and
// QuickJoin reserve seats in allocated rooms, and a server ends when its process exits, after
// it called /shutdown, crashed, missed its heartbeats or never became Ready. Every server gets
// its own bridge listener on 127.0.0.1, served in-process over the fleet's state.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
)

// Fleet is the local fleet: game server processes supervised by Run, rooms and seats kept
// in memory.
type Fleet struct {
	cfg   Config
	games map[string]Game
	clk   clock.WithTicker
	log   *slog.Logger
	st    *state
	tick  time.Duration // how often the supervisor checks the clock

	running atomic.Bool
	wg      sync.WaitGroup // process waiters, terminators and bridge servers
}

var _ match.Fleet = (*Fleet)(nil)

// New checks cfg, applies its defaults and returns a fleet that starts game servers once Run
// is called. A nil m records metrics on a registry of its own, a nil clk is the real clock
// and a nil log discards.
func New(cfg Config, m *metrics.Metrics, clk clock.WithTicker, log *slog.Logger) (*Fleet, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("local fleet config: %w", err)
	}
	if m == nil {
		m = metrics.New(prometheus.NewRegistry())
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	games := make(map[string]Game, len(cfg.Games))
	for _, g := range cfg.Games {
		games[g.ID] = g
	}
	// Check about every second, more often when a timeout is shorter than a few seconds.
	tick := time.Second
	for _, d := range []time.Duration{cfg.SeatTimeout, cfg.HeartbeatTimeout, cfg.StartTimeout, cfg.StopTimeout} {
		tick = min(tick, d/4)
	}
	return &Fleet{
		cfg:   cfg,
		games: games,
		clk:   clk,
		log:   log,
		st:    newState(cfg, m, clk, log),
		tick:  max(tick, 10*time.Millisecond),
	}, nil
}

// Run starts the warm buffers and supervises the servers until ctx is done: it replaces
// servers that exit, turn unhealthy or do not become Ready in time, keeps the buffers,
// releases seats whose player never connected, and backs off when a game's servers keep
// failing before Ready. When ctx is done it stops every process (SIGTERM, then SIGKILL
// after StopTimeout) and bridge listener, waits for them and returns nil.
func (f *Fleet) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("local fleet: Run called twice")
	}
	f.log.Info("local fleet starting", "games", len(f.cfg.Games))
	ticker := f.clk.NewTicker(f.tick)
	defer ticker.Stop()
	var wake clock.Timer
	for {
		if ctx.Err() != nil {
			break
		}
		p := f.st.plan()
		for _, proc := range p.kill {
			f.terminate(proc)
		}
		for _, s := range p.spawn {
			f.start(s)
		}
		var wakeC <-chan time.Time
		if wake != nil {
			wake.Stop()
			wake = nil
		}
		if !p.wake.IsZero() {
			wake = f.clk.NewTimer(max(p.wake.Sub(f.clk.Now()), 0))
			wakeC = wake.C()
		}
		select {
		case <-ctx.Done():
		case <-ticker.C():
		case <-f.st.kick:
		case <-wakeC:
		}
	}
	if wake != nil {
		wake.Stop()
	}
	kill := f.st.stopAll()
	f.log.Info("local fleet stopping", "servers", len(kill))
	for _, proc := range kill {
		f.terminate(proc)
	}
	f.wg.Wait()
	f.log.Info("local fleet stopped")
	return nil
}

// Create allocates the oldest Ready server of game to a new room and reserves the host's
// seat. Errors: match.ErrUnknownGame, match.ErrRoomExists (a live room of any game has that
// code), match.ErrNoCapacity (no Ready server now; the buffer is being topped up).
func (f *Fleet) Create(ctx context.Context, game, room string, public bool, player string) (match.Server, error) {
	if err := ctx.Err(); err != nil {
		return match.Server{}, err
	}
	return f.st.create(game, room, public, player)
}

// Join reserves a seat for player in the live room with that exact code. A player who holds
// a seat there gets the same server back (a reserved seat's deadline is refreshed). Errors:
// match.ErrUnknownGame, match.ErrRoomNotFound (also for a room of another game),
// match.ErrRoomFull.
func (f *Fleet) Join(ctx context.Context, game, room, player string) (match.Server, error) {
	if err := ctx.Err(); err != nil {
		return match.Server{}, err
	}
	return f.st.join(game, room, player)
}

// QuickJoin reserves a seat for player in the public room of game with the most seats taken
// that still has a free one (the oldest on a tie), or returns the public room where player
// already holds a seat. Errors: match.ErrUnknownGame, match.ErrRoomNotFound.
func (f *Fleet) QuickJoin(ctx context.Context, game, player string) (match.Server, error) {
	if err := ctx.Err(); err != nil {
		return match.Server{}, err
	}
	return f.st.quickJoin(game, player)
}

// Release gives up player's reserved seat in room (they joined another room): it is
// free at once. A taken seat is left: the game server reports the disconnect.
func (f *Fleet) Release(ctx context.Context, game, room, player string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.st.release(game, room, player)
}

// EndRoom ends a live room now (the admin page's "close room"): its game server is told it
// is no longer wanted (state Shutdown, as Agones would delete it) and is stopped if it does
// not exit within StopTimeout. Errors: match.ErrRoomNotFound.
func (f *Fleet) EndRoom(ctx context.Context, game, room string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.st.endRoom(game, room)
}

// Rooms lists the live rooms of game, or of every game when game is "", oldest first.
// Errors: match.ErrUnknownGame.
func (f *Fleet) Rooms(ctx context.Context, game string) ([]match.Room, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.st.listRooms(game)
}

// ServerInfo describes one game server for the admin page.
type ServerInfo struct {
	Name       string
	Game       string
	State      string // StateStarting, StateReady, StateAllocated, StateShutdown or StateUnhealthy
	Room       string // "" unless Allocated (or ended while Allocated)
	Public     bool
	Addr       string
	MaxPlayers int
	Seats      int // reserved or connected
	Connected  int
	PID        int       // 0 until the process is started
	Started    time.Time // when Usher started it
}

// Servers returns a snapshot of every game server whose process has not ended, by game and
// then in the order they were started.
func (f *Fleet) Servers() []ServerInfo { return f.st.snapshot() }
