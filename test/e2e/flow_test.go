package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
)

// TestPlayerFlow shares one Usher among the flow's subtests.
func TestPlayerFlow(t *testing.T) {
	h := startUsher(t, nil)

	t.Run("create, join by code, relay both ways", func(t *testing.T) {
		h := h.with(t)
		alice, bob := h.token("Alice"), h.token("Bob")
		if alice.PlayerID == bob.PlayerID || !strings.HasPrefix(alice.PlayerID, "p_") || alice.Name != "Alice" {
			t.Fatalf("tokens: %+v %+v", alice, bob)
		}
		if time.Until(alice.ExpiresAt) < 10*time.Minute {
			t.Errorf("token expires at %s: too soon", alice.ExpiresAt)
		}
		ja := h.mustJoin(alice.Token, `{"game":"example"}`)
		if len(ja.Room) < 4 || len(ja.Room) > 5 || strings.ContainsAny(ja.Room, "0O1IL") {
			t.Errorf("room code %q", ja.Room)
		}
		if ja.Game != "example" || ja.MaxPlayers != 4 || ja.ConnectURL != "/connect?ticket="+ja.Ticket || len(ja.Ticket) < 22 {
			t.Errorf("join answer %+v", ja)
		}
		if d := time.Until(ja.ExpiresAt); d <= 0 || d > 16*time.Second {
			t.Errorf("ticket expires in %s, want within the 15s TTL", d)
		}
		ca := h.mustDial(ja.ConnectURL)
		wa := readWelcome(t, ca)
		if wa.Player != alice.PlayerID || wa.Room != ja.Room {
			t.Errorf("alice's welcome %+v", wa)
		}

		jb := h.mustJoin(bob.Token, fmt.Sprintf(`{"game":"example","room":" %s "}`, strings.ToLower(ja.Room)))
		if jb.Room != ja.Room {
			t.Fatalf("bob joined %s, want %s", jb.Room, ja.Room)
		}
		cb := h.mustDial(jb.ConnectURL)
		wb := readWelcome(t, cb)
		if len(wb.Players) != 2 {
			t.Errorf("bob's welcome lists %v, want both players", wb.Players)
		}

		if err := ca.WriteMessage(websocket.TextMessage, []byte(`{"move":"left"}`)); err != nil {
			t.Fatal(err)
		}
		if mt, b := readMessage(t, cb); mt != websocket.TextMessage || string(b) != `{"move":"left"}` {
			t.Errorf("bob got %d %q", mt, b)
		}
		bin := []byte{0, 1, 2, 255, 254}
		if err := cb.WriteMessage(websocket.BinaryMessage, bin); err != nil {
			t.Fatal(err)
		}
		if mt, b := readMessage(t, ca); mt != websocket.BinaryMessage || !bytes.Equal(b, bin) {
			t.Errorf("alice got %d %v", mt, b)
		}

		// The ticket was single use.
		if c, st, code := h.dial(ja.ConnectURL, ""); c != nil || st != 401 || code != "ticket_invalid" {
			t.Errorf("replayed ticket: %d %s", st, code)
		}

		var games struct {
			Games []struct {
				ID                         string
				Rooms, Players, MaxPlayers int
			} `json:"games"`
		}
		eventually(t, 5*time.Second, func() error {
			h.do("GET", "/games", "", "", &games)
			if len(games.Games) != 1 || games.Games[0].ID != "example" || games.Games[0].Rooms < 1 || games.Games[0].Players < 2 {
				return fmt.Errorf("/games = %+v", games)
			}
			return nil
		})
	})

	t.Run("concurrent redemption of one ticket", func(t *testing.T) {
		h := h.with(t)
		p := h.token("")
		j := h.mustJoin(p.Token, `{"game":"example"}`)
		const n = 50
		var wg sync.WaitGroup
		var ok, refused atomic.Int32
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
				c, resp, err := d.Dial(h.ws+j.ConnectURL, nil)
				if err == nil {
					ok.Add(1)
					c.Close()
					return
				}
				if resp != nil && resp.StatusCode == 401 {
					refused.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != n-1 {
			t.Errorf("%d successes and %d refusals, want 1 and %d", ok.Load(), refused.Load(), n-1)
		}
	})

	t.Run("full room", func(t *testing.T) {
		h := h.with(t)
		host := h.token("host")
		j := h.mustJoin(host.Token, `{"game":"example"}`)
		for i := 0; i < 3; i++ {
			h.mustJoin(h.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
		}
		if _, st, code := h.join(h.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 409 || code != "room_full" {
			t.Errorf("fifth player: %d %s, want 409 room_full", st, code)
		}
		// The host asking again keeps its seat and gets a fresh ticket, not a second seat.
		again := h.mustJoin(host.Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
		if again.Room != j.Room || again.Ticket == j.Ticket {
			t.Errorf("rejoin: %+v", again)
		}
	})

	t.Run("concurrent joins never over-fill", func(t *testing.T) {
		h := h.with(t)
		j := h.mustJoin(h.token("").Token, `{"game":"example"}`)
		const n = 20
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = h.token("").Token
		}
		var wg sync.WaitGroup
		var ok, full atomic.Int32
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(tok string) {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("POST", h.base+"/join", strings.NewReader(fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 409:
					full.Add(1)
				}
			}(tokens[i])
		}
		close(start)
		wg.Wait()
		if ok.Load() != 3 || full.Load() != n-3 {
			t.Errorf("%d joined and %d were refused as full, want 3 and %d", ok.Load(), full.Load(), n-3)
		}
	})

	t.Run("quick match fills a public room", func(t *testing.T) {
		h := h.with(t)
		a := h.mustJoin(h.token("").Token, `{"game":"example","quick":true}`)
		b := h.mustJoin(h.token("").Token, `{"game":"example","quick":true}`)
		if a.Room != b.Room {
			t.Errorf("quick matches went to %s and %s, want one room", a.Room, b.Room)
		}
		// A private room is never quick-matched into.
		priv := h.mustJoin(h.token("").Token, `{"game":"example"}`)
		c := h.mustJoin(h.token("").Token, `{"game":"example","quick":true}`)
		if c.Room == priv.Room {
			t.Errorf("quick match joined private room %s", priv.Room)
		}
	})

	t.Run("no compression negotiated", func(t *testing.T) {
		h := h.with(t)
		j := h.mustJoin(h.token("").Token, `{"game":"example"}`)
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
		c, resp, err := d.Dial(h.ws+j.ConnectURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
			t.Errorf("Usher accepted extension %q", ext)
		}
		readWelcome(t, c)
	})

	t.Run("unknown game and room", func(t *testing.T) {
		h := h.with(t)
		tok := h.token("").Token
		if _, st, code := h.join(tok, `{"game":"nope"}`); st != 404 || code != "unknown_game" {
			t.Errorf("unknown game: %d %s", st, code)
		}
		if _, st, code := h.join(tok, `{"game":"example","room":"ZZZZZ"}`); st != 404 || code != "room_not_found" {
			t.Errorf("unknown room: %d %s", st, code)
		}
	})

	t.Run("origin", func(t *testing.T) {
		h := h.with(t)
		j := h.mustJoin(h.token("").Token, `{"game":"example"}`)
		for _, o := range []string{"https://evil.example", "null", "http://localhost.evil.example:8080"} {
			if c, st, code := h.dial(j.ConnectURL, o); c != nil || st != 403 || code != "origin_forbidden" {
				t.Errorf("Origin %q: %d %s, want 403 origin_forbidden", o, st, code)
			}
		}
		// Refusing the Origin did not burn the ticket; a native client (no Origin) may use it.
		c, st, code := h.dial(j.ConnectURL, "")
		if c == nil {
			t.Fatalf("no Origin with a valid ticket: %d %s", st, code)
		}
		c.Close()
	})

	t.Run("bad requests", func(t *testing.T) {
		h := h.with(t)
		tok := h.token("").Token
		tests := []struct {
			name, method, path, token, body string
			status                          int
			code                            string
		}{
			{"join without token", "POST", "/join", "", `{"game":"example"}`, 401, "unauthorized"},
			{"join with forged token", "POST", "/join", tok[:len(tok)-4] + "AAAA", `{"game":"example"}`, 401, "unauthorized"},
			{"join with garbage token", "POST", "/join", "not.a.jwt", `{"game":"example"}`, 401, "unauthorized"},
			{"join empty body", "POST", "/join", tok, ``, 400, "invalid_request"},
			{"join not json", "POST", "/join", tok, `game=example`, 400, "invalid_request"},
			{"join array", "POST", "/join", tok, `[1,2]`, 400, "invalid_request"},
			{"join unknown field", "POST", "/join", tok, `{"game":"example","rooom":"ABCD"}`, 400, "invalid_request"},
			{"join game not a string", "POST", "/join", tok, `{"game":7}`, 400, "invalid_request"},
			{"join no game", "POST", "/join", tok, `{"room":"ABCD"}`, 400, "invalid_request"},
			{"join room and quick", "POST", "/join", tok, `{"game":"example","room":"ABCD","quick":true}`, 400, "invalid_request"},
			{"join short code", "POST", "/join", tok, `{"game":"example","room":"AB"}`, 400, "invalid_request"},
			{"join trailing data", "POST", "/join", tok, `{"game":"example"} {}`, 400, "invalid_request"},
			{"token bad name", "POST", "/request_token", "", `{"name":"a\u0000b"}`, 400, "invalid_request"},
			{"token long name", "POST", "/request_token", "", `{"name":"` + strings.Repeat("x", 33) + `"}`, 400, "invalid_request"},
			{"token bidi name", "POST", "/request_token", "", `{"name":"abc\u202edef"}`, 400, "invalid_request"},
			{"token not json", "POST", "/request_token", "", `{`, 400, "invalid_request"},
			{"huge body", "POST", "/request_token", "", `{"name":"` + strings.Repeat("x", 20000) + `"}`, 413, "request_too_large"},
			{"connect without ticket", "GET", "/connect", "", ``, 400, "invalid_request"},
			{"no such path", "GET", "/nope", "", ``, 404, "not_found"},
			{"metrics not public", "GET", "/metrics", "", ``, 404, "not_found"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st, code, hdr := h.do(tt.method, tt.path, tt.token, tt.body, nil)
				if st != tt.status || code != tt.code {
					t.Errorf("%d %s, want %d %s", st, code, tt.status, tt.code)
				}
				if st == 401 && tt.path == "/join" && hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			})
		}
		// A WebSocket upgrade with no ticket, or a made-up one, is refused before upgrading.
		for _, u := range []string{"/connect", "/connect?ticket=", "/connect?ticket=" + strings.Repeat("A", 43)} {
			if c, st, code := h.dial(u, ""); c != nil || st != 401 || code != "ticket_invalid" {
				t.Errorf("dial %s: %d %s, want 401 ticket_invalid", u, st, code)
			}
		}
	})

	t.Run("seat released on disconnect", func(t *testing.T) {
		h := h.with(t)
		host := h.token("")
		j := h.mustJoin(host.Token, `{"game":"example"}`)
		conns := []*websocket.Conn{h.mustDial(j.ConnectURL)}
		for i := 0; i < 3; i++ {
			jj := h.mustJoin(h.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
			conns = append(conns, h.mustDial(jj.ConnectURL))
		}
		for _, c := range conns {
			readWelcome(t, c)
		}
		late := h.token("").Token
		if _, st, code := h.join(late, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 409 {
			t.Fatalf("room should be full: %d %s", st, code)
		}
		conns[3].WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		conns[3].Close()
		eventually(t, 5*time.Second, func() error {
			if _, st, code := h.join(late, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 200 {
				return fmt.Errorf("join after a player left: %d %s", st, code)
			}
			return nil
		})
	})

	t.Run("game server crash closes players with 1011", func(t *testing.T) {
		h := h.with(t)
		j := h.mustJoin(h.token("").Token, `{"game":"example"}`)
		c := h.mustDial(j.ConnectURL)
		readWelcome(t, c)
		pid := 0
		for _, s := range h.app.Local.Servers() {
			if s.Room == j.Room {
				pid = s.PID
			}
		}
		if pid == 0 {
			t.Fatalf("no process for room %s", j.Room)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if got := closeCode(t, c, 10*time.Second); got != websocket.CloseInternalServerErr {
			t.Errorf("close code %d, want 1011", got)
		}
		eventually(t, 10*time.Second, func() error {
			if _, st, code := h.join(h.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 404 {
				return fmt.Errorf("room of a crashed server: %d %s, want 404", st, code)
			}
			return nil
		})
	})

	t.Run("metrics on the admin listener", func(t *testing.T) {
		h := h.with(t)
		resp, err := http.Get(h.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, want := range []string{
			`usher_joins_total{game="example",mode="create",result="ok"}`,
			`usher_joins_total{game="example",mode="code",result="room_full"}`,
			`usher_tokens_issued_total`,
			`usher_connects_total{result="ok"}`,
			`usher_gameserver_exits_total{game="example",reason="crashed"}`,
			`usher_http_requests_total{code="200",method="POST",route="/request_token"}`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("/metrics lacks %s in %.300s", want, b)
			}
		}
		if regexp.MustCompile(`p_[a-z2-7]{20}`).Match(b) {
			t.Errorf("/metrics mentions a player id")
		}
	})
}

func TestRateLimits(t *testing.T) {
	eachStore(t, func(t *testing.T, store func(*config.Config)) {
		h := startUsher(t, func(c *config.Config) { store(c); c.TokenRate = 3; c.JoinRate = 2 })
		spoof := func(i int) *http.Request {
			req, _ := http.NewRequest("POST", h.base+"/request_token", nil)
			// Forged forwarding headers from an untrusted peer must not buy new quota.
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
			req.Header.Set("CF-Connecting-IP", fmt.Sprintf("198.51.100.%d", i))
			return req
		}
		var last *http.Response
		for i := 0; i < 4; i++ {
			resp, err := http.DefaultClient.Do(spoof(i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if i < 3 && resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
			last = resp
		}
		if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" {
			t.Errorf("4th token request: %d Retry-After %q, want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
		}
		st, code, _ := h.do("POST", "/request_token", "", "", nil)
		if st != 429 || code != "rate_limited" {
			t.Errorf("limited answer: %d %s", st, code)
		}
	})
}

func TestJoinRateLimitPerIPAndPlayer(t *testing.T) {
	eachStore(t, func(t *testing.T, store func(*config.Config)) {
		// Behind a trusted proxy, X-Forwarded-For names the client.
		h := startUsher(t, func(c *config.Config) { store(c); c.JoinRate = 2; c.TrustedProxies = []string{"127.0.0.1", "::1"} })
		join := func(tok, ip string) int {
			req, _ := http.NewRequest("POST", h.base+"/join", strings.NewReader(`{"game":"example","room":"ZZZZ"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("X-Forwarded-For", ip)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// One player hopping across IPs is still limited per player.
		hopper := h.token("").Token
		got := []int{join(hopper, "203.0.113.1"), join(hopper, "203.0.113.2"), join(hopper, "203.0.113.3")}
		if got[0] != 404 || got[1] != 404 || got[2] != 429 {
			t.Errorf("one player over three IPs: %v, want [404 404 429]", got)
		}
		// Many players from one IP are limited per IP.
		got = []int{join(h.token("").Token, "198.51.100.7"), join(h.token("").Token, "198.51.100.7"), join(h.token("").Token, "198.51.100.7")}
		if got[0] != 404 || got[1] != 404 || got[2] != 429 {
			t.Errorf("three players from one IP: %v, want [404 404 429]", got)
		}
		// IPv6 clients share a limit per /64.
		got = []int{join(h.token("").Token, "2001:db8:1:2::1"), join(h.token("").Token, "2001:db8:1:2::ffff"), join(h.token("").Token, "2001:db8:1:2:abcd::9")}
		if got[2] != 429 {
			t.Errorf("three players from one IPv6 /64: %v, want the third limited", got)
		}
		// Someone else is unaffected.
		if st := join(h.token("").Token, "192.0.2.99"); st != 404 {
			t.Errorf("fresh player and IP: %d, want 404", st)
		}
	})
}

func TestGracefulShutdownClosesWith1012(t *testing.T) {
	h := startUsher(t, nil)
	j := h.mustJoin(h.token("").Token, `{"game":"example"}`)
	c := h.mustDial(j.ConnectURL)
	readWelcome(t, c)
	h.cancel()
	if got := closeCode(t, c, 10*time.Second); got != websocket.CloseServiceRestart {
		t.Errorf("close code on shutdown %d, want 1012 (reconnect elsewhere)", got)
	}
	h.stop()
	for _, s := range h.app.Local.Servers() {
		if s.PID != 0 && syscall.Kill(s.PID, 0) == nil {
			t.Errorf("game server %s (pid %d) still running after shutdown", s.Name, s.PID)
		}
	}
}

// TestKeyFileOutlivesRestart: with --jwt-key-file, a token issued before a restart still
// works after it; a token from a different key does not.
func TestKeyFileOutlivesRestart(t *testing.T) {
	k, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := auth.MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	first := startUsher(t, func(c *config.Config) { c.JWTKeyFile = keyFile })
	tok := first.token("Ada").Token
	stranger := first.token("").Token
	first.stop()

	second := startUsher(t, func(c *config.Config) { c.JWTKeyFile = keyFile })
	if _, st, code := second.join(tok, `{"game":"example"}`); st != 200 {
		t.Errorf("token from before the restart: %d %s", st, code)
	}
	third := startUsher(t, nil) // a key made at start: old tokens are strangers
	if _, st, code := third.join(stranger, `{"game":"example"}`); st != 401 || code != "unauthorized" {
		t.Errorf("token signed by another key: %d %s, want 401 unauthorized", st, code)
	}
}
