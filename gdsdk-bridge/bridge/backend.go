// Package bridge is the gdsdk-bridge sidecar: it serves Usher's bridge protocol to the game
// server in its pod and turns it into Agones SDK calls, so a game server behaves the same in
// a cluster as under `usher dev`.
package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	agsdk "github.com/usher-gg/usher/agones/sdk"
	"github.com/usher-gg/usher/contract"
)

// sdk is what the bridge needs of the Agones SDK gateway.
type sdk interface {
	Ready(ctx context.Context) error
	Health(ctx context.Context) error
	Shutdown(ctx context.Context) error
	GetList(ctx context.Context, name string) (*agsdk.List, error)
	AddListValue(ctx context.Context, name, value string) (*agsdk.List, error)
	RemoveListValue(ctx context.Context, name, value string) (*agsdk.List, error)
	WatchGameServer(ctx context.Context, fn func(*agsdk.GameServer)) error
}

var _ sdk = (*agsdk.Client)(nil)

// Backend implements the bridge protocol over the Agones SDK. The allocation it serves is
// built from the GameServer the SDK's watch stream shows, plus what the game reported.
//
// SDK list changes are batched and eventually consistent (about a second), so the backend
// keeps track of its own pending changes: a value it asked to remove is hidden from the
// allocation and not removed again until the watch shows it gone.
type Backend struct {
	cfg     Config
	sdk     sdk
	clk     Clock
	log     atomic.Pointer[slog.Logger] // gains the gameserver name once known
	players keyedLock                   // one SDK list operation per player at a time

	readyKick    chan struct{} // wakes the ready loop; capacity 1
	shutdownKick chan struct{} // wakes the shutdown loop; capacity 1
	readyDone    chan struct{} // closed once the SDK accepted Ready
	shutdownDone chan struct{} // closed once the SDK accepted Shutdown
	terminal     chan struct{} // closed once the watched GameServer is Shutdown
	terminalOnce sync.Once

	afterTick func() // test hook: called after each ticker-driven pass

	mu             sync.Mutex
	startedAt      time.Time
	readyWanted    bool
	shutdownWanted bool
	heartbeatAt    time.Time // the game's last heartbeat (or /ready); zero before the first
	pinging        bool      // the last health decision, to log changes only
	warnedPeriod   bool
	gs             *agsdk.GameServer // latest from the watch; nil before the first event
	connected      map[string]bool   // players the game reported connected
	seenAt         map[string]time.Time
	removing       map[string]time.Time // values this bridge asked the SDK to remove, and when
	adopted        map[string]bool      // values present when the bridge (re)started mid-room
	keptUntil      map[string]time.Time // seats of lost players, kept for the reconnect grace
	alloc          contract.Allocation
	changed        chan struct{} // closed at the next change of alloc
}

var _ contract.Backend = (*Backend)(nil)

