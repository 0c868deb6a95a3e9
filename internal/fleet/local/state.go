package local

import (
	"cmp"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
)

// States of a local game server, as Servers reports them and the usher_gameservers gauge
// counts them. They follow Agones: Starting → Ready → Allocated → Shutdown, and Unhealthy
// for a server that missed its heartbeats or never became Ready and is being killed.
const (
	StateStarting  = contract.StateStarting
	StateReady     = contract.StateReady
	StateAllocated = contract.StateAllocated
	StateShutdown  = contract.StateShutdown
	StateUnhealthy = "Unhealthy"
)

var allStates = []string{StateStarting, StateReady, StateAllocated, StateShutdown, StateUnhealthy}

// Reasons a game server ended, the reason label of usher_gameserver_exits_total.
const (
	exitShutdown     = "shutdown"      // exited after /shutdown
	exitCrashed      = "crashed"       // exited on its own without /shutdown, or with a non-zero status
	exitUnhealthy    = "unhealthy"     // killed for missing heartbeats
	exitStartTimeout = "start_timeout" // killed for not becoming Ready in time
	exitStopped      = "stopped"       // killed because the fleet stopped
)

// state is the fleet's bookkeeping: servers, rooms and seats. It starts and kills nothing
// itself; it decides (plan, stopAll) and is told what happened (spawned, exited), so its
// rules can be tested with a fake clock and no processes.
type state struct {
	cfg  Config
	clk  clock.PassiveClock
	m    *metrics.Metrics
	log  *slog.Logger
	kick chan struct{} // wakes the supervisor; capacity 1

	mu       sync.Mutex
	games    map[string]*gameState
	servers  map[string]*server // live servers by name, until their process is gone
	rooms    map[string]*server // live rooms by code, across games: allocated servers only
	seq      uint64             // last server number handed out
	run      string             // random per fleet, so names never repeat across restarts
	stopping bool

	violations []Violation // the conformance recorder's findings (Config.Conformance)
}

type gameState struct {
	Game
	backoff   time.Duration // current restart delay; 0 while the game is healthy
	notBefore time.Time     // no new server of this game before this time
}

// server is one game server: its allocation, its seats and, once spawned, its process.
// Every field is guarded by state.mu.
type server struct {
	name       string
	game       string
	seq        uint64
	maxPlayers int

	state       string
	room        string
	public      bool
	startedAt   time.Time
	readyAt     time.Time // zero until the first Ready
	allocatedAt time.Time
	heartbeatAt time.Time
	shutdownAt  time.Time        // when it called /shutdown (or was told to stop)
	seats       []*seat          // in the order they were taken
	seatIndex   map[string]*seat // seats by player: a join into a full lobby is O(1)
	nConnected  int              // seats whose player is connected
	played      bool             // a player has connected since the room began

	version uint64
	changed chan struct{} // closed at the next change of the allocation

	addr      string // 127.0.0.1:port where it accepts players
	bridgeURL string
	pid       int
	proc      *process

	exitReason  string // set when Usher decided to end it
	terminating bool   // a SIGTERM/SIGKILL sequence has been started
	gone        bool   // the process has exited
	gapReported bool   // the conformance recorder reported the current heartbeat gap
	// everConnected: players reported connected in this room (only with Config.Conformance).
	everConnected map[string]bool
}

type seat struct {
	player    string
	connected bool
	deadline  time.Time // while reserved: released after this
}

func newState(cfg Config, m *metrics.Metrics, clk clock.PassiveClock, log *slog.Logger) *state {
	st := &state{
		run:     runID(),
		cfg:     cfg,
		clk:     clk,
		m:       m,
		log:     log,
		kick:    make(chan struct{}, 1),
		games:   make(map[string]*gameState, len(cfg.Games)),
		servers: make(map[string]*server),
		rooms:   make(map[string]*server),
	}
	for _, g := range cfg.Games {
		st.games[g.ID] = &gameState{Game: g}
		for _, s := range allStates {
			m.GameServers.WithLabelValues(g.ID, s).Set(0)
		}
		m.Rooms.WithLabelValues(g.ID).Set(0)
		m.Players.WithLabelValues(g.ID).Set(0)
	}
	return st
}

