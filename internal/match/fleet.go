package match

import (
	"context"
	"errors"
	"time"
)

// Expected outcomes of matchmaking. The HTTP layer maps each to a status and a stable code
// (internal/httpapi/errors.go); backends return them (wrapped or not) and callers test with errors.Is.
var (
	ErrUnknownGame  = errors.New("unknown game")
	ErrRoomNotFound = errors.New("room not found")
	ErrRoomFull     = errors.New("room is full")
	ErrNoCapacity   = errors.New("no game server available")
	// ErrRoomExists is returned by Fleet.Create when the room code is already live; the
	// service then retries with another code. It never reaches a player.
	ErrRoomExists = errors.New("room code already in use")
)

// Fleet is a backend that owns game servers and their seats: the local fleet (processes on
// this machine, internal/fleet/local) or Agones (a Kubernetes cluster).
//
// Every method that returns a Server has reserved a seat for player in it, atomically: a room
// never holds more than MaxPlayers seats, however many joins race. A player who already
// holds a seat in the room gets the same server back without taking a second seat.
// Seats are released by the backend when the player disconnects from the game server, or
// when a reserved seat is not taken (the player never connects) within the seat timeout.
type Fleet interface {
	// Create allocates a ready server of game for a new room with the given code, marks the
	// room public or private, and reserves a seat for player.
	// Errors: ErrUnknownGame, ErrNoCapacity, ErrRoomExists.
	Create(ctx context.Context, game, room string, public bool, player string) (Server, error)
	// Join reserves a seat for player in the live room with that code.
	// Errors: ErrUnknownGame, ErrRoomNotFound, ErrRoomFull.
	Join(ctx context.Context, game, room, player string) (Server, error)
	// QuickJoin reserves a seat for player in a live public room of game with a free seat,
	// preferring the fullest. Errors: ErrUnknownGame, ErrRoomNotFound (no such room).
	QuickJoin(ctx context.Context, game, player string) (Server, error)
	// Rooms lists the live rooms of game (all games when game is "").
	Rooms(ctx context.Context, game string) ([]Room, error)
	// Release gives up player's reserved seat in room (a player holds one room: they
	// joined another). A seat the player has taken (connected) is left to the game
	// server, which reports the disconnect. A backend that cannot release seats itself
	// returns nil: the seat is released when its ticket goes unused.
	Release(ctx context.Context, game, room, player string) error
}

// Server is a game server that holds a seat for a player, as returned by a Fleet.
type Server struct {
	Name       string // unique name of the game server (a process in local mode, a GameServer in Agones)
	Game       string // game id
	Room       string // room code
	Addr       string // host:port where the game server accepts WebSockets; only Usher dials it
	Public     bool
	MaxPlayers int
}

// Room describes a live room for listings (/games, the admin page).
type Room struct {
	Code       string
	Game       string
	Server     string
	Public     bool
	MaxPlayers int
	Seats      int // seats held: reserved or connected
	Connected  int // players connected to the game server
	CreatedAt  time.Time
}
