package ticket

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ErrStoreFull is Issue's answer when MaxTickets live tickets are outstanding: the store is
// bounded so a flood of joins cannot exhaust memory.
var ErrStoreFull = errors.New("too many outstanding tickets")

// MemoryConfig bounds a MemoryStore. Zero fields take the documented defaults (SetDefaults).
type MemoryConfig struct {
	// TTL is how long a ticket stays redeemable. Default 15s; valid 1s..5m.
	TTL time.Duration
	// MaxPerPlayer caps one player's outstanding tickets; issuing one more evicts that
	// player's oldest. Default 4; valid 1..1000.
	MaxPerPlayer int
	// MaxTickets caps outstanding tickets in all. Default 100_000; valid 1..10_000_000.
	MaxTickets int
}

// SetDefaults fills the zero fields of c with their defaults.
func (c *MemoryConfig) SetDefaults() {
	if c.TTL == 0 {
		c.TTL = 15 * time.Second
	}
	if c.MaxPerPlayer == 0 {
		c.MaxPerPlayer = 4
	}
	if c.MaxTickets == 0 {
		c.MaxTickets = 100_000
	}
}

// Validate reports the first field of c that is out of range.
func (c MemoryConfig) Validate() error {
	switch {
	case c.TTL < time.Second || c.TTL > 5*time.Minute:
		return fmt.Errorf("ticket: ttl must be between 1s and 5m, got %s", c.TTL)
	case c.MaxPerPlayer < 1 || c.MaxPerPlayer > 1000:
		return fmt.Errorf("ticket: max per player must be between 1 and 1000, got %d", c.MaxPerPlayer)
	case c.MaxTickets < 1 || c.MaxTickets > 10_000_000:
		return fmt.Errorf("ticket: max tickets must be between 1 and 10000000, got %d", c.MaxTickets)
	}
	return nil
}

// MemoryStore keeps tickets in this process: right for one replica. All operations are O(1)
// (per-player work is bounded by MaxPerPlayer) under one mutex.
type MemoryStore struct {
	cfg MemoryConfig
	clk clock.Clock

	mu       sync.Mutex
	byID     map[[IDBytes]byte]*entry
	byPlayer map[string][]*entry // each player's tickets, oldest first
	// oldest and newest end a list of every entry ordered by expiry, so expired tickets are
	// swept from the front without scanning the map.
	oldest, newest *entry
}

var _ Store = (*MemoryStore)(nil)

// entry is one outstanding ticket.
type entry struct {
	raw        [IDBytes]byte // the id's bytes; the map key, kept to compare in constant time
	t          Ticket
	prev, next *entry // expiry order
}

// NewMemoryStore returns an empty store bounded by cfg (zero fields take their defaults).
// clk supplies the time for expiry and for Run's sweeps; nil means the real clock.
func NewMemoryStore(cfg MemoryConfig, clk clock.Clock) (*MemoryStore, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &MemoryStore{
		cfg:      cfg,
		clk:      clk,
		byID:     make(map[[IDBytes]byte]*entry),
		byPlayer: make(map[string][]*entry),
	}, nil
}

// Issue stores t under a new random id, valid for the configured TTL. If t.Player already has
// MaxPerPlayer tickets outstanding, the oldest of them is revoked. When MaxTickets live tickets
// are outstanding it returns ErrStoreFull.
func (s *MemoryStore) Issue(ctx context.Context, t Ticket) (string, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return "", time.Time{}, fmt.Errorf("issue ticket: %w", err)
	}
	if t.Player == "" {
		return "", time.Time{}, errors.New("issue ticket: no player")
	}
	id, raw := NewID()

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	s.sweepLocked(now)
	if mine := s.byPlayer[t.Player]; len(mine) >= s.cfg.MaxPerPlayer {
		s.removeLocked(mine[0])
	}
	if len(s.byID) >= s.cfg.MaxTickets {
		return "", time.Time{}, ErrStoreFull
	}
	if _, taken := s.byID[raw]; taken {
		// 2^-256: a broken random source, not bad luck. Refuse rather than overwrite.
		return "", time.Time{}, errors.New("issue ticket: id collision")
	}
	t.ExpiresAt = now.Add(s.cfg.TTL)
	e := &entry{raw: raw, t: t}
	s.byID[raw] = e
	s.byPlayer[t.Player] = append(s.byPlayer[t.Player], e)
	s.insertLocked(e)
	return id, t.ExpiresAt, nil
}

// Redeem removes and returns the ticket with that id. A malformed id is refused before the
// lock is taken; unknown, used and expired ids all get ErrInvalid.
func (s *MemoryStore) Redeem(ctx context.Context, id string) (Ticket, error) {
	if err := ctx.Err(); err != nil {
		return Ticket{}, fmt.Errorf("redeem ticket: %w", err)
	}
	raw, ok := DecodeID(id)
	if !ok {
		return Ticket{}, ErrInvalid
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[raw]
	// The map lookup already matched the whole 256-bit id; the constant-time comparison keeps
	// the promise that no byte-by-byte comparison of a secret happens anywhere.
	if e == nil || subtle.ConstantTimeCompare(e.raw[:], raw[:]) != 1 {
		return Ticket{}, ErrInvalid
	}
	s.removeLocked(e)
	if !s.clk.Now().Before(e.t.ExpiresAt) {
		return Ticket{}, ErrInvalid
	}
	return e.t, nil
}

// Len returns how many tickets the store holds, counting expired ones not yet swept.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// Run sweeps expired tickets every TTL/2 until ctx is done, so an idle store gives memory
// back. (Issue also sweeps, and Redeem never returns an expired ticket, sweeper or not.)
func (s *MemoryStore) Run(ctx context.Context) error {
	every := s.cfg.TTL / 2
	timer := s.clk.NewTimer(every) // clock.Clock has timers, not tickers
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C():
			s.mu.Lock()
			s.sweepLocked(s.clk.Now())
			s.mu.Unlock()
			timer.Reset(every)
		}
	}
}

// sweepLocked removes every ticket expired at now, oldest first.
func (s *MemoryStore) sweepLocked(now time.Time) {
	for s.oldest != nil && !now.Before(s.oldest.t.ExpiresAt) {
		s.removeLocked(s.oldest)
	}
}

// insertLocked links e into the expiry list. With one TTL and a clock that does not go back,
// e is always the newest; the walk only matters if the clock was set back.
func (s *MemoryStore) insertLocked(e *entry) {
	after := s.newest
	for after != nil && after.t.ExpiresAt.After(e.t.ExpiresAt) {
		after = after.prev
	}
	e.prev = after
	if after == nil {
		e.next, s.oldest = s.oldest, e
	} else {
		e.next, after.next = after.next, e
	}
	if e.next == nil {
		s.newest = e
	} else {
		e.next.prev = e
	}
}

// removeLocked forgets e everywhere.
func (s *MemoryStore) removeLocked(e *entry) {
	delete(s.byID, e.raw)

	if e.prev == nil {
		s.oldest = e.next
	} else {
		e.prev.next = e.next
	}
	if e.next == nil {
		s.newest = e.prev
	} else {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil

	mine := s.byPlayer[e.t.Player]
	if i := slices.Index(mine, e); i >= 0 {
		mine = slices.Delete(mine, i, i+1)
	}
	if len(mine) == 0 {
		delete(s.byPlayer, e.t.Player)
	} else {
		s.byPlayer[e.t.Player] = mine
	}
}
