// Package exampleserver is a tiny game server that keeps the game server contract of
// docs/game-servers.md, so local play, tests and benchmarks need no game engine.
//
// It relays every message a player sends, unchanged, to the other players of its room, and
// drives the bridge like a real game server: ready, heartbeats, players connected and
// disconnected, and shutdown once its room has been empty for a while.
package exampleserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/usher-gg/usher/contract"
)

// Close codes the example server uses besides the standard ones (1001 going away when it
// stops, 1008 "too slow" for a player whose send queue is full, 1009 for an oversized
// message, 1013 when the bridge cannot be reached).
const (
	// CloseRoomFull closes a player who holds no seat in a full room.
	CloseRoomFull = 4001
	// CloseReplaced closes a player's older connection when the same player connects again.
	CloseReplaced = 4002
)

const (
	bridgeTimeout = 5 * time.Second  // one bridge call
	leaveTimeout  = 2 * time.Second  // reporting a disconnect, also while stopping
	pollWait      = 30 * time.Second // one long poll of the allocation
	writeWait     = 10 * time.Second // writing one message to a player
	closeWait     = time.Second      // sending a close frame, then waiting for the reply
	drainTimeout  = 5 * time.Second  // closing every player when the server stops
	minBackoff    = 50 * time.Millisecond
	maxBackoff    = 2 * time.Second
)

var (
	errEmpty    = errors.New("room empty")
	errUnwanted = errors.New("bridge state is Shutdown")
)

// Welcome is the only message the server sends on its own: once, first, to each player who
// connects. Every other message a player receives was sent, unchanged, by another player.
type Welcome struct {
	Type    string   `json:"type"` // always "welcome"
	Player  string   `json:"player"`
	Room    string   `json:"room"`
	Players []string `json:"players"` // connected players, this one included, sorted
}

// Run serves players on cfg.Host:cfg.Port until ctx is done, the room has been empty for
// cfg.EmptyTimeout (it then tells the bridge it is shutting down), or the bridge says the
// server is no longer wanted. Those ends return nil; Run returns an error only when it cannot
// work at all (bad config, port taken, bridge refusing it).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return serve(ctx, cfg, log, ln)
}

// serve is Run on a listener the caller made; it closes ln.
func serve(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener) error {
	cfg = cfg.withDefaults()
	transport := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute} // no proxy
	defer transport.CloseIdleConnections()
	bridge, err := contract.NewClient(cfg.BridgeURL, &http.Client{Transport: transport})
	if err != nil {
		ln.Close()
		return err
	}
	log = log.With("game", cfg.Game, "gameserver", cfg.Server)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	s := newServer(ctx, cfg, log, bridge)
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second, // the upgrade clears these deadlines
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	lived := make(chan error, 1)
	go func() { lived <- s.lifecycle(ctx) }()

	livedDone := false
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("serve: %w", err)
	case err = <-lived:
		livedDone = true
	}
	cancel()

	// Stop: refuse new players, close the connected ones with 1001, stop listening, and wait
	// (bounded) for their connections to end and their departures to be reported.
	s.stop()
	sctx, scancel := context.WithTimeout(context.Background(), drainTimeout)
	defer scancel()
	_ = hs.Shutdown(sctx)
	drained := make(chan struct{})
	go func() { s.conns.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-sctx.Done():
		log.Warn("players still connected after the drain timeout")
	}
	if !livedDone {
		if lerr := <-lived; err == nil {
			err = lerr
		}
	}
	log.Info("stopped", "err", err)
	return err
}

// server is one running example game server.
type server struct {
	cfg    Config
	log    *slog.Logger
	bridge *contract.Client
	ctx    context.Context // the server's lifetime
	up     websocket.Upgrader
	locks  playerLocks    // orders the bridge reports of each player
	conns  sync.WaitGroup // player connections being served

	mu         sync.RWMutex
	players    map[string]*conn // connected players, by id
	allocated  bool
	room       string
	emptySince time.Time // latest of: allocation seen, last player left
	stopping   bool
	changed    chan struct{} // closed and replaced when players or the allocation change
}

func newServer(ctx context.Context, cfg Config, log *slog.Logger, bridge *contract.Client) *server {
	return &server{
		cfg:    cfg,
		log:    log,
		bridge: bridge,
		ctx:    ctx,
		up: websocket.Upgrader{
			// Only Usher can reach a game server, and it checks Origins itself.
			CheckOrigin:     func(*http.Request) bool { return true },
			WriteBufferPool: new(sync.Pool),
		},
		locks:   playerLocks{m: map[string]*playerLock{}},
		players: map[string]*conn{},
		changed: make(chan struct{}),
	}
}

// changedLocked wakes whoever waits on s.changed. Call with s.mu held for writing.
func (s *server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// lifecycle reports ready, then heartbeats and follows the allocation until the room has
// been empty too long, the bridge no longer wants the server, or ctx is done.
func (s *server) lifecycle(ctx context.Context) error {
	if err := s.ready(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.log.Info("ready")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.heartbeats(gctx); return nil })
	g.Go(func() error { return s.watchAllocation(gctx) })
	g.Go(func() error { return s.watchEmpty(gctx) })
	err := g.Wait()
	switch {
	case errors.Is(err, errEmpty):
		s.log.Info("room empty, shutting down", "empty_timeout", s.cfg.EmptyTimeout)
		return s.shutdown(ctx)
	case errors.Is(err, errUnwanted):
		s.log.Info("bridge says shut down")
		return nil
	}
	return err
}