// wake asks the supervisor for a pass (top up buffers, kill what must die) without waiting.
func (st *state) wake() {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// publish recomputes the gauges of game from scratch, so they stay exact. Called with mu held.
func (st *state) publish(game string) {
	counts := make(map[string]int, len(allStates))
	rooms, players := 0, 0
	for _, s := range st.servers {
		if s.game != game {
			continue
		}
		counts[s.state]++
		if s.state == StateAllocated {
			rooms++
		}
		players += s.nConnected
	}
	for _, state := range allStates {
		st.m.GameServers.WithLabelValues(game, state).Set(float64(counts[state]))
	}
	st.m.Rooms.WithLabelValues(game).Set(float64(rooms))
	st.m.Players.WithLabelValues(game).Set(float64(players))
}

// changedLocked records a change of s's allocation: the version grows and long polls wake.
func (s *server) changedLocked() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

// setStateLocked moves s to a new state; a server that leaves Allocated ends its room.
func (st *state) setStateLocked(s *server, to string) {
	if s.state == to {
		return
	}
	if s.state == StateAllocated && st.rooms[s.room] == s {
		delete(st.rooms, s.room)
	}
	s.state = to
	s.changedLocked()
	st.publish(s.game)
}

func (s *server) seatOf(player string) *seat { return s.seatIndex[player] }

func (s *server) connectedCount() int { return s.nConnected }

// addSeat gives player a seat (connected or reserved).
func (s *server) addSeat(se *seat) {
	if s.seatIndex == nil {
		s.seatIndex = make(map[string]*seat)
	}
	s.seats = append(s.seats, se)
	s.seatIndex[se.player] = se
	if se.connected {
		s.nConnected++
		s.played = true
	}
}

// clearSeats frees every seat (a new room).
func (s *server) clearSeats() {
	s.seats = s.seats[:0]
	clear(s.seatIndex)
	clear(s.everConnected)
	s.nConnected = 0
	s.played = false
}

// forgetSeat drops se from the index and the count; the caller removes it from s.seats.
func (s *server) forgetSeat(se *seat) {
	delete(s.seatIndex, se.player)
	if se.connected {
		s.nConnected--
	}
}

func (s *server) matchServer() match.Server {
	return match.Server{Name: s.name, Game: s.game, Room: s.room, Addr: s.addr, Public: s.public, MaxPlayers: s.maxPlayers}
}

// reserveLocked gives player a seat in s, or refreshes the one it holds. The caller has
// checked that s is Allocated.
func (st *state) reserveLocked(s *server, player string) error {
	deadline := st.clk.Now().Add(st.cfg.SeatTimeout)
	if se := s.seatOf(player); se != nil {
		// A reserved seat waits for its player at least the seat timeout from now; a seat
		// kept for a lost player keeps the rest of its grace if that is longer.
		if !se.connected && deadline.After(se.deadline) {
			se.deadline = deadline
		}
		return nil
	}
	if len(s.seats) >= s.maxPlayers {
		return match.ErrRoomFull
	}
	s.addSeat(&seat{player: player, deadline: deadline})
	s.changedLocked()
	return nil
}

// create implements match.Fleet.Create.
func (st *state) create(game, room string, public bool, player string) (match.Server, error) {
	if room == "" || player == "" {
		return match.Server{}, fmt.Errorf("create room %q for player %q: empty room or player", room, player)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.games[game]; !ok {
		return match.Server{}, fmt.Errorf("create room %s: %w: %q", room, match.ErrUnknownGame, game)
	}
	if _, ok := st.rooms[room]; ok {
		return match.Server{}, fmt.Errorf("create room %s: %w", room, match.ErrRoomExists)
	}
	var pick *server
	for _, s := range st.servers {
		if s.game == game && s.state == StateReady && (pick == nil || s.seq < pick.seq) {
			pick = s
		}
	}
	if pick == nil {
		return match.Server{}, fmt.Errorf("create room %s of %s: %w", room, game, match.ErrNoCapacity)
	}
	pick.room, pick.public, pick.allocatedAt = room, public, st.clk.Now()
	pick.clearSeats()
	st.rooms[room] = pick
	st.setStateLocked(pick, StateAllocated) // also bumps the version
	_ = st.reserveLocked(pick, player)      // an empty room always has a seat (MaxPlayers >= 1)
	st.wake()                               // top the warm buffer up now
	return pick.matchServer(), nil
}

// join implements match.Fleet.Join.
func (st *state) join(game, room, player string) (match.Server, error) {
	if player == "" {
		return match.Server{}, fmt.Errorf("join room %s: empty player", room)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.games[game]; !ok {
		return match.Server{}, fmt.Errorf("join room %s: %w: %q", room, match.ErrUnknownGame, game)
	}
	s := st.rooms[room]
	if s == nil || s.game != game {
		return match.Server{}, fmt.Errorf("join room %s of %s: %w", room, game, match.ErrRoomNotFound)
	}
	if err := st.reserveLocked(s, player); err != nil {
		return match.Server{}, fmt.Errorf("join room %s: %w", room, err)
	}
	return s.matchServer(), nil
}

// quickJoin implements match.Fleet.QuickJoin.
func (st *state) quickJoin(game, player string) (match.Server, error) {
	if player == "" {
		return match.Server{}, fmt.Errorf("quick join %s: empty player", game)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.games[game]; !ok {
		return match.Server{}, fmt.Errorf("quick join: %w: %q", match.ErrUnknownGame, game)
	}
	var pick *server
	for _, s := range st.rooms {
		if s.game != game || !s.public {
			continue
		}
		if s.seatOf(player) != nil {
			pick = s
			break
		}
		if len(s.seats) >= s.maxPlayers {
			continue
		}
		if pick == nil || len(s.seats) > len(pick.seats) ||
			(len(s.seats) == len(pick.seats) && olderRoom(s, pick)) {
			pick = s
		}
	}
	if pick == nil {
		return match.Server{}, fmt.Errorf("quick join %s: %w", game, match.ErrRoomNotFound)
	}
	if err := st.reserveLocked(pick, player); err != nil {
		return match.Server{}, fmt.Errorf("quick join room %s: %w", pick.room, err) // not reached: pick has a free seat
	}
	return pick.matchServer(), nil
}

func olderRoom(a, b *server) bool {
	if !a.allocatedAt.Equal(b.allocatedAt) {
		return a.allocatedAt.Before(b.allocatedAt)
	}
	return a.seq < b.seq
}

// listRooms implements match.Fleet.Rooms.
func (st *state) listRooms(game string) ([]match.Room, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.games[game]; game != "" && !ok {
		return nil, fmt.Errorf("rooms: %w: %q", match.ErrUnknownGame, game)
	}
	rooms := make([]match.Room, 0, len(st.rooms))
	for code, s := range st.rooms {
		if game != "" && s.game != game {
			continue
		}
		rooms = append(rooms, match.Room{
			Code: code, Game: s.game, Server: s.name, Public: s.public, MaxPlayers: s.maxPlayers,
			Seats: len(s.seats), Connected: s.connectedCount(), CreatedAt: s.allocatedAt,
		})
	}
	slices.SortFunc(rooms, func(a, b match.Room) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Code, b.Code))
	})
	return rooms, nil
}

func (st *state) snapshot() []ServerInfo {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]ServerInfo, 0, len(st.servers))
	seqs := make(map[string]uint64, len(st.servers))
	for _, s := range st.servers {
		seqs[s.name] = s.seq
		out = append(out, ServerInfo{
			Name: s.name, Game: s.game, State: s.state, Room: s.room, Public: s.public, Addr: s.addr,
			MaxPlayers: s.maxPlayers, Seats: len(s.seats), Connected: s.connectedCount(),
			PID: s.pid, Started: s.startedAt,
		})
	}
	slices.SortFunc(out, func(a, b ServerInfo) int {
		return cmp.Or(cmp.Compare(a.Game, b.Game), cmp.Compare(seqs[a.Name], seqs[b.Name]))
	})
	return out
}

