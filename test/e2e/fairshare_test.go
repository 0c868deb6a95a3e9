package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/config"
)

// clientFrom returns an HTTP client whose connections come from the loopback address ip
// (127.0.0.0/8 is all this machine's), so that Usher sees another client IP.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// createFrom asks for a new room with tk from client, returning the status and error code.
func (h *harness) createFrom(client *http.Client, tk tokenResp) (int, string, error) {
	o := h.joinVia(client, tk, `{"game":"example"}`)
	return o.status, o.code, o.err
}

// TestCreateRateLimit: room creation has its own per-IP budget (--create-rate); joins by
// code from the same IP, and creates from other IPs, are not affected by it.
func TestCreateRateLimit(t *testing.T) {
	h := startUsher(t, func(c *config.Config) {
		c.CreateRate = 3
		c.Games[0].Buffer, c.Games[0].MaxServers = 6, 8
		c.Games[0].Env["USHER_EXAMPLE_EMPTY_TIMEOUT"] = "5m"
	})
	local := clientFrom("127.0.0.1")
	var rooms []string
	for i := range 4 {
		tk := h.token(fmt.Sprintf("c%d", i))
		st, code, err := h.createFrom(local, tk)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i < 3 && st != 200:
			t.Fatalf("create %d: %d %s, want 200", i, st, code)
		case i == 3 && (st != 429 || code != "rate_limited"):
			t.Fatalf("create %d: %d %s, want 429 rate_limited", i, st, code)
		}
	}
	for _, r := range h.app.Local.Servers() {
		if r.Room != "" {
			rooms = append(rooms, r.Room)
		}
	}
	// A join by code from the same IP still goes through.
	if _, st, code := h.join(h.token("friend").Token, fmt.Sprintf(`{"game":"example","room":%q}`, rooms[0])); st != 200 {
		t.Errorf("join by code after the create limit: %d %s, want 200", st, code)
	}
	// Another IP creates as usual.
	if st, code, err := h.createFrom(clientFrom("127.0.0.2"), h.token("other")); err != nil || st != 200 {
		t.Errorf("create from another IP: %d %s %v, want 200", st, code, err)
	}
}

// TestOneIPCannotStarveOthers: with the default limits, one IP creating rooms non-stop
// takes at most its create budget, and other IPs' creates succeed meanwhile.
func TestOneIPCannotStarveOthers(t *testing.T) {
	h := startUsher(t, func(c *config.Config) {
		def := config.Default(config.ModeDev)
		c.TokenRate, c.JoinRate, c.CreateRate = def.TokenRate, def.JoinRate, def.CreateRate
		c.Games[0].Buffer, c.Games[0].MaxServers = 4, config.DefaultMaxServers
		c.Games[0].Env["USHER_EXAMPLE_EMPTY_TIMEOUT"] = "5m"
	})
	// Tokens first (the token limit is per IP too): the attacker's from 127.0.0.1, each
	// honest player's from an address of their own.
	attacker := clientFrom("127.0.0.1")
	var tokens []tokenResp
	for range 20 {
		tokens = append(tokens, h.token(""))
	}
	// The attacker makes a bounded number of create attempts, as fast as it can, while the
	// honest players create theirs.
	const attempts = 40
	var wg sync.WaitGroup
	created, limited := 0, 0
	wg.Go(func() {
		for i := range attempts {
			st, _, err := h.createFrom(attacker, tokens[i%len(tokens)])
			if err != nil {
				return
			}
			switch st {
			case 200:
				created++
			case 429:
				limited++
			}
		}
	})
	failures := 0
	for i := range 10 {
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		c := clientFrom(ip)
		tk := h.tokenFrom(c, "honest")
		if st, code, err := h.createFrom(c, tk); err != nil || st != 200 {
			t.Errorf("honest create from %s: %d %s %v", ip, st, code, err)
			failures++
		}
	}
	wg.Wait()
	def := config.Default(config.ModeDev)
	if created > def.CreateRate {
		t.Errorf("one IP created %d rooms within a minute, want at most --create-rate %d", created, def.CreateRate)
	}
	if limited < attempts-def.CreateRate {
		t.Errorf("the attacker was limited %d times of %d (%d created), want at least %d", limited, attempts, created, attempts-def.CreateRate)
	}
	t.Logf("attacker: %d rooms, %d refused; honest failures: %d", created, limited, failures)
}

