// Package match is Usher's matchmaking: it turns a player's join request (create a room, join
// one by code, or quick match) into a reserved seat on a game server and a connection ticket.
// Game servers and seats belong to a Fleet backend; tickets to a ticket.Store.
package match

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/usher-gg/usher/internal/metrics"
	"github.com/usher-gg/usher/internal/ticket"
)

// ErrInvalidRoomCode is returned for a room code that is not 4 or 5 letters and digits.
var ErrInvalidRoomCode = errors.New("room code must be 4 or 5 letters or digits")

// Game is a game players can join, as the catalog declares it.
type Game struct {
	ID          string
	Name        string
	Description string
	MaxPlayers  int
	WebClient   string // the game's browser client, for the portal ("" if none)
}

// GameInfo is a game with its live figures, for GET /games.
type GameInfo struct {
	Game
	Rooms   int
	Players int
}

// Mode is how a join finds its room.
type Mode string

// The three ways to join.
const (
	ModeCreate Mode = "create"
	ModeCode   Mode = "code"
	ModeQuick  Mode = "quick"
)

// JoinRequest is a validated join from an authenticated player.
type JoinRequest struct {
	Game   string
	Room   string // join by code when set
	Quick  bool   // quick match when set
	Public bool   // for create: list the room for quick match
	Player string
	Name   string
}

// Mode tells which of the three joins r is.
func (r JoinRequest) Mode() Mode {
	switch {
	case r.Room != "":
		return ModeCode
	case r.Quick:
		return ModeQuick
	default:
		return ModeCreate
	}
}

// JoinResult is what a successful join gives the player.
type JoinResult struct {
	Room       string
	Ticket     string
	ExpiresAt  time.Time
	Game       string
	MaxPlayers int
	Public     bool
}

// Service runs joins against a Fleet and a ticket Store.
type Service struct {
	fleet   Fleet
	tickets ticket.Store
	games   map[string]Game
	order   []string
	m       *metrics.Metrics
	log     *slog.Logger
	// retry bounds how long a join waits for a free game server or seat (the
	// --allocation-wait) and paces its tries; its clock is the service's clock.
	retry Retry
	holds Holds
	codes Codes
	// moved, when set, is told of a player who left a room for another (see OnMove).
	moved func(player string, from Hold)
}

// OnMove sets fn to be called when a player who held a seat in room from joins another
// room: the app closes their live session there (internal/proxy). Set it before serving.
func (s *Service) OnMove(fn func(player string, from Hold)) { s.moved = fn }

// Shared is the state a Service keeps beside its fleet and tickets: in memory for one
// replica, in Redis for several.
type Shared struct {
	// Holds records the room each player holds (nil: in memory, for an hour).
	Holds Holds
	// Codes claims the codes of new rooms (nil: in memory, for CodeClaimTTL).
	Codes Codes
}

// NewService returns a Service for the given games. retry is the allocation retry
// policy (NewRetry(--allocation-wait, clk)); the fleet should use the same one.
func NewService(games []Game, fleet Fleet, tickets ticket.Store, shared Shared, retry Retry, m *metrics.Metrics, log *slog.Logger) *Service {
	if retry.Clock == nil {
		retry.Clock = NewRetry(0, nil).Clock
	}
	if retry.Backoff.Duration == 0 {
		retry.Backoff = DefaultBackoff()
	}
	if shared.Holds == nil {
		shared.Holds = NewMemoryHolds(time.Hour, retry.Clock)
	}
	if shared.Codes == nil {
		shared.Codes = NewMemoryCodes(CodeClaimTTL, retry.Clock)
	}
	s := &Service{fleet: fleet, tickets: tickets, games: map[string]Game{}, m: m, log: log, retry: retry,
		holds: shared.Holds, codes: shared.Codes}
	for _, g := range games {
		s.games[g.ID] = g
		s.order = append(s.order, g.ID)
	}
	return s
}

// Game returns the game with that id.
func (s *Service) Game(id string) (Game, bool) {
	g, ok := s.games[id]
	return g, ok
}

// Join finds or creates the room, reserves the player's seat and issues a ticket for it.
func (s *Service) Join(ctx context.Context, req JoinRequest) (res JoinResult, err error) {
	mode := req.Mode()
	defer func() {
		if _, known := s.games[req.Game]; known {
			s.m.Joins.WithLabelValues(req.Game, string(mode), resultLabel(err)).Inc()
		}
	}()
	g, ok := s.games[req.Game]
	if !ok {
		return res, fmt.Errorf("game %q: %w", req.Game, ErrUnknownGame)
	}
	var srv Server
	start := s.retry.Clock.Now()
	// Every retry below, the fleet's included, ends by the same deadline.
	ctx, _ = s.retry.Start(ctx)
	switch mode {
	case ModeCode:
		code, cerr := NormalizeCode(req.Room)
		if cerr != nil {
			return res, cerr
		}
		srv, err = s.fleet.Join(ctx, g.ID, code, req.Player)
	case ModeQuick:
		srv, err = s.quick(ctx, g.ID, req.Player)
	default:
		srv, err = s.create(ctx, g.ID, req.Public, req.Player)
	}
	s.m.AllocationSeconds.WithLabelValues(g.ID, resultLabel(err)).Observe(s.retry.Clock.Since(start).Seconds())
	if err != nil {
		return res, err
	}
	if err := s.move(ctx, g.ID, srv, req.Player); err != nil {
		return res, err
	}
	id, exp, err := s.tickets.Issue(ctx, ticket.Ticket{
		Player: req.Player, Name: req.Name, Game: g.ID, Room: srv.Room, Server: srv.Name, Addr: srv.Addr,
	})
	if err != nil {
		return res, fmt.Errorf("issue ticket: %w", err)
	}
	s.m.TicketsIssued.Inc()
	s.log.LogAttrs(ctx, slog.LevelInfo, "joined", slog.String("game", g.ID), slog.String("room", srv.Room),
		slog.String("player", req.Player), slog.String("gameserver", srv.Name), slog.String("mode", string(mode)))
	return JoinResult{Room: srv.Room, Ticket: id, ExpiresAt: exp, Game: g.ID, MaxPlayers: g.MaxPlayers, Public: srv.Public}, nil
}