// ---- the bridge: what a game server says about itself ----

// ready handles POST /ready: Starting → Ready. It is idempotent, and an Allocated server
// stays Allocated.
func (st *state) ready(s *server) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch s.state {
	case StateStarting:
		now := st.clk.Now()
		s.readyAt, s.heartbeatAt = now, now
		st.setStateLocked(s, StateReady)
		if g := st.games[s.game]; g.backoff > 0 {
			g.backoff, g.notBefore = 0, time.Time{}
			st.wake() // the game works again: fill its buffer without delay
		}
		st.log.Info("game server ready", "game", s.game, "gameserver", s.name, "addr", s.addr)
		return nil
	case StateReady, StateAllocated:
		return nil
	default:
		return fmt.Errorf("ready in state %s: %w", s.state, contract.ErrBadState)
	}
}

// heartbeat handles POST /heartbeat.
func (st *state) heartbeat(s *server) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch s.state {
	case StateStarting, StateReady, StateAllocated:
		now := st.clk.Now()
		st.heartbeatGapLocked(s, now)
		s.heartbeatAt, s.gapReported = now, false
		return nil
	default:
		return fmt.Errorf("heartbeat in state %s: %w", s.state, contract.ErrBadState)
	}
}

// playerConnected handles POST /players/connected: the player's seat is taken, or a free
// one is, since the game server already let the player in.
func (st *state) playerConnected(s *server, player string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.state != StateAllocated {
		if s.state == StateReady || s.state == StateStarting {
			st.violateLocked(s, RuleConnectedNotAllocated, "player %s reported connected in state %s", player, s.state)
		}
		return fmt.Errorf("player connected in state %s: %w", s.state, contract.ErrBadState)
	}
	se := s.seatOf(player)
	if se == nil {
		st.violateLocked(s, RuleConnectedWithoutSeat, "player %s reported connected without a seat in room %s", player, s.room)
	}
	if st.cfg.Conformance {
		if s.everConnected == nil {
			s.everConnected = make(map[string]bool)
		}
		s.everConnected[player] = true
	}
	switch {
	case se != nil && se.connected:
		return nil
	case se != nil:
		se.connected, se.deadline = true, time.Time{}
		s.nConnected++
		s.played = true
	case len(s.seats) >= s.maxPlayers:
		return fmt.Errorf("player connected to room %s: %w", s.room, contract.ErrRoomFull)
	default:
		s.addSeat(&seat{player: player, connected: true})
	}
	s.changedLocked()
	st.publish(s.game)
	return nil
}

