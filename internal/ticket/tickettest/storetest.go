// Package tickettest holds the behaviour every ticket.Store must have, as a test suite any
// implementation runs against itself.
package tickettest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/usher-gg/usher/internal/ticket"
)

// contractTTL is the ticket lifetime the suite asks for.
const contractTTL = 10 * time.Second

// start is the fake clock's first reading in every subtest.
var start = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// RunStoreContract runs the Store contract against stores from newStore, which must return an
// empty store whose tickets live ttl, whose notion of now is clk (expiry is judged by clk, even
// if a backend also expires keys by its own clock as a backstop), and which allows at least 4
// outstanding tickets per player and 1,000 in all. newStore is called once per subtest and
// should register any cleanup with t.
func RunStoreContract(t *testing.T, newStore func(t *testing.T, clk *clocktesting.FakeClock, ttl time.Duration) ticket.Store) {
	t.Helper()
	setup := func(t *testing.T) (ticket.Store, *clocktesting.FakeClock) {
		t.Helper()
		clk := clocktesting.NewFakeClock(start)
		return newStore(t, clk, contractTTL), clk
	}

	t.Run("RoundTrip", func(t *testing.T) {
		s, _ := setup(t)
		in := sampleTicket("p_alice")
		id, exp, err := s.Issue(t.Context(), in)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		if want := start.Add(contractTTL); !exp.Equal(want) {
			t.Errorf("Issue expiresAt = %v, want now + ttl = %v", exp, want)
		}
		got, err := s.Redeem(t.Context(), id)
		if err != nil {
			t.Fatalf("Redeem: %v", err)
		}
		want := in
		want.ExpiresAt = exp
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Redeem mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("IssueSetsExpiryItself", func(t *testing.T) {
		s, _ := setup(t)
		in := sampleTicket("p_alice")
		in.ExpiresAt = start.Add(24 * time.Hour) // a caller cannot extend a ticket's life
		id, exp, err := s.Issue(t.Context(), in)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		got := mustRedeem(t, s, id)
		if want := start.Add(contractTTL); !exp.Equal(want) || !got.ExpiresAt.Equal(want) {
			t.Errorf("expiry = %v (returned), %v (stored); want %v", exp, got.ExpiresAt, want)
		}
	})

	t.Run("IDsAreUniqueAndWellFormed", func(t *testing.T) {
		s, _ := setup(t)
		seen := make(map[string]bool)
		for i := range 1000 {
			id := mustIssue(t, s, sampleTicket(fmt.Sprintf("p_%d", i)))
			if len(id) != 43 {
				t.Fatalf("id %q has %d characters, want 43", id, len(id))
			}
			raw, err := base64.RawURLEncoding.Strict().DecodeString(id)
			if err != nil || len(raw) != 32 {
				t.Fatalf("id %q is not 32 bytes of unpadded base64url (err %v)", id, err)
			}
			if seen[id] {
				t.Fatalf("id %q issued twice", id)
			}
			seen[id] = true
		}
	})

	t.Run("SecondRedeemFails", func(t *testing.T) {
		s, _ := setup(t)
		id := mustIssue(t, s, sampleTicket("p_alice"))
		mustRedeem(t, s, id)
		if got, err := s.Redeem(t.Context(), id); !errors.Is(err, ticket.ErrInvalid) {
			t.Fatalf("second Redeem = %+v, %v; want ErrInvalid", got, err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		tests := []struct {
			name    string
			after   time.Duration
			wantErr error
		}{
			{name: "just before expiry", after: contractTTL - time.Millisecond},
			{name: "at expiry", after: contractTTL, wantErr: ticket.ErrInvalid},
			{name: "long after expiry", after: time.Hour, wantErr: ticket.ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s, clk := setup(t)
				id := mustIssue(t, s, sampleTicket("p_alice"))
				clk.Step(tt.after)
				got, err := s.Redeem(t.Context(), id)
				if tt.wantErr == nil && err != nil {
					t.Fatalf("Redeem %v after issue: %v, want success", tt.after, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Redeem %v after issue = %+v, %v; want %v", tt.after, got, err, tt.wantErr)
				}
			})
		}
	})

	t.Run("ExpiredTicketStaysDead", func(t *testing.T) {
		s, clk := setup(t)
		id := mustIssue(t, s, sampleTicket("p_alice"))
		clk.Step(contractTTL)
		if _, err := s.Redeem(t.Context(), id); !errors.Is(err, ticket.ErrInvalid) {
			t.Fatalf("Redeem after expiry: %v, want ErrInvalid", err)
		}
		clk.SetTime(start) // even if the clock is set back
		if got, err := s.Redeem(t.Context(), id); !errors.Is(err, ticket.ErrInvalid) {
			t.Fatalf("Redeem of an expired ticket after the clock went back = %+v, %v; want ErrInvalid", got, err)
		}
	})

	t.Run("FailuresAreIndistinguishable", func(t *testing.T) {
		s, clk := setup(t)
		used := mustIssue(t, s, sampleTicket("p_alice"))
		mustRedeem(t, s, used)
		expired := mustIssue(t, s, sampleTicket("p_bob"))
		clk.Step(contractTTL)
		unknown := base64.RawURLEncoding.EncodeToString(make([]byte, 32))

		ids := map[string]string{"used": used, "expired": expired, "unknown": unknown, "malformed": "nope"}
		var first error
		for _, kind := range []string{"used", "expired", "unknown", "malformed"} {
			_, err := s.Redeem(t.Context(), ids[kind])
			if !errors.Is(err, ticket.ErrInvalid) {
				t.Fatalf("Redeem(%s) = %v, want ErrInvalid", kind, err)
			}
			if first == nil {
				first = err
			} else if err.Error() != first.Error() {
				t.Errorf("Redeem(%s) error %q differs from %q: callers could tell them apart", kind, err, first)
			}
		}
	})

	t.Run("MalformedIDs", func(t *testing.T) {
		s, _ := setup(t)
		id := mustIssue(t, s, sampleTicket("p_alice"))
		tests := []struct {
			name, id string
		}{
			{name: "empty", id: ""},
			{name: "short", id: id[:42]},
			{name: "long", id: id + "A"},
			{name: "padded", id: id + "="},
			{name: "huge", id: strings.Repeat(id, 1000)},
			{name: "spaces around", id: " " + id[1:42] + " "},
			{name: "standard alphabet", id: "+" + id[1:42] + "/"},
			{name: "not base64", id: "!" + id[1:]},
			{name: "NUL", id: "\x00" + id[1:]},
			{name: "non-ASCII", id: "é" + id[2:]},
			{name: "non-canonical spelling of a live id", id: id[:42] + nonCanonical(id[42])},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got, err := s.Redeem(t.Context(), tt.id); !errors.Is(err, ticket.ErrInvalid) {
					t.Errorf("Redeem(%.50q) = %+v, %v; want ErrInvalid", tt.id, got, err)
				}
			})
		}
		// None of that consumed or damaged the real ticket.
		mustRedeem(t, s, id)
	})

	t.Run("ConcurrentRedeemSucceedsOnce", func(t *testing.T) {
		s, _ := setup(t)
		id := mustIssue(t, s, sampleTicket("p_alice"))
		const n = 100
		var (
			wg        sync.WaitGroup
			ready     sync.WaitGroup
			startLine = make(chan struct{})
			results   = make(chan error, n)
		)
		ready.Add(n)
		for range n {
			wg.Go(func() {
				ready.Done()
				<-startLine // everyone redeems at once
				_, err := s.Redeem(context.Background(), id)
				results <- err
			})
		}
		ready.Wait()
		close(startLine)
		wg.Wait()
		close(results)
		var wins int
		for err := range results {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ticket.ErrInvalid):
				t.Errorf("concurrent Redeem error %v, want ErrInvalid", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1", wins, n)
		}
	})

	t.Run("TicketsAreIndependent", func(t *testing.T) {
		s, _ := setup(t)
		a := sampleTicket("p_alice")
		b := sampleTicket("p_alice")
		b.Server, b.Addr = "gs-2", "10.0.0.2:7777"
		c := sampleTicket("p_bob")
		ida, idb, idc := mustIssue(t, s, a), mustIssue(t, s, b), mustIssue(t, s, c)
		for _, tt := range []struct {
			id   string
			want ticket.Ticket
		}{{idb, b}, {idc, c}, {ida, a}} {
			got := mustRedeem(t, s, tt.id)
			if got.Player != tt.want.Player || got.Server != tt.want.Server || got.Addr != tt.want.Addr {
				t.Errorf("Redeem got player %s server %s addr %s, want %s %s %s", got.Player, got.Server, got.Addr, tt.want.Player, tt.want.Server, tt.want.Addr)
			}
		}
	})

	t.Run("IssueRequiresPlayer", func(t *testing.T) {
		s, _ := setup(t)
		if id, _, err := s.Issue(t.Context(), sampleTicket("")); err == nil {
			t.Fatalf("Issue(no player) = %q, nil; want an error: a ticket is bound to a player", id)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s, _ := setup(t)
		id := mustIssue(t, s, sampleTicket("p_alice"))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if id, _, err := s.Issue(ctx, sampleTicket("p_bob")); err == nil {
			t.Errorf("Issue(cancelled ctx) = %q, nil; want an error", id)
		}
		if _, err := s.Redeem(ctx, id); err == nil {
			t.Errorf("Redeem(cancelled ctx) succeeded, want an error")
		}
		mustRedeem(t, s, id) // the failed attempt did not consume it
	})
}

// sampleTicket returns a ticket for player with every field set.
func sampleTicket(player string) ticket.Ticket {
	return ticket.Ticket{Player: player, Name: "Player " + player, Game: "treasure-takedown", Room: "K7QX", Server: "gs-1", Addr: "10.0.0.1:7777"}
}

// mustIssue issues t or fails the test.
func mustIssue(tb testing.TB, s ticket.Store, t ticket.Ticket) string {
	tb.Helper()
	id, _, err := s.Issue(context.Background(), t)
	if err != nil {
		tb.Fatalf("Issue(%s): %v", t.Player, err)
	}
	return id
}

// mustRedeem redeems id or fails the test.
func mustRedeem(tb testing.TB, s ticket.Store, id string) ticket.Ticket {
	tb.Helper()
	got, err := s.Redeem(context.Background(), id)
	if err != nil {
		tb.Fatalf("Redeem: %v", err)
	}
	return got
}

// nonCanonical returns another spelling of the last character of a 43-character id: the same
// top 4 bits (so a lenient decoder reads the same 32 bytes) with a non-zero unused bit.
func nonCanonical(last byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, last)
	return string(alphabet[i^1])
}