// ready tells the bridge the server accepts players, retrying while the bridge is not
// reachable yet (it may start after us).
func (s *server) ready(ctx context.Context) error {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, bridgeTimeout)
		err := s.bridge.Ready(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) {
			return fmt.Errorf("ready: %w", err)
		}
		level := slog.LevelDebug
		if attempt%10 == 0 {
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "bridge not ready yet, retrying", "attempt", attempt, "err", err)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// shutdown tells the bridge the server is done, with a few retries.
func (s *server) shutdown(ctx context.Context) error {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, bridgeTimeout)
		err := s.bridge.Shutdown(cctx)
		cancel()
		switch {
		case err == nil, ctx.Err() != nil:
			return nil
		case !retryable(err) || attempt == 5:
			return fmt.Errorf("shutdown: %w", err)
		}
		s.log.Warn("shutdown failed, retrying", "attempt", attempt, "err", err)
		if sleep(ctx, backoff) != nil {
			return nil
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (s *server) heartbeats(ctx context.Context) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	timeout := min(max(s.cfg.HeartbeatInterval, time.Second), bridgeTimeout)
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := s.bridge.Heartbeat(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			s.log.Warn("heartbeat failed", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("heartbeats recovered")
			failing = false
		}
	}
}

// watchAllocation long-polls the allocation and records it. It returns errUnwanted when the
// bridge reports the Shutdown state.
func (s *server) watchAllocation(ctx context.Context) error {
	var (
		version uint64
		have    bool
		failing bool
		backoff = minBackoff
	)
	for {
		cctx, cancel := context.WithTimeout(ctx, pollWait+bridgeTimeout)
		var a contract.Allocation
		var err error
		if have {
			a, err = s.bridge.WaitAllocation(cctx, version, pollWait)
		} else {
			a, err = s.bridge.Allocation(cctx)
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				s.log.Warn("reading the allocation failed, retrying", "err", err)
				failing = true
			}
			if sleep(ctx, backoff) != nil {
				return nil
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		failing, backoff = false, minBackoff
		have, version = true, a.Version
		if s.setAllocation(a) {
			return errUnwanted
		}
	}
}

// setAllocation records a, and says whether the bridge wants the server to stop.
func (s *server) setAllocation(a contract.Allocation) (stop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.allocated
	s.allocated = a.State == contract.StateAllocated
	if a.Room != "" {
		s.room = a.Room
	}
	if s.allocated && !was {
		s.emptySince = time.Now()
		s.log.Info("allocated", "room", a.Room, "max_players", a.MaxPlayers)
	}
	s.changedLocked()
	return a.State == contract.StateShutdown
}

// watchEmpty returns errEmpty once the server has been allocated with no player connected
// for cfg.EmptyTimeout. From then on the server refuses new players.
func (s *server) watchEmpty(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		s.mu.RLock()
		deadline, armed := s.emptyDeadlineLocked()
		changed := s.changed
		s.mu.RUnlock()
		var fire <-chan time.Time
		if armed {
			timer.Reset(time.Until(deadline))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-fire:
			s.mu.Lock()
			deadline, armed = s.emptyDeadlineLocked()
			if armed && !time.Now().Before(deadline) {
				s.stopping = true
				s.mu.Unlock()
				return errEmpty
			}
			s.mu.Unlock()
		}
		timer.Stop()
	}
}

func (s *server) emptyDeadlineLocked() (time.Time, bool) {
	armed := s.allocated && len(s.players) == 0 && !s.stopping
	return s.emptySince.Add(s.cfg.EmptyTimeout), armed
}

// stop refuses new players and closes the connected ones with 1001.
func (s *server) stop() {
	s.mu.Lock()
	s.stopping = true
	conns := make([]*conn, 0, len(s.players))
	for _, c := range s.players {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(websocket.CloseGoingAway, "server stopping")
	}
}

// enter counts a new connection unless the server is stopping. The count is taken under
// s.mu so that stop's later Wait never races with an Add.
func (s *server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.conns.Add(1)
	return true
}

func (s *server) isStopping() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stopping
}

// roomCode returns the room from the last allocation seen, asking the bridge if none was.
func (s *server) roomCode(ctx context.Context) string {
	s.mu.RLock()
	room := s.room
	s.mu.RUnlock()
	if room != "" {
		return room
	}
	a, err := s.bridge.Allocation(ctx)
	if err != nil {
		s.log.Warn("reading the room code failed", "err", err)
		return ""
	}
	return a.Room
}

func retryable(err error) bool {
	var se *contract.StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests
	}
	return true // the bridge is not reachable (yet)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sortedIDsLocked returns the connected players' ids, sorted. Call with s.mu held.
func (s *server) sortedIDsLocked() []string {
	ids := make([]string, 0, len(s.players))
	for id := range s.players {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
