package match

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Hold is the room a player holds a seat in: a player holds at most one. Joining another
// room moves the hold; the seat in the room left is released (Fleet.Release) and a
// ticket for it is refused at /connect.
type Hold struct {
	Game, Room, Server string
}

// Holds records each player's hold. The memory implementation serves one replica; a
// shared one (Redis) lets replicas agree.
type Holds interface {
	// Move records h as player's hold and returns the previous one (zero if none).
	Move(ctx context.Context, player string, h Hold) (Hold, error)
	// Get returns player's hold, if any.
	Get(ctx context.Context, player string) (Hold, bool, error)
}

// MemoryHolds keeps holds in memory, each for ttl after it was last moved (a hold
// outlives any seat: set ttl to the token lifetime).
type MemoryHolds struct {
	ttl time.Duration
	clk clock.PassiveClock

	mu    sync.Mutex
	holds map[string]memoryHold
	ops   int
}

type memoryHold struct {
	Hold
	until time.Time
}

var _ Holds = (*MemoryHolds)(nil)

// NewMemoryHolds returns an empty MemoryHolds. A nil clk is the real clock.
func NewMemoryHolds(ttl time.Duration, clk clock.PassiveClock) *MemoryHolds {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &MemoryHolds{ttl: ttl, clk: clk, holds: map[string]memoryHold{}}
}

// Move implements Holds.
func (m *MemoryHolds) Move(_ context.Context, player string, h Hold) (Hold, error) {
	now := m.clk.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.holds[player]
	if !ok || now.After(prev.until) {
		prev = memoryHold{}
	}
	m.holds[player] = memoryHold{Hold: h, until: now.Add(m.ttl)}
	// Forget expired holds now and then: a sweep every len(holds) moves costs O(1) each.
	if m.ops++; m.ops >= max(len(m.holds), 1024) {
		m.ops = 0
		for p, x := range m.holds {
			if now.After(x.until) {
				delete(m.holds, p)
			}
		}
	}
	return prev.Hold, nil
}

// Get implements Holds.
func (m *MemoryHolds) Get(_ context.Context, player string) (Hold, bool, error) {
	now := m.clk.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[player]
	if !ok || now.After(h.until) {
		return Hold{}, false, nil
	}
	return h.Hold, true, nil
}

// CodeClaimTTL is how long a room code stays claimed. A claim only has to cover the moment
// from picking a code to every replica seeing the room (the fleet refuses a code it knows is
// live): minutes are plenty, and codes come back into use afterwards.
const CodeClaimTTL = 10 * time.Minute

// Codes claims room codes before a room is created under them, so that no two rooms get the
// same code even when two replicas create at the same moment. The memory implementation
// serves one replica; a shared one (Redis) lets replicas agree.
type Codes interface {
	// Claim claims code, reporting false if it is already claimed.
	Claim(ctx context.Context, code string) (bool, error)
}

// MemoryCodes claims codes in memory, each for ttl.
type MemoryCodes struct {
	ttl time.Duration
	clk clock.PassiveClock

	mu     sync.Mutex
	claims map[string]time.Time // code → claimed until
	ops    int
}

var _ Codes = (*MemoryCodes)(nil)

// NewMemoryCodes returns an empty MemoryCodes. A nil clk is the real clock.
func NewMemoryCodes(ttl time.Duration, clk clock.PassiveClock) *MemoryCodes {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &MemoryCodes{ttl: ttl, clk: clk, claims: map[string]time.Time{}}
}

// Claim implements Codes.
func (m *MemoryCodes) Claim(_ context.Context, code string) (bool, error) {
	now := m.clk.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.claims[code]; ok && now.Before(until) {
		return false, nil
	}
	m.claims[code] = now.Add(m.ttl)
	if m.ops++; m.ops >= max(len(m.claims), 1024) { // forget expired claims, O(1) per claim
		m.ops = 0
		for c, until := range m.claims {
			if !now.Before(until) {
				delete(m.claims, c)
			}
		}
	}
	return true, nil
}
