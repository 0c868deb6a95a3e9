package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/redis/redistest"
)

// replicas is two `usher serve` instances sharing one real redis-server and one fake Agones
// API, behind a round-robin TCP balancer, as in a cluster with replicas: 2.
type replicas struct {
	fake  *agonestest.Server
	redis *redistest.Server
	r     [2]*harness
	lb    *harness // the API through the balancer
	rooms map[string]*echoServer
}

// startReplicas starts the pair with servers game servers (each an echoServer of its own)
// in the fake; edit changes both replicas' config.
func startReplicas(t *testing.T, servers int, edit func(*config.Config)) *replicas {
	t.Helper()
	rs := &replicas{fake: agonestest.NewServer(t), redis: redistest.Start(t), rooms: map[string]*echoServer{}}
	rs.fake.SetBatchWait(10 * time.Millisecond)
	for i := range servers {
		es := startEcho(t)
		name := fmt.Sprintf("example-x7k2p-%05d", i)
		gs := agonestest.GameServer("usher-games", "example", name, "ws", 4)
		gs.Status.Address = "127.0.0.1"
		gs.Status.Ports = []agones.GameServerStatusPort{{Name: "ws", Port: es.port()}}
		rs.fake.Add(gs)
		rs.rooms[name] = es
	}
	k, _ := auth.GenerateKey()
	keyPEM, _ := auth.MarshalKey(k)
	var addrs []string
	for i := range rs.r {
		rs.r[i] = startServeWith(t, rs.fake, keyPEM, func(c *config.Config) {
			c.RedisURL = rs.redis.URL()
			c.DrainWindow, c.ShutdownTimeout = 300*time.Millisecond, 5*time.Second
			if edit != nil {
				edit(c)
			}
		})
		addrs = append(addrs, rs.r[i].app.PublicAddr())
	}
	lbAddr := startBalancer(t, addrs)
	lb := *rs.r[0]
	lb.base, lb.ws = "http://"+lbAddr, "ws://"+lbAddr
	rs.lb = &lb
	return rs
}

// server is the game server holding room (by its code, from the fake's labels).
func (rs *replicas) server(t *testing.T, room string) *echoServer {
	t.Helper()
	for _, gs := range rs.fake.GameServers() {
		if gs.Labels[contract.LabelRoom] == room {
			return rs.rooms[gs.Name]
		}
	}
	t.Fatalf("no game server holds room %s", room)
	return nil
}