// tokenFrom is token over client.
func (h *harness) tokenFrom(client *http.Client, name string) tokenResp {
	h.t.Helper()
	resp, err := client.Post(h.base+"/request_token", "application/json", strings.NewReader(fmt.Sprintf(`{"name":%q}`, name)))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResp
	if resp.StatusCode != 200 || jsonDecode(resp, &tr) != nil {
		h.t.Fatalf("request_token: %d", resp.StatusCode)
	}
	return tr
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// TestOneRoomPerPlayer: a player holds a seat in one room at most. Creating (or joining)
// another room gives up the first: in usher dev its reserved seat is free at once, and in
// both modes a ticket for it is refused at /connect while the new one works.
func TestOneRoomPerPlayer(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{
		func(tb testing.TB) backend { return devBackend(tb, 3) },
		func(tb testing.TB) backend { b, _ := serveBackend(tb, 3); return b },
	} {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) {
			h := b.h.with(t)
			tk := h.token("Ann").Token
			first := h.mustJoin(tk, `{"game":"example"}`)
			second := h.mustJoin(tk, `{"game":"example"}`)
			if first.Room == second.Room {
				t.Fatalf("both creates gave room %s", first.Room)
			}
			if b.name == "dev" {
				if n := b.seats()[first.Room]; n != 0 {
					t.Errorf("the room left holds %d seats, want 0", n)
				}
			}
			if c, st, code := h.dial(first.ConnectURL, ""); c != nil || st != 401 || code != "ticket_invalid" {
				if c != nil {
					c.Close()
				}
				t.Errorf("connect with the first room's ticket: %d %s, want 401 ticket_invalid", st, code)
			}
			c, st, code := h.dial(second.ConnectURL, "") // a native client: no Origin
			if c == nil {
				t.Fatalf("connect with the second room's ticket: %d %s", st, code)
			}
			c.Close()
			if b.name == "dev" {
				// Nobody ever came to the first room: it has ended (its server is free).
				if _, ok := b.seats()[first.Room]; ok {
					t.Errorf("room %s still live after its only player left it unused", first.Room)
				}
				return
			}
			// On Agones the room lives on: joining back by code moves the hold back.
			back := h.mustJoin(tk, fmt.Sprintf(`{"game":"example","room":%q}`, first.Room))
			if back.Room != first.Room {
				t.Errorf("joined %s, want %s", back.Room, first.Room)
			}
		})
	}
}

// TestMovingClosesTheOldSession: a player connected in one room who joins another gets
// their old session closed with 4003 "joined another room", and the room left frees the
// seat (its game server saw the player go).
func TestMovingClosesTheOldSession(t *testing.T) {
	b := devBackend(t, 3)
	h := b.h.with(t)
	tk := h.token("Ann").Token
	first := h.mustJoin(tk, `{"game":"example"}`)
	c := h.mustDial(first.ConnectURL)
	defer c.Close()
	readWelcome(t, c)
	h.mustJoin(tk, `{"game":"example"}`)
	if code := closeCode(t, c, 5*time.Second); code != 4003 {
		t.Errorf("old session closed with %d, want 4003", code)
	}
	eventually(t, 5*time.Second, func() error {
		if n := b.seats()[first.Room]; n != 0 {
			return fmt.Errorf("room left holds %d seats", n)
		}
		return nil
	})
}

// TestRoomHoppingHoldsOneServer: one token creating room after room, with no limit in the
// way, holds one room (one server) at a time: each room it leaves unused ends, and the
// fleet (four servers here) keeps serving it and everybody else.
func TestRoomHoppingHoldsOneServer(t *testing.T) {
	b := devBackend(t, 4)
	h := b.h.with(t)
	tk := h.token("hopper").Token
	var last joinResp
	for i := range 12 {
		jr, st, code := h.join(tk, `{"game":"example"}`)
		if st != 200 {
			t.Fatalf("create %d: %d %s", i, st, code)
		}
		last = jr
	}
	eventually(t, 10*time.Second, func() error {
		rooms := b.seats()
		if len(rooms) != 1 || rooms[last.Room] != 1 {
			return fmt.Errorf("live rooms %v, want only %s with its host", rooms, last.Room)
		}
		return nil
	})
	if _, st, code := h.join(h.token("other").Token, `{"game":"example"}`); st != 200 {
		t.Errorf("another player's create: %d %s", st, code)
	}
}