// playerDisconnected handles POST /players/disconnected: the seat of a player who left is
// freed; a lost player's seat is kept, reserved, for the reconnect grace, so that the
// player can join the room again and take it (even a full or private room).
func (st *state) playerDisconnected(s *server, player, reason string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	se := s.seatOf(player)
	if se == nil || !se.connected {
		if s.everConnected[player] {
			st.violateLocked(s, RuleDisconnectedTwice, "player %s reported disconnected twice", player)
		} else {
			st.violateLocked(s, RuleDisconnectedUnknown, "player %s reported disconnected but never connected", player)
		}
	}
	if se == nil {
		return nil
	}
	if reason == contract.ReasonLost && st.cfg.ReconnectGrace > 0 && se.connected && s.state == StateAllocated {
		se.connected, se.deadline = false, st.clk.Now().Add(st.cfg.ReconnectGrace)
		s.nConnected--
		s.changedLocked()
		st.publish(s.game)
		st.log.Info("seat kept for a lost player", "game", s.game, "gameserver", s.name, "room", s.room,
			"player", player, "grace", st.cfg.ReconnectGrace)
		return nil
	}
	s.forgetSeat(se)
	i := slices.Index(s.seats, se)
	s.seats = slices.Delete(s.seats, i, i+1)
	s.changedLocked()
	st.publish(s.game)
	return nil
}

// release implements Fleet.Release.
func (st *state) release(game, room, player string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.rooms[room]
	if s == nil || s.game != game {
		return nil // the room has ended
	}
	se := s.seatOf(player)
	if se == nil || se.connected {
		return nil
	}
	s.forgetSeat(se)
	i := slices.Index(s.seats, se)
	s.seats = slices.Delete(s.seats, i, i+1)
	s.changedLocked()
	if len(s.seats) == 0 && !s.played && s.state == StateAllocated {
		// Nobody ever came and nobody is coming: end the room now rather than after the
		// game server's empty timeout, so that a player hopping from room to room holds
		// one server, not one per hop.
		s.shutdownAt = st.clk.Now()
		st.setStateLocked(s, StateShutdown)
		st.log.Info("room ended: its only player left it before anyone connected", "game", s.game,
			"gameserver", s.name, "room", s.room)
		st.wake()
	}
	st.publish(s.game)
	return nil
}

// endRoom implements Fleet.EndRoom.
func (st *state) endRoom(game, room string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.rooms[room]
	if s == nil || s.game != game {
		return fmt.Errorf("room %s of %s: %w", room, game, match.ErrRoomNotFound)
	}
	if s.state != StateAllocated {
		return nil
	}
	s.shutdownAt = st.clk.Now()
	st.setStateLocked(s, StateShutdown)
	st.log.Info("room ended by an operator", "game", s.game, "gameserver", s.name, "room", s.room)
	st.wake()
	return nil
}