// startBalancer is a round-robin TCP balancer on loopback: each connection goes to the next
// backend, or the one after if that refuses (a draining replica has closed its listener).
func startBalancer(t *testing.T, backends []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var next atomic.Uint64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				first := next.Add(1)
				var up net.Conn
				for i := range uint64(len(backends)) {
					if up, err = net.DialTimeout("tcp", backends[(first+i)%uint64(len(backends))], time.Second); err == nil {
						break
					}
				}
				if up == nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// TestReplicasShareTickets: a ticket issued by one replica is redeemed at the other, exactly
// once, under 50 concurrent tries spread over both.
func TestReplicasShareTickets(t *testing.T) {
	rs := startReplicas(t, 2, nil)
	j := rs.r[0].mustJoin(rs.r[0].token("Ada").Token, `{"game":"example"}`)
	var wins, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	var conns sync.Map
	for i := range 50 {
		wg.Go(func() {
			<-start
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			c, resp, err := d.Dial(rs.r[i%2].ws+j.ConnectURL, nil)
			switch {
			case err == nil:
				wins.Add(1)
				conns.Store(i, c)
			case resp != nil && resp.StatusCode == 401:
				refused.Add(1)
			default:
				t.Errorf("try %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	conns.Range(func(_, c any) bool { c.(*websocket.Conn).Close(); return true })
	if wins.Load() != 1 || refused.Load() != 49 {
		t.Fatalf("50 concurrent redemptions over two replicas: %d connected, %d refused 401; want 1 and 49", wins.Load(), refused.Load())
	}
}

// TestReplicasShareRoomsAndLimits: a room created through one replica is joined through the
// other, and a rate limit holds across both.
func TestReplicasShareRoomsAndLimits(t *testing.T) {
	rs := startReplicas(t, 2, func(c *config.Config) { c.TokenRate = 4 })
	a, b := rs.r[0], rs.r[1]
	created := a.mustJoin(a.token("Host").Token, `{"game":"example"}`)
	guest := b.token("Guest")
	joined := b.mustJoin(guest.Token, fmt.Sprintf(`{"game":"example","room":%q}`, created.Room))
	if joined.Room != created.Room {
		t.Fatalf("joined %s through the other replica, want %s", joined.Room, created.Room)
	}
	c := b.mustDialNative(joined.ConnectURL)
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	readMessage(t, c)
	if n := rs.server(t, created.Room).count(guest.PlayerID); n != 1 {
		t.Errorf("the room's game server saw the guest connect %d times, want 1", n)
	}

	// 4 tokens a minute per IP, counted across both replicas: 2 used above.
	var got []int
	for i := range 4 {
		st, _, _ := rs.r[i%2].do("POST", "/request_token", "", "", nil)
		got = append(got, st)
	}
	if !slices.Equal(got, []int{200, 200, 429, 429}) {
		t.Errorf("token requests 3 to 6 alternating replicas: %v, want [200 200 429 429]", got)
	}
}

// TestReplicasNeverShareACode: 2,000 rooms created at once through both replicas all get
// codes of their own.
func TestReplicasNeverShareACode(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("2,000 rooms through the fake allocator: not in -short, nor under -race (CI's plain go test pass runs it)")
	}
	const n = 2000
	rs := startReplicas(t, n, func(c *config.Config) { c.AllocationWait = 30 * time.Second })
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = rs.r[i%2].token("").Token
	}
	codes := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // requests in flight: as many as the fake allocator answers in time
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			h := rs.r[i%2].with(t)
			jr, st, code := h.join(tokens[i], `{"game":"example"}`)
			if st != 200 {
				t.Errorf("create %d: %d %s", i, st, code)
				return
			}
			codes[i] = jr.Room
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for i, c := range codes {
		if c == "" {
			continue
		}
		if j, dup := seen[c]; dup {
			t.Errorf("creates %d and %d both got room %s", j, i, c)
		}
		seen[c] = i
	}
	labelled := map[string]string{}
	for _, gs := range rs.fake.GameServers() {
		if code := gs.Labels[contract.LabelRoom]; code != "" {
			if other, dup := labelled[code]; dup {
				t.Errorf("game servers %s and %s both hold room %s", other, gs.Name, code)
			}
			labelled[code] = gs.Name
		}
	}
	if len(seen) != n || len(labelled) != n {
		t.Errorf("%d distinct codes answered, %d rooms labelled; want %d", len(seen), len(labelled), n)
	}
}

// TestDrainMovesPlayersToTheOtherReplica: on SIGTERM a replica closes its players with 1012;
// each rejoins its room through the balancer (reaching the other replica), lands in the same
// room, and the room's game server sees the player come back.
func TestDrainMovesPlayersToTheOtherReplica(t *testing.T) {
	const rooms, perRoom = 4, 3
	rs := startReplicas(t, rooms, nil)
	type player struct {
		token, id, room string
		c               *websocket.Conn
	}
	var players []*player
	for range rooms {
		host := rs.lb.token("")
		j := rs.lb.mustJoin(host.Token, `{"game":"example"}`)
		players = append(players, &player{token: host.Token, id: host.PlayerID, room: j.Room, c: rs.lb.mustDialNative(j.ConnectURL)})
		for range perRoom - 1 {
			g := rs.lb.token("")
			gj := rs.lb.mustJoin(g.Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
			players = append(players, &player{token: g.Token, id: g.PlayerID, room: j.Room, c: rs.lb.mustDialNative(gj.ConnectURL)})
		}
	}
	eventually(t, 5*time.Second, func() error {
		if got := rs.r[0].app.Proxy.Sessions() + rs.r[1].app.Proxy.Sessions(); got != len(players) {
			return fmt.Errorf("%d sessions relayed, want %d", got, len(players))
		}
		return nil
	})
	// Whom the balancer sent to the first replica shows when it drains: those are closed.
	drained := rs.r[0]
	if drained.app.Proxy.Sessions() == 0 {
		t.Fatal("the balancer sent no player to the first replica")
	}
	type outcome struct {
		p    *player
		code int
		err  error         // the rejoin failed
		back time.Duration // from the close to the room's game server echoing again
	}
	// Each player closed with 1012 rejoins its room at once, with a plain join by code
	// through the balancer, as a client following docs/api.md does.
	rejoin := func(p *player) error {
		j, st, code := rs.lb.with(t).join(p.token, fmt.Sprintf(`{"game":"example","room":%q}`, p.room))
		if st != 200 || j.Room != p.room {
			return fmt.Errorf("rejoining room %s: %d %s room %q", p.room, st, code, j.Room)
		}
		c, st, code := rs.lb.with(t).dial(j.ConnectURL, "")
		if c == nil {
			return fmt.Errorf("reconnecting: %d %s", st, code)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte("back")); err != nil {
			return err
		}
		_, _, err := c.ReadMessage()
		return err
	}
	results := make(chan outcome, len(players))
	for _, p := range players {
		go func() {
			_ = p.c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				if _, _, err := p.c.ReadMessage(); err != nil {
					closed := time.Now()
					var ce *websocket.CloseError
					o := outcome{p: p, code: contract.CloseAbnormal}
					if errors.As(err, &ce) {
						o.code = ce.Code
					}
					if o.code == websocket.CloseServiceRestart {
						o.err = rejoin(p)
						o.back = time.Since(closed)
					}
					results <- o
					return
				}
			}
		}()
	}
	n := drained.app.Proxy.Sessions()
	sigterm := time.Now()
	drained.cancel() // what SIGTERM does
	var moved []outcome
	timeout := time.After(20 * time.Second)
	for len(moved) < n {
		select {
		case o := <-results:
			if o.code != websocket.CloseServiceRestart {
				t.Fatalf("player %s closed with %d, want 1012", o.p.id, o.code)
			}
			if o.err != nil {
				t.Fatalf("player %s: %v", o.p.id, o.err)
			}
			moved = append(moved, o)
		case <-timeout:
			t.Fatalf("%d of %d players back 20s after SIGTERM", len(moved), n)
		}
	}
	allBack := time.Since(sigterm)
	// The game servers saw every moved player come back (and nobody else twice).
	for _, p := range players {
		want := 1
		if slices.ContainsFunc(moved, func(o outcome) bool { return o.p == p }) {
			want = 2
		}
		if got := rs.server(t, p.room).count(p.id); got != want {
			t.Errorf("player %s: room %s's game server saw %d connections, want %d", p.id, p.room, got, want)
		}
	}
	drained.stop()
	var back []time.Duration
	for _, o := range moved {
		back = append(back, o.back)
	}
	slices.Sort(back)
	t.Logf("drain over %v: %d of %d players moved, all back %v after SIGTERM; close to back in the room p50 %v, max %v",
		300*time.Millisecond, len(moved), len(players), allBack.Round(time.Millisecond),
		back[len(back)/2].Round(time.Microsecond), back[len(back)-1].Round(time.Microsecond))
}

// TestLostPlayerBackInSeat runs `usher dev` with the example server: a player whose
// connection drops (1006) keeps their seat in a full room for the grace and gets back into
// it; after the grace the seat is free for someone else.
func TestLostPlayerBackInSeat(t *testing.T) {
	const grace = 2 * time.Second
	h := startUsher(t, func(c *config.Config) { c.ReconnectGrace = grace; c.Games[0].MaxPlayers = 2 })
	host := h.token("Host")
	j := h.mustJoin(host.Token, `{"game":"example","public":false}`)
	hc := h.mustDial(j.ConnectURL)
	readWelcome(t, hc)
	guest := h.token("Guest")
	gj := h.mustJoin(guest.Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
	gc := h.mustDial(gj.ConnectURL)
	readWelcome(t, gc)

	// The guest's network goes away: no close frame.
	_ = gc.NetConn().Close()
	waitSeats(t, h, j.Room, 2, 1)
	// The room is full to strangers, but not to the guest.
	if _, st, code := h.join(h.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 409 || code != "room_full" {
		t.Errorf("a stranger joining while the guest's seat is kept: %d %s, want 409 room_full", st, code)
	}
	back := h.mustJoin(guest.Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
	if back.Room != j.Room {
		t.Fatalf("guest rejoined %s, want %s", back.Room, j.Room)
	}
	gc2 := h.mustDial(back.ConnectURL)
	if w := readWelcome(t, gc2); w.Player != guest.PlayerID || !slices.Contains(w.Players, host.PlayerID) {
		t.Errorf("welcome back = %+v, want the guest in the room with the host", w)
	}
	waitSeats(t, h, j.Room, 2, 2)

	// Dropped again and gone for good: after the grace the seat is someone else's.
	_ = gc2.NetConn().Close()
	waitSeats(t, h, j.Room, 2, 1)
	time.Sleep(grace)
	eventually(t, 5*time.Second, func() error {
		if _, st, code := h.join(h.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 200 {
			return fmt.Errorf("a stranger after the grace: %d %s", st, code)
		}
		return nil
	})

	// The host leaves cleanly (1000): the seat is freed at once, leaving the newcomer's.
	waitSeats(t, h, j.Room, 2, 1)
	_ = hc.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	waitSeats(t, h, j.Room, 1, 0)
}

// waitSeats waits until room has seats seats held and connected players connected.
func waitSeats(t *testing.T, h *harness, room string, seats, connected int) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		for _, s := range h.app.Local.Servers() {
			if s.Room == room {
				if s.Seats != seats || s.Connected != connected {
					return fmt.Errorf("room %s: %d seats, %d connected; want %d, %d", room, s.Seats, s.Connected, seats, connected)
				}
				return nil
			}
		}
		return fmt.Errorf("no room %s", room)
	})
}

// TestRedisDown: with Redis gone, joins answer 503 unavailable with Retry-After, /readyz
// fails, and live sessions keep relaying.
func TestRedisDown(t *testing.T) {
	r := redistest.Start(t)
	h := startUsher(t, func(c *config.Config) { c.RedisURL = r.URL() })
	tok := h.token("Ada").Token
	j := h.mustJoin(tok, `{"game":"example"}`)
	c := h.mustDial(j.ConnectURL)
	readWelcome(t, c)
	peer := h.mustJoin(h.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
	pc := h.mustDial(peer.ConnectURL)
	readWelcome(t, pc)
	r.Stop()

	st, code, hdr := h.do("POST", "/join", tok, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room), nil)
	if st != 503 || code != "unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("join with Redis down: %d %s Retry-After %q, want 503 unavailable with Retry-After", st, code, hdr.Get("Retry-After"))
	}
	resp, err := http.Get(h.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "Redis") {
		t.Errorf("/readyz with Redis down: %d %s, want 503 naming Redis", resp.StatusCode, body)
	}
	// The live session still relays.
	if err := pc.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, b := readMessage(t, c); string(b) != "still here" {
		t.Errorf("relayed %q, want %q", b, "still here")
	}
}