// move makes srv's room the one player holds, releasing the seat of the room they held
// before, if another: a player holds a seat in one room at most.
func (s *Service) move(ctx context.Context, game string, srv Server, player string) error {
	prev, err := s.holds.Move(ctx, player, Hold{Game: game, Room: srv.Room, Server: srv.Name})
	if err != nil {
		return fmt.Errorf("record the room player %s holds: %w", player, err)
	}
	if prev.Room == "" || (prev.Room == srv.Room && prev.Game == game) {
		return nil
	}
	if s.moved != nil {
		s.moved(player, prev)
	}
	if err := s.fleet.Release(ctx, prev.Game, prev.Room, player); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "release of the room left failed", slog.String("game", prev.Game),
			slog.String("room", prev.Room), slog.String("player", player), slog.Any("err", err))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "player left a room for another", slog.String("player", player),
		slog.String("from_room", prev.Room), slog.String("room", srv.Room), slog.String("game", game))
	return nil
}

// Holds reports the room player holds, if any: a ticket for another room is stale.
func (s *Service) Holds(ctx context.Context, player string) (Hold, bool, error) {
	return s.holds.Get(ctx, player)
}

// create allocates a new room under a fresh code, trying again (the retry policy) while
// no game server is free.
func (s *Service) create(ctx context.Context, game string, public bool, player string) (srv Server, err error) {
	err = s.retry.Do(ctx, func(ctx context.Context) error {
		srv, err = s.createOnce(ctx, game, public, player)
		return retryable(err)
	})
	return srv, err
}

// quick seats player in an open public room, or creates one, trying both again (the
// retry policy) while no game server is free: a room made meanwhile by another
// quick-matcher may have a seat.
func (s *Service) quick(ctx context.Context, game, player string) (srv Server, err error) {
	err = s.retry.Do(ctx, func(ctx context.Context) error {
		srv, err = s.fleet.QuickJoin(ctx, game, player)
		if errors.Is(err, ErrRoomNotFound) {
			srv, err = s.createOnce(ctx, game, true, player)
		}
		return retryable(err)
	})
	return srv, err
}

// retryable marks ErrNoCapacity for Retry.Do.
func retryable(err error) error {
	if errors.Is(err, ErrNoCapacity) && !errors.Is(err, ErrRetry) {
		return fmt.Errorf("%w: %w", ErrRetry, err)
	}
	return err
}

func (s *Service) createOnce(ctx context.Context, game string, public bool, player string) (Server, error) {
	for i := 0; i < 16; i++ {
		length := 4
		if i >= 8 { // the 4-letter space is crowded: use 5 letters
			length = 5
		}
		code := NewCode(length)
		// Claim the code first: another replica may be creating a room under it right now.
		claimed, err := s.codes.Claim(ctx, code)
		if err != nil {
			return Server{}, fmt.Errorf("claim room code: %w", err)
		}
		if !claimed {
			continue
		}
		srv, err := s.fleet.Create(ctx, game, code, public, player)
		if !errors.Is(err, ErrRoomExists) {
			return srv, err
		}
	}
	return Server{}, fmt.Errorf("no free room code after 16 tries: %w", ErrNoCapacity)
}

// Games lists the catalog in its order with live room and player counts.
func (s *Service) Games(ctx context.Context) ([]GameInfo, error) {
	rooms, err := s.fleet.Rooms(ctx, "")
	if err != nil {
		return nil, err
	}
	byGame := map[string]*GameInfo{}
	out := make([]GameInfo, len(s.order))
	for i, id := range s.order {
		out[i] = GameInfo{Game: s.games[id]}
		byGame[id] = &out[i]
	}
	for _, r := range rooms {
		if gi := byGame[r.Game]; gi != nil {
			gi.Rooms++
			gi.Players += r.Connected
		}
	}
	return out, nil
}

// CodeAlphabet is the room code alphabet: capitals and digits without the look-alikes 0 O 1 I L.
const CodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// NewCode returns a random room code of n characters from CodeAlphabet.
func NewCode(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(CodeAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		b[i] = CodeAlphabet[v.Int64()]
	}
	return string(b)
}

// NormalizeCode upper-cases and trims a room code typed by a player. Any 4 or 5 letters and
// digits are accepted (a code with a look-alike simply names no room).
func NormalizeCode(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) < 4 || len(s) > 5 {
		return "", ErrInvalidRoomCode
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return "", ErrInvalidRoomCode
		}
	}
	return s, nil
}

// resultLabel turns an error into a bounded metric label.
func resultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnknownGame):
		return "unknown_game"
	case errors.Is(err, ErrRoomNotFound):
		return "room_not_found"
	case errors.Is(err, ErrRoomFull):
		return "room_full"
	case errors.Is(err, ErrNoCapacity):
		return "no_capacity"
	case errors.Is(err, ErrInvalidRoomCode):
		return "invalid_request"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		return "error"
	}
}