// shutdown handles POST /shutdown: the room ends now; the process is expected to exit
// within StopTimeout, after which the supervisor terminates it.
func (st *state) shutdown(s *server) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch s.state {
	case StateShutdown:
		return nil
	case StateUnhealthy:
		return fmt.Errorf("shutdown in state %s: %w", s.state, contract.ErrBadState)
	}
	s.shutdownAt = st.clk.Now()
	st.setStateLocked(s, StateShutdown)
	st.log.Info("game server shutting down", "game", s.game, "gameserver", s.name, "room", s.room)
	st.wake()
	return nil
}

// allocation handles GET /allocation.
func (st *state) allocation(s *server) (contract.Allocation, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a := contract.Allocation{
		Version: s.version, State: s.state, Game: s.game, Room: s.room, Public: s.public,
		MaxPlayers: s.maxPlayers, Players: make([]string, 0, len(s.seats)), Connected: []string{},
	}
	if a.State == StateUnhealthy {
		a.State = contract.StateShutdown // the bridge protocol knows four states; this one is ending
	}
	for _, se := range s.seats {
		a.Players = append(a.Players, se.player)
		if se.connected {
			a.Connected = append(a.Connected, se.player)
		}
	}
	return a, s.changed
}

// ---- supervision: what the supervisor must do ----

// plan is what one supervisor pass must do outside the lock.
type plan struct {
	spawn []*server  // new records in Starting, to start a process for
	kill  []*process // to terminate (SIGTERM, then SIGKILL)
	wake  time.Time  // earliest backoff end still ahead; zero if none
}

// plan applies the clock (releases expired seats, marks Unhealthy servers) and returns the
// processes to start and to kill. Called by the supervisor, which alone starts and kills.
func (st *state) plan() plan {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.clk.Now()
	var p plan
	touched := make(map[string]bool)
	for _, s := range st.servers {
		switch s.state {
		case StateAllocated:
			if st.expireSeatsLocked(s, now) {
				touched[s.game] = true
			}
			fallthrough
		case StateReady:
			st.heartbeatGapLocked(s, now)
			if now.Sub(s.heartbeatAt) > st.cfg.HeartbeatTimeout {
				st.log.Warn("game server unhealthy: no heartbeat", "game", s.game, "gameserver", s.name,
					"room", s.room, "last_heartbeat", s.heartbeatAt)
				s.exitReason = exitUnhealthy
				st.setStateLocked(s, StateUnhealthy)
			}
		case StateStarting:
			if now.Sub(s.startedAt) > st.cfg.StartTimeout {
				st.log.Warn("game server not ready in time", "game", s.game, "gameserver", s.name,
					"start_timeout", st.cfg.StartTimeout)
				s.exitReason = exitStartTimeout
				st.setStateLocked(s, StateUnhealthy)
			}
		case StateShutdown:
			if !s.terminating && s.proc != nil && now.Sub(s.shutdownAt) > st.cfg.StopTimeout {
				st.log.Warn("game server did not exit after shutdown; terminating", "game", s.game,
					"gameserver", s.name, "stop_timeout", st.cfg.StopTimeout)
				if s.exitReason == "" {
					s.exitReason = exitShutdown // it asked to end; it is not a crash
				}
				st.violateLocked(s, RuleNoExitAfterShutdown, "still running %s after shutdown", st.cfg.StopTimeout)
				s.terminating = true
				p.kill = append(p.kill, s.proc)
			}
		}
		if s.state == StateUnhealthy && !s.terminating && s.proc != nil {
			s.terminating = true
			p.kill = append(p.kill, s.proc)
		}
	}
	for g := range touched {
		st.publish(g)
	}
	if st.stopping {
		return p
	}
	for _, id := range st.gameIDs() {
		g := st.games[id]
		if now.Before(g.notBefore) {
			if p.wake.IsZero() || g.notBefore.Before(p.wake) {
				p.wake = g.notBefore
			}
			continue
		}
		warm, starting, live := 0, 0, 0
		for _, s := range st.servers {
			if s.game != id {
				continue
			}
			live++
			switch s.state {
			case StateStarting:
				starting++
				warm++
			case StateReady:
				warm++
			}
		}
		need := g.Buffer - warm
		if g.MaxServers > 0 {
			need = min(need, g.MaxServers-live)
		}
		if g.backoff > 0 {
			// The game keeps failing before Ready: probe with one server at a time.
			need = min(need, 1-starting)
		}
		for range max(need, 0) {
			p.spawn = append(p.spawn, st.addServerLocked(g, now))
		}
	}
	return p
}

func (st *state) gameIDs() []string {
	ids := make([]string, 0, len(st.cfg.Games))
	for _, g := range st.cfg.Games {
		ids = append(ids, g.ID)
	}
	return ids
}

