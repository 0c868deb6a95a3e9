package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/usher-gg/usher/internal/match"
)

// Holds records the room each player holds in Redis, so that every replica agrees which
// room a player is in: Move is one SET ... GET.
type Holds struct {
	c   *Client
	ttl time.Duration
}

var _ match.Holds = (*Holds)(nil)

// Holds returns the holds on c; each is kept ttl after it was last moved (the token lifetime).
func (c *Client) Holds(ttl time.Duration) *Holds { return &Holds{c: c, ttl: ttl} }

// Move implements match.Holds.
func (h *Holds) Move(ctx context.Context, player string, to match.Hold) (match.Hold, error) {
	val, err := json.Marshal(to)
	if err != nil {
		return match.Hold{}, fmt.Errorf("move hold: %w", err)
	}
	prev, err := h.c.rdb.SetArgs(ctx, h.c.key("hold", player), val, goredis.SetArgs{Get: true, TTL: h.ttl}).Bytes()
	if errors.Is(err, goredis.Nil) {
		return match.Hold{}, nil
	}
	if err != nil {
		return match.Hold{}, unavailable("move hold", err)
	}
	return decodeHold(prev)
}

// Get implements match.Holds.
func (h *Holds) Get(ctx context.Context, player string) (match.Hold, bool, error) {
	val, err := h.c.rdb.Get(ctx, h.c.key("hold", player)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return match.Hold{}, false, nil
	}
	if err != nil {
		return match.Hold{}, false, unavailable("get hold", err)
	}
	hold, err := decodeHold(val)
	return hold, err == nil, err
}

func decodeHold(b []byte) (match.Hold, error) {
	var h match.Hold
	if err := json.Unmarshal(b, &h); err != nil {
		return match.Hold{}, fmt.Errorf("stored hold: %w", err)
	}
	return h, nil
}

// Codes claims room codes in Redis (SET NX), so that two replicas creating rooms at the same
// moment never pick the same code.
type Codes struct {
	c   *Client
	ttl time.Duration
}

var _ match.Codes = (*Codes)(nil)

// Codes returns the room-code claims on c; a claim lasts ttl (match.CodeClaimTTL).
func (c *Client) Codes(ttl time.Duration) *Codes { return &Codes{c: c, ttl: ttl} }

// Claim implements match.Codes.
func (cc *Codes) Claim(ctx context.Context, code string) (bool, error) {
	ok, err := cc.c.rdb.SetNX(ctx, cc.c.key("room-code", code), 1, cc.ttl).Result()
	if err != nil {
		return false, unavailable("claim room code", err)
	}
	return ok, nil
}