// NewBackend returns a backend over s. Call Run to start its loops.
func NewBackend(cfg Config, s sdk, clk Clock, log *slog.Logger) *Backend {
	b := &Backend{
		cfg:          cfg,
		sdk:          s,
		clk:          clk,
		players:      keyedLock{m: make(map[string]*keyedEntry)},
		readyKick:    make(chan struct{}, 1),
		shutdownKick: make(chan struct{}, 1),
		readyDone:    make(chan struct{}),
		shutdownDone: make(chan struct{}),
		terminal:     make(chan struct{}),
		startedAt:    clk.Now(),
		connected:    make(map[string]bool),
		seenAt:       make(map[string]time.Time),
		removing:     make(map[string]time.Time),
		adopted:      make(map[string]bool),
		keptUntil:    make(map[string]time.Time),
		changed:      make(chan struct{}),
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b.log.Store(log)
	b.alloc = b.buildLocked()
	b.alloc.Version = 1
	return b
}

func (b *Backend) logger() *slog.Logger { return b.log.Load() }

// Terminal is closed once the watched GameServer has reached Shutdown.
func (b *Backend) Terminal() <-chan struct{} { return b.terminal }

// ---- the bridge protocol ----

// Ready records that the game accepts players and has the SDK told so (once: a later
// /ready must not make an Allocated server Ready again). It answers once the SDK accepted
// it; if the SDK cannot be reached in time it answers an error, and the game retries, while
// the bridge keeps retrying too.
func (b *Backend) Ready(ctx context.Context) error {
	b.mu.Lock()
	if b.shutdownWanted || b.alloc.State == contract.StateShutdown {
		st := b.alloc.State
		b.mu.Unlock()
		return fmt.Errorf("ready in state %s: %w", st, contract.ErrBadState)
	}
	b.heartbeatAt = b.clk.Now() // as in local mode, /ready counts as a heartbeat
	if !b.readyWanted {
		b.readyWanted = true
		b.logger().Info("game server ready; telling agones")
		kick(b.readyKick)
	}
	b.mu.Unlock()
	return b.await(ctx, b.readyDone, "ready")
}

// Heartbeat records that the game is alive: health pings continue while heartbeats are fresh.
func (b *Backend) Heartbeat(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.alloc.State == contract.StateShutdown {
		return fmt.Errorf("heartbeat in state %s: %w", b.alloc.State, contract.ErrBadState)
	}
	b.heartbeatAt = b.clk.Now()
	return nil
}

// Shutdown ends the room: the allocation says Shutdown at once, and the SDK is told (and
// retried until it accepts). It answers once the SDK accepted it, so the game may exit then.
func (b *Backend) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.gs != nil && unhealthy(b.gs.Status.State) {
		st := b.gs.Status.State
		b.mu.Unlock()
		return fmt.Errorf("shutdown in state %s: %w", st, contract.ErrBadState)
	}
	if !b.shutdownWanted {
		b.shutdownWanted = true
		b.logger().Info("game server shutting down; telling agones", "room", b.alloc.Room)
		b.refreshLocked()
		kick(b.shutdownKick)
	}
	b.mu.Unlock()
	return b.await(ctx, b.shutdownDone, "shutdown")
}

// await waits until done is closed, ctx ends or the SDK timeout passes.
func (b *Backend) await(ctx context.Context, done <-chan struct{}, what string) error {
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the agones sdk: %w", what, ctx.Err())
	case <-b.clk.After(b.cfg.SDKTimeout):
		return fmt.Errorf("%s: the agones sdk has not accepted it yet (retrying): %w", what, context.DeadlineExceeded)
	}
}

// PlayerConnected takes the player's seat: the one reserved in the players list by Usher's
// allocation, or a free one (AddListValue). A full list is ErrRoomFull; a GameServer that is
// not Allocated (after waiting ConnectWait for the SDK to show the allocation) is ErrBadState.
func (b *Backend) PlayerConnected(ctx context.Context, player string) error {
	if err := b.waitAllocated(ctx, player); err != nil {
		return err
	}
	unlock, err := b.players.lock(ctx, player)
	if err != nil {
		return err
	}
	defer unlock()

	b.mu.Lock()
	room := b.alloc.Room
	switch {
	case b.alloc.State != contract.StateAllocated:
		st := b.alloc.State
		b.mu.Unlock()
		return fmt.Errorf("player %s connected in state %s: %w", player, st, contract.ErrBadState)
	case b.connected[player]:
		b.mu.Unlock()
		return nil
	case b.inListLocked(player) && b.removing[player].IsZero():
		// Reserved by the allocation (or kept for a lost player): the seat is the player's.
		b.connected[player] = true
		delete(b.adopted, player)
		delete(b.keptUntil, player)
		b.refreshLocked()
		b.mu.Unlock()
		b.logger().Info("player connected", "room", room, "player", player, "seat", "reserved")
		return nil
	}
	b.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, b.cfg.SDKTimeout)
	defer cancel()
	_, err = b.sdk.AddListValue(cctx, contract.PlayersList, player)
	switch {
	case err == nil, agsdk.IsAlreadyExists(err):
		// Taken now, or the SDK's projected list holds the player already (a reservation
		// the watch has not shown yet).
	case agsdk.IsOutOfRange(err):
		// The SDK checks capacity before duplicates: a full list may hold this very player.
		l, gerr := b.sdk.GetList(cctx, contract.PlayersList)
		if gerr != nil {
			return fmt.Errorf("player %s connected to room %s: list %s is full; reading it: %w",
				player, room, contract.PlayersList, gerr)
		}
		if !l.Contains(player) {
			b.logger().Info("player refused: room full", "room", room, "player", player, "capacity", int64(l.Capacity))
			return fmt.Errorf("player %s connected to room %s: %w", player, room, contract.ErrRoomFull)
		}
	default:
		return fmt.Errorf("player %s connected: add to list %s: %w", player, contract.PlayersList, err)
	}
	b.mu.Lock()
	b.connected[player] = true
	delete(b.removing, player)
	delete(b.adopted, player)
	delete(b.keptUntil, player)
	b.refreshLocked()
	b.mu.Unlock()
	b.logger().Info("player connected", "room", room, "player", player, "seat", "added")
	return nil
}