// expireSeatsLocked releases the reserved seats of s whose deadline passed.
func (st *state) expireSeatsLocked(s *server, now time.Time) bool {
	n := len(s.seats)
	s.seats = slices.DeleteFunc(s.seats, func(se *seat) bool {
		if !se.connected && now.After(se.deadline) {
			s.forgetSeat(se)
			st.log.Info("seat released: player did not connect", "game", s.game, "gameserver", s.name,
				"room", s.room, "player", se.player)
			return true
		}
		return false
	})
	if len(s.seats) == n {
		return false
	}
	s.changedLocked()
	return true
}

// addServerLocked records a new server of g in Starting; its process is started later.
func (st *state) addServerLocked(g *gameState, now time.Time) *server {
	st.seq++
	s := &server{
		name:       fmt.Sprintf("%s-%s-%d", g.ID, st.run, st.seq),
		game:       g.ID,
		seq:        st.seq,
		maxPlayers: g.MaxPlayers,
		state:      StateStarting,
		startedAt:  now,
		version:    1,
		changed:    make(chan struct{}),
	}
	st.servers[s.name] = s
	st.publish(g.ID)
	return s
}

// spawned records where a started server listens and its process.
func (st *state) spawned(s *server, p *process) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s.proc, s.pid = p, p.pid
	s.startedAt = st.clk.Now() // the start timeout runs from the real start
}

// exited records that the process of s is gone (err is from Wait, or the start error when
// started is false): the server and its room end, the exit is counted, and a game whose
// servers fail before Ready backs off.
func (st *state) exited(s *server, err error, started bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.gone {
		return
	}
	status := exitStatus(err)
	reason := s.exitReason
	if reason == "" {
		reason = exitCrashed
		if s.state == StateShutdown && err == nil {
			reason = exitShutdown
		}
	}
	s.gone = true
	st.setStateLocked(s, StateShutdown)
	delete(st.servers, s.name)
	st.publish(s.game)
	st.m.GameServerExits.WithLabelValues(s.game, reason).Inc()

	attrs := []any{"game", s.game, "gameserver", s.name, "room", s.room, "reason", reason, "exit", status}
	switch {
	case !started:
		st.log.Error("game server did not start", append(attrs, "err", err)...)
	case reason == exitCrashed:
		st.log.Warn("game server crashed", attrs...)
		if s.shutdownAt.IsZero() {
			st.violateLocked(s, RuleExitWithoutShutdown, "exited (%s) without calling /shutdown first", status)
		} else {
			st.violateLocked(s, RuleExitWithoutShutdown, "exited (%s) after /shutdown: the contract asks for exit code 0", status)
		}
	default:
		st.log.Info("game server exited", attrs...)
	}

	g := st.games[s.game]
	if s.readyAt.IsZero() && (reason == exitCrashed || reason == exitStartTimeout) {
		g.backoff = min(max(2*g.backoff, st.cfg.RestartBackoff), maxRestartBackoff)
		g.notBefore = st.clk.Now().Add(g.backoff)
		st.log.Warn("game servers fail before ready; backing off", "game", s.game, "backoff", g.backoff)
	}
	st.wake()
}

// stopAll marks every server as stopping and returns those whose process must be
// terminated now. No server is started afterwards.
func (st *state) stopAll() []*process {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.stopping = true
	var kill []*process
	for _, s := range st.servers {
		if s.exitReason == "" {
			s.exitReason = exitStopped
			if s.state == StateShutdown {
				s.exitReason = exitShutdown // it was ending anyway
			}
		}
		if s.state != StateUnhealthy {
			if s.shutdownAt.IsZero() {
				s.shutdownAt = st.clk.Now()
			}
			st.setStateLocked(s, StateShutdown)
		}
		if !s.terminating && s.proc != nil {
			s.terminating = true
			kill = append(kill, s.proc)
		}
	}
	return kill
}

// portTaken reports whether a live server was given addr.
func (st *state) portTaken(addr string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range st.servers {
		if s.addr == addr {
			return true
		}
	}
	return false
}

// setAddr records where s will accept players and where its bridge listens.
func (st *state) setAddr(s *server, addr, bridgeURL string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s.addr, s.bridgeURL = addr, bridgeURL
}

// runID is 5 random lowercase letters and digits, like the suffix of an Agones GameServer name:
// a ticket (or a log line) naming a server of an earlier run never names a server of this one.
func runID() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}
