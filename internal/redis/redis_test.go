package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/redis"
	"github.com/usher-gg/usher/internal/redis/redistest"
	"github.com/usher-gg/usher/internal/ticket"
	"github.com/usher-gg/usher/internal/ticket/tickettest"
)

// srv is one redis-server for the package's tests; each client gets a key prefix of its own,
// so tests never see each other's keys.
var srv *redistest.Server

func TestMain(m *testing.M) {
	s, stop, err := redistest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

func shared(t *testing.T) *redistest.Server {
	t.Helper()
	redistest.Binary(t) // not installed: fail in CI, skip elsewhere
	return srv
}

func client(t *testing.T) *redis.Client {
	t.Helper()
	s := shared(t)
	c, err := redis.Open(redis.Options{URL: s.URL(), Prefix: "test-" + randHex() + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestTicketStoreContract(t *testing.T) {
	tickettest.RunStoreContract(t, func(t *testing.T, clk *clocktesting.FakeClock, ttl time.Duration) ticket.Store {
		s, err := client(t).Tickets(redis.TicketConfig{TTL: ttl}, clk)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two stores on one Redis are two replicas: a ticket issued by one is redeemed by the other,
// once, however many redemptions race on both.
func TestTicketsAcrossReplicas(t *testing.T) {
	s := shared(t)
	prefix := "test-" + randHex() + ":"
	var stores []*redis.TicketStore
	for range 2 {
		c, err := redis.Open(redis.Options{URL: s.URL(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ts, err := c.Tickets(redis.TicketConfig{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, ts)
	}
	id, _, err := stores[0].Issue(t.Context(), ticket.Ticket{Player: "p1", Room: "K7QX"})
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			got, err := stores[i%2].Redeem(context.Background(), id)
			switch {
			case err == nil && got.Room == "K7QX":
				wins.Add(1)
			case err != nil && !errors.Is(err, ticket.ErrInvalid):
				t.Errorf("Redeem: %v", err)
			}
		})
	}
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Fatalf("%d of 50 redemptions on two replicas succeeded, want 1", got)
	}
}

func TestTicketsEvictOldestPerPlayer(t *testing.T) {
	ts, err := client(t).Tickets(redis.TicketConfig{MaxPerPlayer: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		id, _, err := ts.Issue(t.Context(), ticket.Ticket{Player: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := ts.Redeem(t.Context(), ids[0]); !errors.Is(err, ticket.ErrInvalid) {
		t.Errorf("oldest of 3 tickets with a cap of 2: Redeem = %v, want ErrInvalid", err)
	}
	for _, id := range ids[1:] {
		if _, err := ts.Redeem(t.Context(), id); err != nil {
			t.Errorf("newer ticket: %v", err)
		}
	}
}

func TestHolds(t *testing.T) {
	c := client(t)
	h := c.Holds(time.Minute)
	ctx := t.Context()
	if _, ok, err := h.Get(ctx, "p1"); ok || err != nil {
		t.Fatalf("Get of nobody = %v, %v", ok, err)
	}
	a := match.Hold{Game: "g", Room: "AAAA", Server: "s1"}
	b := match.Hold{Game: "g", Room: "BBBB", Server: "s2"}
	if prev, err := h.Move(ctx, "p1", a); err != nil || prev != (match.Hold{}) {
		t.Fatalf("first Move = %+v, %v", prev, err)
	}
	// Another replica sees the hold and moves it.
	h2 := c.Holds(time.Minute)
	if got, ok, err := h2.Get(ctx, "p1"); !ok || err != nil || got != a {
		t.Fatalf("Get on another replica = %+v %v %v, want %+v", got, ok, err, a)
	}
	if prev, err := h2.Move(ctx, "p1", b); err != nil || prev != a {
		t.Fatalf("second Move = %+v, %v, want %+v", prev, err, a)
	}
}

func TestCodesClaimOnce(t *testing.T) {
	c := client(t)
	replicas := []*redis.Codes{c.Codes(time.Minute), c.Codes(time.Minute)}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ok, err := replicas[i%2].Claim(context.Background(), "K7QX")
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 20 claims of one code won, want 1", wins.Load())
	}
}

func TestLimiterSlidingWindow(t *testing.T) {
	l := client(t).Limiter()
	l2 := l // a second replica is just another caller of the same keys
	const max = 5
	var refused int
	for i := range 8 {
		lim := l
		if i%2 == 1 {
			lim = l2
		}
		remaining, reset, err := lim.Hit(t.Context(), "ip:1", max, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if reset <= 0 || reset > time.Minute {
			t.Errorf("reset = %v, want within the window", reset)
		}
		if want := max - 1 - i; remaining != want {
			t.Errorf("hit %d: remaining %d, want %d", i+1, remaining, want)
		}
		if remaining < 0 {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d of 8 hits refused with a max of 5, want 3", refused)
	}
	// Other keys have their own count.
	if remaining, _, _ := l.Hit(t.Context(), "ip:2", max, time.Minute); remaining != max-1 {
		t.Errorf("another key: remaining %d, want %d", remaining, max-1)
	}
}

func TestLimiterConcurrentHitsAreCounted(t *testing.T) {
	l := client(t).Limiter()
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			remaining, _, err := l.Hit(context.Background(), "ip:1", 30, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if remaining >= 0 {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 30 {
		t.Fatalf("%d of 100 concurrent hits allowed with a max of 30, want exactly 30", got)
	}
}

func TestPassword(t *testing.T) {
	s := redistest.Start(t, redistest.WithPassword("s3cret"))
	for _, tt := range []struct {
		name    string
		url, pw string
		wantErr bool
	}{
		{name: "no password", url: s.URL(), wantErr: true},
		{name: "password in the URL", url: "redis://:s3cret@" + s.Addr},
		{name: "password apart", url: s.URL(), pw: "s3cret"},
		{name: "password apart wins", url: "redis://:wrong@" + s.Addr, pw: "s3cret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redis.Open(redis.Options{URL: tt.url, Password: tt.pw})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Ping(t.Context()); (err != nil) != tt.wantErr {
				t.Fatalf("Ping = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"redis://127.0.0.1:6379", true},
		{"rediss://user:pw@redis.example:6380/2", true},
		{"redis://127.0.0.1:6379/x", false},
		{"http://127.0.0.1:6379", false},
		{"unix:///tmp/redis.sock", false},
		{"127.0.0.1:6379", false},
	} {
		if err := redis.CheckURL(tt.url); (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}

// With Redis gone, every operation fails fast with ErrUnavailable, and nothing panics.
func TestUnavailable(t *testing.T) {
	s := redistest.Start(t)
	c, err := redis.Open(redis.Options{URL: s.URL(), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping while up: %v", err)
	}
	s.Stop()
	ts, _ := c.Tickets(redis.TicketConfig{}, nil)
	id, _ := ticket.NewID()
	ops := map[string]func() error{
		"ping":   func() error { return c.Ping(t.Context()) },
		"issue":  func() error { _, _, err := ts.Issue(t.Context(), ticket.Ticket{Player: "p"}); return err },
		"redeem": func() error { _, err := ts.Redeem(t.Context(), id); return err },
		"move": func() error {
			_, err := c.Holds(time.Minute).Move(t.Context(), "p", match.Hold{Room: "AAAA"})
			return err
		},
		"get":   func() error { _, _, err := c.Holds(time.Minute).Get(t.Context(), "p"); return err },
		"claim": func() error { _, err := c.Codes(time.Minute).Claim(t.Context(), "AAAA"); return err },
		"limit": func() error { _, _, err := c.Limiter().Hit(t.Context(), "k", 1, time.Minute); return err },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if !errors.Is(err, redis.ErrUnavailable) {
			t.Errorf("%s with Redis down = %v, want ErrUnavailable", name, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %v with Redis down", name, took)
		}
	}
}