// waitAllocated returns nil once the allocation is Allocated, waiting up to ConnectWait
// for the SDK to show it, or ErrBadState.
func (b *Backend) waitAllocated(ctx context.Context, player string) error {
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		st, changed := b.alloc.State, b.changed
		b.mu.Unlock()
		switch {
		case st == contract.StateAllocated:
			return nil
		case st == contract.StateShutdown || b.cfg.ConnectWait <= 0:
			return fmt.Errorf("player %s connected in state %s: %w", player, st, contract.ErrBadState)
		case timeout == nil:
			timeout = b.clk.After(b.cfg.ConnectWait)
		}
		select {
		case <-changed:
		case <-timeout:
			return fmt.Errorf("player %s connected in state %s: %w", player, st, contract.ErrBadState)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// PlayerDisconnected frees the player's seat (RemoveListValue; a value already gone is
// fine), or, for a lost player (reason contract.ReasonLost), keeps it in the players list
// for ReconnectGrace: Usher sees the player seated and lets them back into the room, however
// full; the seat reconciliation frees it when the grace ends without them. Unknown players
// are ignored. If the SDK fails, the seat is left to the seat reconciliation, which retries
// at once.
func (b *Backend) PlayerDisconnected(ctx context.Context, player, reason string) error {
	unlock, err := b.players.lock(ctx, player)
	if err != nil {
		return err
	}
	defer unlock()

	b.mu.Lock()
	wasConnected, inList := b.connected[player], b.inListLocked(player)
	room := b.alloc.Room
	delete(b.connected, player)
	delete(b.adopted, player)
	if reason == contract.ReasonLost && b.cfg.ReconnectGrace > 0 && wasConnected && b.removing[player].IsZero() &&
		b.alloc.State == contract.StateAllocated {
		until := b.clk.Now().Add(b.cfg.ReconnectGrace)
		b.keptUntil[player] = until
		b.refreshLocked()
		b.mu.Unlock()
		b.logger().Info("player lost; seat kept", "room", room, "player", player, "grace", b.cfg.ReconnectGrace)
		return nil
	}
	delete(b.keptUntil, player)
	if (!wasConnected && !inList) || !b.removing[player].IsZero() {
		b.refreshLocked()
		b.mu.Unlock()
		return nil
	}
	now := b.clk.Now()
	b.removing[player] = now
	b.refreshLocked()
	b.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, b.cfg.SDKTimeout)
	defer cancel()
	_, err = b.sdk.RemoveListValue(cctx, contract.PlayersList, player)
	if err != nil && !agsdk.IsNotFound(err) {
		b.mu.Lock()
		delete(b.removing, player)
		if _, ok := b.seenAt[player]; ok {
			b.seenAt[player] = now.Add(-b.cfg.SeatTimeout) // due at the next seat check
		}
		b.refreshLocked()
		b.mu.Unlock()
		b.logger().Warn("player disconnected; freeing the seat failed, will retry", "room", room, "player", player, "err", err)
		return nil
	}
	b.logger().Info("player disconnected", "room", room, "player", player)
	return nil
}

// Allocation returns the current allocation and a channel closed at its next change.
func (b *Backend) Allocation(context.Context) (contract.Allocation, <-chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.alloc, b.changed, nil
}

// ---- the allocation ----

// bridgeState maps an Agones state onto the four of the bridge protocol.
func bridgeState(gs *agsdk.GameServer) string {
	if gs.ObjectMeta.DeletionTimestamp != 0 {
		return contract.StateShutdown // being deleted: it is going away whatever its state
	}
	switch gs.Status.State {
	case agsdk.StateReady, agsdk.StateReserved:
		return contract.StateReady
	case agsdk.StateAllocated:
		return contract.StateAllocated
	case agsdk.StateShutdown, agsdk.StateUnhealthy, agsdk.StateError:
		return contract.StateShutdown
	}
	return contract.StateStarting // PortAllocation, Creating, Starting, Scheduled, RequestReady
}

func unhealthy(state string) bool {
	return state == agsdk.StateUnhealthy || state == agsdk.StateError
}

func (b *Backend) inListLocked(player string) bool {
	if b.gs == nil {
		return false
	}
	return b.gs.Status.Lists[contract.PlayersList].Contains(player)
}

// buildLocked computes the allocation (without its version) from the watched GameServer and
// what the game reported.
func (b *Backend) buildLocked() contract.Allocation {
	a := contract.Allocation{State: contract.StateStarting, Game: b.cfg.Game, Players: []string{}, Connected: []string{}}
	if gs := b.gs; gs != nil {
		a.State = bridgeState(gs)
		labels := gs.ObjectMeta.Labels
		if g := labels[contract.LabelGame]; g != "" {
			a.Game = g
		}
		if a.State == contract.StateAllocated || a.State == contract.StateShutdown {
			a.Room = labels[contract.LabelRoom]
			a.Public = labels[contract.LabelPublic] == "true"
		}
		if l, ok := gs.Status.Lists[contract.PlayersList]; ok {
			a.MaxPlayers = int(l.Capacity)
			for _, v := range l.Values {
				if b.removing[v].IsZero() && !slices.Contains(a.Players, v) {
					a.Players = append(a.Players, v)
				}
			}
		}
	}
	if b.shutdownWanted {
		a.State = contract.StateShutdown
	}
	// Players the game reported whose seat the watch does not show yet (a pending add).
	var pending []string
	for p := range b.connected {
		if !slices.Contains(a.Players, p) {
			pending = append(pending, p)
		}
	}
	slices.Sort(pending)
	a.Players = append(a.Players, pending...)
	for _, p := range a.Players {
		if b.connected[p] {
			a.Connected = append(a.Connected, p)
		}
	}
	return a
}

// refreshLocked rebuilds the allocation; if it changed, its version grows and waiters wake.
func (b *Backend) refreshLocked() {
	a := b.buildLocked()
	old := b.alloc
	if a.State == old.State && a.Game == old.Game && a.Room == old.Room && a.Public == old.Public &&
		a.MaxPlayers == old.MaxPlayers && slices.Equal(a.Players, old.Players) && slices.Equal(a.Connected, old.Connected) {
		return
	}
	a.Version = old.Version + 1
	b.alloc = a
	close(b.changed)
	b.changed = make(chan struct{})
}

// onGameServer records a GameServer from the watch stream.
func (b *Backend) onGameServer(gs *agsdk.GameServer) {
	now := b.clk.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.gs == nil
	prev := b.alloc
	b.gs = gs
	if first {
		b.log.Store(b.logger().With("gameserver", gs.ObjectMeta.Name))
	}

	values := gs.Status.Lists[contract.PlayersList].Values
	for _, v := range values {
		if _, ok := b.seenAt[v]; !ok {
			b.seenAt[v] = now
			// Seats held when the bridge first sees an Allocated server it did not make Ready
			// itself were taken before it restarted: their players may be connected to the
			// game, so only a disconnect frees them.
			if first && bridgeState(gs) == contract.StateAllocated && !b.connected[v] && !closed(b.readyDone) {
				b.adopted[v] = true
			}
		}
	}
	for v := range b.seenAt {
		if !slices.Contains(values, v) {
			if !b.removing[v].IsZero() {
				b.logger().Debug("seat removal applied", "player", v)
			}
			delete(b.seenAt, v)
			delete(b.adopted, v)
			delete(b.keptUntil, v)
			delete(b.removing, v) // our removal (or someone's) went through
		}
	}
	if len(b.adopted) > 0 && first {
		b.logger().Warn("players list already holds seats: leaving them until their players disconnect",
			"room", gs.ObjectMeta.Labels[contract.LabelRoom], "players", len(b.adopted))
	}
	if p := gs.Spec.Health.PeriodSeconds; !b.warnedPeriod && !gs.Spec.Health.Disabled && p > 0 &&
		b.cfg.HealthInterval >= time.Duration(p)*time.Second {
		b.warnedPeriod = true
		b.logger().Warn("health interval is not below the GameServer's health periodSeconds: pings may miss a period",
			"health_interval", b.cfg.HealthInterval, "period_seconds", p)
	}

	b.refreshLocked()
	if b.alloc.State != prev.State || b.alloc.Room != prev.Room {
		b.logger().Info("gameserver changed", "state", gs.Status.State, "room", b.alloc.Room, "players", len(b.alloc.Players))
	}
	if gs.Status.State == agsdk.StateShutdown {
		b.terminalOnce.Do(func() { close(b.terminal) })
	}
}

// ---- loops ----

// Run runs the backend's loops until ctx ends: the GameServer watch, health pings, seat
// reconciliation, and the Ready and Shutdown calls.
func (b *Backend) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){b.watchLoop, b.healthLoop, b.seatLoop, b.readyLoop, b.shutdownLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
}

