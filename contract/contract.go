// Package contract is the game-server contract in one place: what Usher and a game server
// (Godot or any engine) agree on. It holds the environment variables a game server is started
// with, the query parameters and headers Usher's proxy dials it with, the labels and seat list
// Usher puts on Agones GameServers, and the bridge protocol: how a game server tells its bridge
// that it is ready, alive, who connected or left, and that it is done, and how it reads the
// allocation it was given (room code, game, expected players).
//
// The bridge protocol is small JSON over HTTP on localhost, so any engine can speak it (Godot's
// HTTPRequest does; godot/addons/usher mirrors these names). The bridge is served by Usher
// itself in local mode (one listener per game server process) and by the gdsdk-bridge sidecar
// beside each GameServer in Agones; both serve it through this package's http.Handler over a
// Backend, and game servers written in Go speak it with its Client. The public agones package,
// both fleets, the proxy, the example server and the sidecar import it, so it depends on
// nothing but the standard library. The full contract is in docs/game-servers.md.
package contract

import (
	"context"
	"errors"
)

// Environment variables a game server is started with.
const (
	// EnvPort is the TCP port the game server must accept WebSocket connections on.
	EnvPort = "USHER_PORT"
	// EnvHost is the address to bind (127.0.0.1 in local mode); empty means all interfaces.
	EnvHost = "USHER_HOST"
	// EnvBridgeURL is the bridge's base URL, e.g. http://127.0.0.1:9359 (no trailing slash).
	EnvBridgeURL = "USHER_BRIDGE_URL"
	// EnvGame is the game id the server was started for.
	EnvGame = "USHER_GAME"
	// EnvServer is the game server's name.
	EnvServer = "USHER_SERVER"
)

// Query parameters and headers Usher's proxy adds when it dials the game server for a player.
// Godot's WebSocket server can read the requested URL but not headers, so both are sent.
const (
	QueryPlayer  = "usher_player"
	QueryName    = "usher_name"
	QueryRoom    = "usher_room"
	HeaderPlayer = "X-Usher-Player"
	HeaderName   = "X-Usher-Name"
	HeaderRoom   = "X-Usher-Room"
)

// Paths of the protocol, relative to the bridge's base URL.
const (
	PathReady        = "/ready"
	PathHeartbeat    = "/heartbeat"
	PathConnected    = "/players/connected"
	PathDisconnected = "/players/disconnected"
	PathShutdown     = "/shutdown"
	PathAllocation   = "/allocation"
)

// States of a game server as the bridge reports them.
const (
	StateStarting  = "Starting"  // started, not ready yet
	StateReady     = "Ready"     // ready, waiting for a room
	StateAllocated = "Allocated" // hosting a room
	StateShutdown  = "Shutdown"  // told to stop, or stopping
)

// Allocation is what the game server knows of its assignment. Version grows with every change,
// so a game server can wait for the next one (GET /allocation?after=N&wait=30).
type Allocation struct {
	Version    uint64   `json:"version"`
	State      string   `json:"state"`
	Game       string   `json:"game"`
	Room       string   `json:"room,omitempty"`
	Public     bool     `json:"public"`
	MaxPlayers int      `json:"max_players"`
	Players    []string `json:"players"`   // players holding a seat (reserved or connected)
	Connected  []string `json:"connected"` // players the game server reported as connected
}

// PlayerRequest is the body of POST /players/connected and /players/disconnected.
type PlayerRequest struct {
	Player string `json:"player"`
	// Reason (disconnected only) says why the player's connection ended: ReasonLeft (the
	// default when empty) frees the seat at once, ReasonLost keeps it for the reconnect grace.
	Reason string `json:"reason,omitempty"`
}

// Reasons of POST /players/disconnected.
const (
	// ReasonLeft: the player left (closed their connection, or was closed for cause). The
	// seat is freed at once.
	ReasonLeft = "left"
	// ReasonLost: the player's connection broke (network loss, Usher restarting); they may
	// come back. The seat is kept for the reconnect grace (30 s by default), then freed.
	ReasonLost = "lost"
)

