package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"k8s.io/utils/clock"

	"github.com/usher-gg/usher/internal/ticket"
)

// TicketConfig bounds a TicketStore. Zero fields take ticket.MemoryConfig's defaults.
type TicketConfig struct {
	TTL          time.Duration // how long a ticket stays redeemable (default 15s)
	MaxPerPlayer int           // a player's outstanding tickets; one more evicts the oldest (default 4)
}

// TicketStore keeps tickets in Redis, so a ticket issued by one replica is redeemed at any
// other, exactly once: Redeem is one GETDEL. Redis holds only a SHA-256 of each ticket id, so
// whoever reads Redis's memory or a dump cannot redeem anything. Keys expire by Redis's clock
// a second after the ticket does (a backstop); validity is judged by the store's clock.
type TicketStore struct {
	c   *Client
	cfg TicketConfig
	clk clock.PassiveClock
}

var _ ticket.Store = (*TicketStore)(nil)

// Tickets returns the ticket store on c. A nil clk is the real clock.
func (c *Client) Tickets(cfg TicketConfig, clk clock.PassiveClock) (*TicketStore, error) {
	mc := ticket.MemoryConfig{TTL: cfg.TTL, MaxPerPlayer: cfg.MaxPerPlayer}
	mc.SetDefaults()
	if err := mc.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &TicketStore{c: c, cfg: TicketConfig{TTL: mc.TTL, MaxPerPlayer: mc.MaxPerPlayer}, clk: clk}, nil
}

// issueScript stores a ticket under a fresh key (refusing to overwrite one) and appends the key
// to its player's list, evicting the player's oldest tickets past the cap, in one step.
// KEYS[1] ticket key, KEYS[2] the player's list; ARGV[1] value, ARGV[2] ttl in ms, ARGV[3] cap.
var issueScript = goredis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return redis.error_reply('ticket id collision')
end
redis.call('RPUSH', KEYS[2], KEYS[1])
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) do
  redis.call('DEL', redis.call('LPOP', KEYS[2]))
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// Issue stores t under a new random id, valid for the configured TTL. If t.Player already has
// MaxPerPlayer tickets outstanding, the oldest is revoked.
func (s *TicketStore) Issue(ctx context.Context, t ticket.Ticket) (string, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return "", time.Time{}, fmt.Errorf("issue ticket: %w", err)
	}
	if t.Player == "" {
		return "", time.Time{}, errors.New("issue ticket: no player")
	}
	id, raw := ticket.NewID()
	t.ExpiresAt = s.clk.Now().Add(s.cfg.TTL)
	val, err := json.Marshal(t)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue ticket: %w", err)
	}
	// The key outlives the ticket by a second: expiry is the store clock's call.
	ttl := (s.cfg.TTL + time.Second).Milliseconds()
	keys := []string{s.ticketKey(raw), s.c.key("tickets", t.Player)}
	if err := issueScript.Run(ctx, s.c.rdb, keys, val, ttl, s.cfg.MaxPerPlayer).Err(); err != nil {
		return "", time.Time{}, unavailable("issue ticket", err)
	}
	return id, t.ExpiresAt, nil
}

// Redeem removes and returns the ticket with that id (GETDEL: of any number of concurrent
// calls on any replicas, one gets it). Malformed ids are refused without a round trip; unknown,
// used and expired ids all get ticket.ErrInvalid.
func (s *TicketStore) Redeem(ctx context.Context, id string) (ticket.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return ticket.Ticket{}, fmt.Errorf("redeem ticket: %w", err)
	}
	raw, ok := ticket.DecodeID(id)
	if !ok {
		return ticket.Ticket{}, ticket.ErrInvalid
	}
	val, err := s.c.rdb.GetDel(ctx, s.ticketKey(raw)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return ticket.Ticket{}, ticket.ErrInvalid
	}
	if err != nil {
		return ticket.Ticket{}, unavailable("redeem ticket", err)
	}
	var t ticket.Ticket
	if err := json.Unmarshal(val, &t); err != nil {
		return ticket.Ticket{}, fmt.Errorf("redeem ticket: stored value: %w", err)
	}
	if !s.clk.Now().Before(t.ExpiresAt) {
		return ticket.Ticket{}, ticket.ErrInvalid
	}
	return t, nil
}

// ticketKey is the key of a ticket: a hash of its id, never the id itself.
func (s *TicketStore) ticketKey(raw [ticket.IDBytes]byte) string {
	sum := sha256.Sum256(raw[:])
	return s.c.key("ticket", hex.EncodeToString(sum[:]))
}