// watchLoop keeps a WatchGameServer stream open, reconnecting with backoff while the SDK
// sidecar is not up yet or drops the stream.
func (b *Backend) watchLoop(ctx context.Context) {
	backoff := b.cfg.RetryMin
	for attempt := 1; ctx.Err() == nil; attempt++ {
		got := false
		err := b.sdk.WatchGameServer(ctx, func(gs *agsdk.GameServer) {
			got = true
			b.onGameServer(gs)
		})
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff, attempt = b.cfg.RetryMin, 1
		}
		b.logger().Log(ctx, retryLevel(attempt), "agones sdk watch ended; reconnecting", "attempt", attempt, "err", err)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, b.cfg.RetryMax)
	}
}

// healthLoop sends an SDK health ping at start and every HealthInterval, but only while the
// game's heartbeats are fresh (or, before the first one, during the start grace): a hung game
// stops the pings, and Agones marks the GameServer Unhealthy.
func (b *Backend) healthLoop(ctx context.Context) {
	ticks, stop := b.clk.NewTicker(b.cfg.HealthInterval)
	defer stop()
	failures := 0
	b.healthPass(ctx, &failures)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		b.healthPass(ctx, &failures)
		b.tickDone()
	}
}

// healthPass decides and sends one ping. failures counts consecutive failed pings: the first
// ones are expected while the SDK sidecar starts, so only the third is a warning.
func (b *Backend) healthPass(ctx context.Context, failures *int) {
	now := b.clk.Now()
	b.mu.Lock()
	var fresh bool
	var age time.Duration
	if b.heartbeatAt.IsZero() {
		age = now.Sub(b.startedAt)
		fresh = age < b.cfg.StartGrace
	} else {
		age = now.Sub(b.heartbeatAt)
		fresh = age < b.cfg.HeartbeatTimeout
	}
	changed := fresh != b.pinging
	b.pinging = fresh
	first := b.heartbeatAt.IsZero()
	b.mu.Unlock()
	switch {
	case changed && fresh:
		b.logger().Info("health pings on")
	case changed && first:
		b.logger().Warn("health pings stopped: no heartbeat from the game within the start grace",
			"start_grace", b.cfg.StartGrace)
	case changed:
		b.logger().Warn("health pings stopped: the game's heartbeats stopped", "last_heartbeat_age", age)
	}
	if !fresh {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, min(b.cfg.SDKTimeout, b.cfg.HealthInterval))
	err := b.sdk.Health(cctx)
	cancel()
	switch {
	case err != nil && ctx.Err() == nil:
		*failures++
		level := slog.LevelDebug
		if *failures%30 == 3 {
			level = slog.LevelWarn
		}
		b.logger().Log(ctx, level, "agones sdk health ping failed", "failures", *failures, "err", err)
	case err == nil && *failures >= 3:
		b.logger().Info("agones sdk health pings recovered", "failures", *failures)
		fallthrough
	case err == nil:
		*failures = 0
	}
}

