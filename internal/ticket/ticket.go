// Package ticket issues and redeems single-use connection tickets.
//
// A ticket is what /join hands a player and /connect takes back: an opaque, unguessable id
// (at least 128 bits from crypto/rand) that names a player and the game server a seat was
// reserved on. It lives a few seconds and can be redeemed once, even under concurrent
// redemption.
package ticket

import (
	"context"
	"errors"
	"time"
)

// ErrInvalid is the one answer for a ticket that is missing, malformed, unknown, expired or
// already used: callers must not be able to tell these apart.
var ErrInvalid = errors.New("ticket invalid")

// Ticket is what a ticket id stands for.
type Ticket struct {
	Player    string // player id (the JWT subject)
	Name      string // player display name
	Game      string // game id
	Room      string // room code
	Server    string // game server name
	Addr      string // game server host:port
	ExpiresAt time.Time
}

// Store keeps outstanding tickets. Implementations: MemoryStore (one replica) and
// internal/redis's TicketStore (any number of replicas sharing one Redis).
type Store interface {
	// Issue stores t under a new random id and returns the id and the expiry it set.
	Issue(ctx context.Context, t Ticket) (id string, expiresAt time.Time, err error)
	// Redeem removes and returns the ticket with that id. Exactly one of any number of
	// concurrent calls with one id succeeds; the others, like any unknown, expired or
	// malformed id, get ErrInvalid.
	Redeem(ctx context.Context, id string) (Ticket, error)
}
