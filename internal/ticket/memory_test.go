package ticket

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

var start = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// newMemoryStore returns a store over cfg reading time from clk.
func newMemoryStore(tb testing.TB, cfg MemoryConfig, clk *clocktesting.FakeClock) *MemoryStore {
	tb.Helper()
	s, err := NewMemoryStore(cfg, clk)
	if err != nil {
		tb.Fatalf("NewMemoryStore: %v", err)
	}
	return s
}

// issue issues a ticket for player or fails the test.
func issue(tb testing.TB, s *MemoryStore, player string) string {
	tb.Helper()
	id, _, err := s.Issue(context.Background(), Ticket{Player: player, Server: "gs-1"})
	if err != nil {
		tb.Fatalf("Issue(%s): %v", player, err)
	}
	return id
}

func TestMemoryStorePerPlayerCapEvictsOldest(t *testing.T) {
	clk := clocktesting.NewFakeClock(start)
	s := newMemoryStore(t, MemoryConfig{MaxPerPlayer: 2}, clk)
	a1 := issue(t, s, "p_alice")
	clk.Step(time.Second)
	a2 := issue(t, s, "p_alice")
	b1 := issue(t, s, "p_bob")
	clk.Step(time.Second)
	a3 := issue(t, s, "p_alice") // alice is at the cap: a1 goes

	if got, want := s.Len(), 3; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
	tests := []struct {
		name    string
		id      string
		wantErr error
	}{
		{name: "oldest of the player's tickets was evicted", id: a1, wantErr: ErrInvalid},
		{name: "newer ticket of the player kept", id: a2},
		{name: "newest ticket of the player kept", id: a3},
		{name: "other player's ticket untouched", id: b1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Redeem(t.Context(), tt.id)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Redeem = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestMemoryStoreMaxTickets(t *testing.T) {
	clk := clocktesting.NewFakeClock(start)
	s := newMemoryStore(t, MemoryConfig{TTL: 10 * time.Second, MaxTickets: 3}, clk)
	a := issue(t, s, "p_a")
	issue(t, s, "p_b")
	issue(t, s, "p_c")

	if _, _, err := s.Issue(t.Context(), Ticket{Player: "p_d"}); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("Issue into a full store = %v, want ErrStoreFull", err)
	}
	if got := s.Len(); got != 3 {
		t.Fatalf("Len after refused Issue = %d, want 3", got)
	}

	// Redeeming frees a place.
	if _, err := s.Redeem(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	issue(t, s, "p_d")

	// Expired tickets do not count: Issue sweeps them first, no sweeper needed.
	clk.Step(10 * time.Second)
	issue(t, s, "p_e")
	if got := s.Len(); got != 1 {
		t.Errorf("Len after expiry and one Issue = %d, want 1", got)
	}
}

func TestMemoryStoreFullStoreStillReplacesPlayersOwnTicket(t *testing.T) {
	s := newMemoryStore(t, MemoryConfig{MaxPerPlayer: 1, MaxTickets: 2}, clocktesting.NewFakeClock(start))
	old := issue(t, s, "p_alice")
	issue(t, s, "p_bob")
	renewed := issue(t, s, "p_alice") // full, but alice's new ticket replaces her old one

	if _, err := s.Redeem(t.Context(), old); !errors.Is(err, ErrInvalid) {
		t.Errorf("Redeem(replaced ticket) = %v, want ErrInvalid", err)
	}
	if _, err := s.Redeem(t.Context(), renewed); err != nil {
		t.Errorf("Redeem(new ticket) = %v, want success", err)
	}
}

func TestMemoryStoreRunSweepsExpired(t *testing.T) {
	// The bubble lets synctest.Wait tell when Run has armed its timer and finished a sweep, so
	// the test advances only the fake clock and never sleeps.
	synctest.Test(t, func(t *testing.T) {
		clk := clocktesting.NewFakeClock(start)
		s := newMemoryStore(t, MemoryConfig{TTL: 10 * time.Second}, clk)
		for i := range 3 {
			issue(t, s, fmt.Sprintf("p_%d", i)) // expire at start+10s
		}
		clk.Step(4 * time.Second)
		issue(t, s, "p_late") // expires at start+14s

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait() // Run is waiting for its first sweep, due at start+4s+5s

		steps := []struct {
			step    time.Duration
			wantLen int
		}{
			{step: 4 * time.Second, wantLen: 4}, // start+8s: no sweep due yet
			{step: 2 * time.Second, wantLen: 1}, // start+10s: sweep; the first three expired
			{step: 5 * time.Second, wantLen: 0}, // start+15s: sweep; the last one expired
		}
		for _, st := range steps {
			clk.Step(st.step)
			synctest.Wait()
			if got := s.Len(); got != st.wantLen {
				t.Fatalf("Len at start+%s = %d, want %d", clk.Since(start), got, st.wantLen)
			}
		}

		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	})
}

func TestMemoryStoreClockSetBack(t *testing.T) {
	clk := clocktesting.NewFakeClock(start)
	s := newMemoryStore(t, MemoryConfig{TTL: 10 * time.Second}, clk)
	issue(t, s, "p_a") // expires start+10s
	clk.SetTime(start.Add(-5 * time.Second))
	early := issue(t, s, "p_b") // expires start+5s: must sweep before p_a's
	clk.SetTime(start.Add(6 * time.Second))
	issue(t, s, "p_c") // sweeps p_b only

	if got := s.Len(); got != 2 {
		t.Errorf("Len = %d, want 2 (the ticket issued while the clock was behind is swept on time)", got)
	}
	if _, err := s.Redeem(t.Context(), early); !errors.Is(err, ErrInvalid) {
		t.Errorf("Redeem(expired) = %v, want ErrInvalid", err)
	}
}

func TestMemoryStoreForgetsEverything(t *testing.T) {
	tests := []struct {
		name   string
		finish func(t *testing.T, s *MemoryStore, clk *clocktesting.FakeClock, ids []string)
	}{
		{name: "all redeemed", finish: func(t *testing.T, s *MemoryStore, clk *clocktesting.FakeClock, ids []string) {
			for _, id := range ids {
				if _, err := s.Redeem(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "all evicted by newer tickets, then redeemed", finish: func(t *testing.T, s *MemoryStore, clk *clocktesting.FakeClock, ids []string) {
			var fresh []string
			for i := range 50 {
				fresh = append(fresh, issue(t, s, fmt.Sprintf("p_%d", i)), issue(t, s, fmt.Sprintf("p_%d", i)))
			}
			for _, id := range fresh {
				if _, err := s.Redeem(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "all expired and swept by Issue", finish: func(t *testing.T, s *MemoryStore, clk *clocktesting.FakeClock, ids []string) {
			clk.Step(time.Minute)
			id := issue(t, s, "p_last")
			if _, err := s.Redeem(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(start)
			s := newMemoryStore(t, MemoryConfig{MaxPerPlayer: 2}, clk)
			var ids []string
			for i := range 50 {
				ids = append(ids, issue(t, s, fmt.Sprintf("p_%d", i)), issue(t, s, fmt.Sprintf("p_%d", i)))
			}
			tt.finish(t, s, clk, ids)
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.byID) != 0 || len(s.byPlayer) != 0 || s.oldest != nil || s.newest != nil {
				t.Errorf("store still holds %d ids, %d players, list ends %p %p; want nothing", len(s.byID), len(s.byPlayer), s.oldest, s.newest)
			}
		})
	}
}

func TestMemoryConfig(t *testing.T) {
	var got MemoryConfig
	got.SetDefaults()
	want := MemoryConfig{TTL: 15 * time.Second, MaxPerPlayer: 4, MaxTickets: 100_000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SetDefaults mismatch (-want +got):\n%s", diff)
	}

	tests := []struct {
		name string
		cfg  MemoryConfig
	}{
		{name: "ttl below 1s", cfg: MemoryConfig{TTL: 999 * time.Millisecond}},
		{name: "ttl above 5m", cfg: MemoryConfig{TTL: 5*time.Minute + time.Second}},
		{name: "negative ttl", cfg: MemoryConfig{TTL: -time.Second}},
		{name: "negative per player", cfg: MemoryConfig{MaxPerPlayer: -1}},
		{name: "huge per player", cfg: MemoryConfig{MaxPerPlayer: 1001}},
		{name: "negative max tickets", cfg: MemoryConfig{MaxTickets: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewMemoryStore(tt.cfg, clocktesting.NewFakeClock(start)); err == nil {
				t.Errorf("NewMemoryStore(%+v) = nil error, want one", tt.cfg)
			}
		})
	}
	for _, cfg := range []MemoryConfig{{TTL: time.Second}, {TTL: 5 * time.Minute}, {MaxPerPlayer: 1, MaxTickets: 1}} {
		if _, err := NewMemoryStore(cfg, nil); err != nil {
			t.Errorf("NewMemoryStore(%+v) = %v, want it accepted", cfg, err)
		}
	}
}

func BenchmarkMemoryStoreIssue(b *testing.B) {
	s := newMemoryStore(b, MemoryConfig{}, clocktesting.NewFakeClock(start))
	players := make([]string, 10_000) // 4 each at most: 40,000 live tickets, under MaxTickets
	for i := range players {
		players[i] = fmt.Sprintf("p_%d", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := s.Issue(ctx, Ticket{Player: players[i%len(players)], Server: "gs-1"}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMemoryStoreRedeem(b *testing.B) {
	s := newMemoryStore(b, MemoryConfig{MaxPerPlayer: 1000}, clocktesting.NewFakeClock(start))
	ctx := context.Background()
	ids := make([]string, 0, 1000)
	refill := func() {
		ids = ids[:0]
		for i := range cap(ids) {
			ids = append(ids, issue(b, s, fmt.Sprintf("p_%d", i%100)))
		}
	}
	refill()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(ids) {
			b.StopTimer()
			refill()
			i = 0
			b.StartTimer()
		}
		if _, err := s.Redeem(ctx, ids[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMemoryStoreRedeemUnknown(b *testing.B) {
	s := newMemoryStore(b, MemoryConfig{}, clocktesting.NewFakeClock(start))
	for i := range 10_000 {
		issue(b, s, fmt.Sprintf("p_%d", i))
	}
	unknown, _ := NewID()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Redeem(ctx, unknown); !errors.Is(err, ErrInvalid) {
			b.Fatal(err)
		}
	}
}