// seatLoop releases reserved seats whose players never connected.
func (b *Backend) seatLoop(ctx context.Context) {
	ticks, stop := b.clk.NewTicker(b.cfg.SeatCheckInterval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		b.releaseUnusedSeats(ctx)
		b.tickDone()
	}
}

// releaseUnusedSeats removes the list values that have been there SeatTimeout without their
// player connecting. Connected players and seats adopted at a restart are never removed
// here; a value this bridge is removing already is left alone until the watch shows it gone,
// or until SeatTimeout passes again (the value came back: a fresh reservation).
func (b *Backend) releaseUnusedSeats(ctx context.Context) {
	now := b.clk.Now()
	b.mu.Lock()
	if b.gs == nil || b.alloc.State == contract.StateShutdown {
		b.mu.Unlock()
		return
	}
	var due []string
	for v, at := range b.removing {
		if now.Sub(at) >= b.cfg.SeatTimeout {
			delete(b.removing, v)
			if _, listed := b.seenAt[v]; listed { // seenAt holds exactly the listed values
				b.seenAt[v] = now
			}
		}
	}
	for v, at := range b.seenAt {
		if !b.connected[v] && !b.adopted[v] && b.removing[v].IsZero() && now.Sub(at) >= b.cfg.SeatTimeout && !now.Before(b.keptUntil[v]) {
			due = append(due, v)
		}
	}
	b.refreshLocked()
	b.mu.Unlock()
	slices.Sort(due)
	for _, v := range due {
		b.releaseSeat(ctx, v)
	}
}

