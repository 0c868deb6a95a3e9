package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
)

// Concurrent joins, in usher dev and in usher serve against a fake Agones that serves
// allocations in batches the way Agones does (agones/agonestest). Two friends typing the
// same code at the same moment is the normal case for a party game.

// joinOutcome is one player's answer to POST /join.
type joinOutcome struct {
	player  string
	status  int
	code    string // error code, "" on 200
	room    string
	latency time.Duration
	err     error // transport or decoding trouble
}

// joinAll sends one POST /join with body per token, all at once, and returns the answers
// in token order. It is safe to call from a test goroutine only (no Fatal inside).
func (h *harness) joinAll(tokens []tokenResp, body string) []joinOutcome {
	out := make([]joinOutcome, len(tokens))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, tk := range tokens {
		wg.Go(func() {
			<-start
			out[i] = h.rawJoin(tk, body)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// rawJoin is join without test failures, timing the request.
func (h *harness) rawJoin(tk tokenResp, body string) joinOutcome {
	return h.joinVia(http.DefaultClient, tk, body)
}

// joinVia is rawJoin over client.
func (h *harness) joinVia(client *http.Client, tk tokenResp, body string) joinOutcome {
	o := joinOutcome{player: tk.PlayerID}
	req, err := http.NewRequest("POST", h.base+"/join", strings.NewReader(body))
	if err != nil {
		o.err = err
		return o
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tk.Token)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		o.err = err
		return o
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	o.latency, o.status = time.Since(t0), resp.StatusCode
	if resp.StatusCode == 200 {
		var jr joinResp
		o.err = json.Unmarshal(b, &jr)
		o.room = jr.Room
		return o
	}
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		o.err = fmt.Errorf("%d with a body that is not an error object: %q", resp.StatusCode, b)
	}
	o.code = e.Error.Code
	return o
}

func (h *harness) tokens(n int) []tokenResp {
	h.t.Helper()
	out := make([]tokenResp, n)
	for i := range out {
		out[i] = h.token(fmt.Sprintf("p%d", i))
	}
	return out
}

// tally counts outcomes by "200" or error code, failing on transport errors.
func tally(tb testing.TB, outs []joinOutcome) map[string]int {
	tb.Helper()
	n := map[string]int{}
	for _, o := range outs {
		if o.err != nil {
			tb.Fatalf("player %s: %v", o.player, o.err)
		}
		if o.status == 200 {
			n["200"]++
		} else {
			n[fmt.Sprintf("%d %s", o.status, o.code)]++
		}
	}
	return n
}

// latencies returns the p50 and p99 of the outcomes' latencies.
func latencies(outs []joinOutcome) (p50, p99 time.Duration) {
	ls := make([]time.Duration, len(outs))
	for i, o := range outs {
		ls[i] = o.latency
	}
	slices.Sort(ls)
	at := func(q float64) time.Duration { return ls[min(len(ls)-1, int(q*float64(len(ls))))] }
	return at(0.50), at(0.99)
}

// ---- the two backends, each with a view of its rooms' seats ----

type backend struct {
	name  string
	h     *harness
	seats func() map[string]int // live room code → seats held
}

// devBackend runs usher dev with servers example servers of 4 seats, all warm, and no more.
func devBackend(tb testing.TB, servers int) backend {
	h := startUsher(tb, func(c *config.Config) {
		c.Games[0].Buffer, c.Games[0].MaxServers = servers, servers
		// Nobody connects in these tests: rooms must not end (and free their servers) as
		// empty while they run.
		c.Games[0].Env["USHER_EXAMPLE_EMPTY_TIMEOUT"] = "5m"
		c.AllocationWait = 3 * time.Second
	})
	eventually(tb, 30*time.Second, func() error {
		ready := 0
		for _, s := range h.app.Local.Servers() {
			if s.State == "Ready" {
				ready++
			}
		}
		if ready < servers {
			return fmt.Errorf("%d of %d servers ready", ready, servers)
		}
		return nil
	})
	return backend{name: "dev", h: h, seats: func() map[string]int {
		m := map[string]int{}
		for _, s := range h.app.Local.Servers() {
			if s.Room != "" && s.State == "Allocated" {
				m[s.Room] = s.Seats
			}
		}
		return m
	}}
}

// serveBackend runs usher serve against a fake Agones holding servers Ready GameServers
// with 4 seats (a players List of capacity 4), batching allocations every 500 ms as
// Agones does by default.
func serveBackend(tb testing.TB, servers int) (backend, *agonestest.Server) {
	fake := agonestest.NewServer(tb)
	echo := startEcho(tb)
	for i := range servers {
		gs := agonestest.GameServer("usher-games", "example", fmt.Sprintf("example-x7k2p-%05d", i), "ws", 4)
		gs.Status.Address = "127.0.0.1"
		gs.Status.Ports = []agones.GameServerStatusPort{{Name: "ws", Port: echo.port()}}
		fake.Add(gs)
	}
	k, _ := auth.GenerateKey()
	keyPEM, _ := auth.MarshalKey(k)
	h := startServe(tb, fake, keyPEM)
	return backend{name: "serve", h: h, seats: func() map[string]int {
		m := map[string]int{}
		for _, gs := range fake.GameServers() {
			if room := gs.Labels["usher.dev/room"]; room != "" && gs.Status.State == agones.GameServerStateAllocated {
				m[room] = len(gs.Status.Lists["players"].Values)
			}
		}
		return m
	}}, fake
}

// TestConcurrentJoinsToOneRoom: twelve players typing the same code of a fresh room of 4
// (host seated) at the same moment: exactly three get in, nine hear room_full.
func TestConcurrentJoinsToOneRoom(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{
		func(tb testing.TB) backend { return devBackend(tb, 2) },
		func(tb testing.TB) backend { b, _ := serveBackend(tb, 2); return b },
	} {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) {
			h := b.h.with(t)
			host := h.mustJoin(h.token("host").Token, `{"game":"example"}`)
			outs := h.joinAll(h.tokens(12), fmt.Sprintf(`{"game":"example","room":%q}`, host.Room))
			got := tally(t, outs)
			if want := map[string]int{"200": 3, "409 room_full": 9}; !maps.Equal(got, want) {
				t.Errorf("answers %v, want %v", got, want)
			}
			for _, o := range outs {
				if o.status == 200 && o.room != host.Room {
					t.Errorf("player %s joined %s, want %s", o.player, o.room, host.Room)
				}
			}
			if seats := b.seats()[host.Room]; seats != 4 {
				t.Errorf("room %s holds %d seats, want 4", host.Room, seats)
			}
			p50, p99 := latencies(outs)
			t.Logf("%s: 12 joiners into one room: p50 %v, p99 %v", b.name, p50, p99)
		})
	}
}

// TestConcurrentQuickMatch: fifty quick-matchers on a fleet of five servers of four seats
// fill exactly twenty seats, no room over-filled; the others hear no_capacity.
func TestConcurrentQuickMatch(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{
		func(tb testing.TB) backend { return devBackend(tb, 5) },
		func(tb testing.TB) backend { b, _ := serveBackend(tb, 5); return b },
	} {
		b := mk(t)
		t.Run(b.name, func(t *testing.T) {
			h := b.h.with(t)
			outs := h.joinAll(h.tokens(50), `{"game":"example","quick":true}`)
			got := tally(t, outs)
			if want := map[string]int{"200": 20, "503 no_capacity": 30}; !maps.Equal(got, want) {
				t.Errorf("answers %v, want %v", got, want)
			}
			perRoom := map[string]int{}
			for _, o := range outs {
				if o.status == 200 {
					perRoom[o.room]++
				}
			}
			seats := b.seats()
			if len(perRoom) != 5 {
				t.Errorf("players landed in %d rooms (%v), want 5", len(perRoom), perRoom)
			}
			for room, n := range perRoom {
				if n > 4 || seats[room] != n {
					t.Errorf("room %s: %d players answered, %d seats held; want the same, at most 4", room, n, seats[room])
				}
			}
			p50, p99 := latencies(outs)
			t.Logf("%s: 50 quick-matchers on 5 servers: p50 %v, p99 %v", b.name, p50, p99)
		})
	}
}

// TestCreateDroppedHost: when Agones allocates a server to a new room but drops the host
// from its players List (here: picked from a stale cache, with no room in the List at
// all), Usher leaves no room with nobody in it, and the player still gets a room.
func TestCreateDroppedHost(t *testing.T) {
	b, fake := serveBackend(t, 0)
	full := agonestest.GameServer("usher-games", "example", "example-x7k2p-aaaaa", "ws", 0)
	fake.Add(full)
	ok := agonestest.GameServer("usher-games", "example", "example-x7k2p-bbbbb", "ws", 4)
	ok.Status.Address = "127.0.0.1"
	fake.Add(ok)
	fake.StaleCache(1)
	h := b.h.with(t)
	j := h.mustJoin(h.token("host").Token, `{"game":"example"}`)
	var room *agones.GameServer
	for _, gs := range fake.GameServers() {
		code := gs.Labels["usher.dev/room"]
		if gs.Status.State == agones.GameServerStateAllocated && code != "" && len(gs.Status.Lists["players"].Values) == 0 {
			t.Errorf("%s is Allocated as room %s with nobody in it", gs.Name, code)
		}
		if code == j.Room {
			room = gs
		}
	}
	if room == nil || room.Name != ok.Name {
		t.Errorf("room %s is on %v, want %s", j.Room, room, ok.Name)
	}
}

// TestConcurrentCreatesDev: in usher dev, creates racing for too few servers never leave a
// room without its host.
func TestConcurrentCreatesDev(t *testing.T) {
	b := devBackend(t, 3)
	h := b.h.with(t)
	got := tally(t, h.joinAll(h.tokens(10), `{"game":"example"}`))
	if got["200"] != 3 {
		t.Errorf("answers %v, want 3 rooms made", got)
	}
	for room, n := range b.seats() {
		if n != 1 {
			t.Errorf("room %s holds %d seats, want its host's", room, n)
		}
	}
}