// Close codes Usher's proxy sends a game server when a player's session ends other than by the
// player's own close (which is forwarded as the player sent it, 1000 for a clean leave). They
// tell a player who may come back from one who left.
const (
	// CloseLost: the player's connection broke without a close (network loss, ping timeout,
	// a client that stopped reading). Report the player disconnected with ReasonLost.
	CloseLost = 4004
	// CloseServiceRestart (1012): Usher is draining; the player reconnects through another
	// replica. Report the player disconnected with ReasonLost.
	CloseServiceRestart = 1012
	// CloseMoved: the player joined another room (Usher sends the game server 1001 for this;
	// the player gets 4003). Report ReasonLeft.
	CloseMoved = 4003
	// CloseAbnormal (1006) is what WebSocket libraries report when a connection ends with no
	// close frame at all: Usher itself vanished. Report ReasonLost.
	CloseAbnormal = 1006
)

// DisconnectReason is the reason a game server reports for a player whose connection from
// Usher ended with close code code (CloseAbnormal when it ended without a close frame):
// ReasonLost for CloseLost, CloseServiceRestart and CloseAbnormal, ReasonLeft otherwise.
func DisconnectReason(code int) string {
	switch code {
	case CloseLost, CloseServiceRestart, CloseAbnormal:
		return ReasonLost
	}
	return ReasonLeft
}

// ErrorBody is the body of every error answer: {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a machine-readable code and a human message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Errors a Backend returns for expected outcomes; the handler maps them to statuses.
var (
	// ErrRoomFull: a player connected who holds no seat, and no seat is free (409 room_full).
	// The game server should close that player's connection.
	ErrRoomFull = errors.New("no free seat for this player")
	// ErrBadState: the call makes no sense in the server's current state (409 bad_state),
	// e.g. a player connecting to a server that is not allocated.
	ErrBadState = errors.New("not allowed in this state")
)

// Backend is what serves the protocol: the local fleet in Usher, or the Agones SDK in the
// gdsdk-bridge sidecar.
type Backend interface {
	// Ready says the game server accepts players. It is idempotent.
	Ready(ctx context.Context) error
	// Heartbeat says the game server is alive. A server whose heartbeats stop is replaced.
	Heartbeat(ctx context.Context) error
	// PlayerConnected says a player's WebSocket reached the game server: the seat it held
	// is now taken. A player holding no seat gets one if one is free, else ErrRoomFull.
	PlayerConnected(ctx context.Context, player string) error
	// PlayerDisconnected says a player's connection ended, for reason (ReasonLeft or
	// ReasonLost). A player who left frees their seat at once; a lost player's seat is kept,
	// reserved, for the reconnect grace, so they can join the room again even if it is full
	// (a seat kept this way counts as taken). Unknown players are ignored.
	PlayerDisconnected(ctx context.Context, player, reason string) error
	// Shutdown says the game server is done: its room ends and it will exit.
	Shutdown(ctx context.Context) error
	// Allocation returns the current allocation and a channel that is closed at the next change.
	Allocation(ctx context.Context) (Allocation, <-chan struct{}, error)
}

// Labels and the seat list Usher uses on Agones GameServers. Usher's Agones backend sets the
// labels through GameServerAllocation metadata patches; the gdsdk-bridge sidecar reads them
// from the SDK's GameServer to fill in the Allocation it serves.
const (
	// LabelRoom carries the room code of an Allocated GameServer.
	LabelRoom = "usher.dev/room"
	// LabelPublic is "true" on rooms open to quick match, "false" otherwise.
	LabelPublic = "usher.dev/public"
	// LabelGame is the Usher game id of the GameServer (also set on the Fleet template).
	LabelGame = "usher.dev/game"
	// PlayersList is the Agones List whose values are the players holding seats; its capacity
	// is the game's max players.
	PlayersList = "players"
)