func (b *Backend) releaseSeat(ctx context.Context, player string) {
	unlock, err := b.players.lock(ctx, player)
	if err != nil {
		return
	}
	defer unlock()
	now := b.clk.Now()
	b.mu.Lock()
	at, ok := b.seenAt[player]
	if !ok || b.connected[player] || b.adopted[player] || !b.removing[player].IsZero() || now.Sub(at) < b.cfg.SeatTimeout ||
		now.Before(b.keptUntil[player]) {
		b.mu.Unlock() // connected or freed meanwhile
		return
	}
	room := b.alloc.Room
	_, wasKept := b.keptUntil[player]
	delete(b.keptUntil, player)
	b.removing[player] = now
	b.refreshLocked()
	b.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, b.cfg.SDKTimeout)
	_, err = b.sdk.RemoveListValue(cctx, contract.PlayersList, player)
	cancel()
	if err != nil && !agsdk.IsNotFound(err) {
		b.mu.Lock()
		delete(b.removing, player)
		b.refreshLocked()
		b.mu.Unlock()
		if ctx.Err() == nil {
			b.logger().Warn("releasing an unused seat failed; will retry", "room", room, "player", player, "err", err)
		}
		return
	}
	if wasKept {
		b.logger().Info("seat released: lost player did not come back", "room", room, "player", player,
			"reconnect_grace", b.cfg.ReconnectGrace)
		return
	}
	b.logger().Info("seat released: player did not connect", "room", room, "player", player,
		"seat_timeout", b.cfg.SeatTimeout)
}

// readyLoop tells the SDK Ready once the game asked for it, retrying with backoff (the SDK
// sidecar may start after the bridge).
func (b *Backend) readyLoop(ctx context.Context) {
	b.retryOnce(ctx, b.readyKick, b.readyDone, "ready", b.sdk.Ready, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.shutdownWanted // no Ready after the game said it is done
	})
}

// shutdownLoop tells the SDK Shutdown once the game asked for it, retrying with backoff.
func (b *Backend) shutdownLoop(ctx context.Context) {
	b.retryOnce(ctx, b.shutdownKick, b.shutdownDone, "shutdown", b.sdk.Shutdown, func() bool { return false })
}

// retryOnce waits for kick, then calls call until it succeeds (closing done), ctx ends or
// cancelled says to give up.
func (b *Backend) retryOnce(ctx context.Context, kick <-chan struct{}, done chan struct{}, what string,
	call func(context.Context) error, cancelled func() bool) {
	select {
	case <-ctx.Done():
		return
	case <-kick:
	}
	backoff := b.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		if cancelled() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, b.cfg.SDKTimeout)
		err := call(cctx)
		cancel()
		if err == nil {
			close(done)
			b.logger().Info("agones sdk accepted " + what)
			return
		}
		if ctx.Err() != nil {
			return
		}
		b.logger().Log(ctx, retryLevel(attempt), "agones sdk "+what+" failed; retrying", "attempt", attempt, "err", err)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, b.cfg.RetryMax)
	}
}

func (b *Backend) tickDone() {
	if b.afterTick != nil {
		b.afterTick()
	}
}

// retryLevel keeps retries quiet while the SDK sidecar is starting: debug at first, a
// warning every tenth attempt.
func retryLevel(attempt int) slog.Level {
	if attempt%10 == 0 {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// sleep waits d (real time: retry backoff, not a timeout that tests need to drive), or
// returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// keyedLock serialises work per key (per player), so a connect, a disconnect and a seat
// release of the same player never interleave their SDK calls.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	sem  chan struct{}
	refs int
}

func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{sem: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	select {
	case e.sem <- struct{}{}:
		return func() { <-e.sem; k.release(key, e) }, nil
	case <-ctx.Done():
		k.release(key, e)
		return nil, ctx.Err()
	}
}

func (k *keyedLock) release(key string, e *keyedEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(k.m, key)
	}
}
