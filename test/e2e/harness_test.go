// Package e2e drives the whole of `usher dev` — the real wiring, real example game server
// processes on loopback and real WebSocket clients — through the public API.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/internal/app"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/exampleserver"
	"github.com/usher-gg/usher/internal/redis/redistest"
)

// asExample makes this test binary act as the example game server when the local fleet
// starts it (the same code `usher example-server` runs).
const asExample = "USHER_E2E_AS_EXAMPLE_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(asExample) == "1" {
		os.Exit(exampleserver.Main())
	}
	os.Exit(m.Run())
}

type harness struct {
	t      testing.TB
	app    *app.App
	base   string // http://127.0.0.1:port
	ws     string // ws://127.0.0.1:port
	admin  string
	cancel context.CancelFunc
	done   chan error
	once   *sync.Once
}

// startUsher runs Usher like `usher dev` on loopback ports with the example game. edit may
// change the config first.
func startUsher(tb testing.TB, edit func(*config.Config)) *harness {
	tb.Helper()
	cfg := config.Default(config.ModeDev)
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	g := config.ExampleGame(os.Args[0])
	g.Command = []string{os.Args[0]}
	g.Env = map[string]string{asExample: "1", "USHER_EXAMPLE_EMPTY_TIMEOUT": "3s", "USHER_EXAMPLE_HEARTBEAT": "500ms"}
	g.Buffer, g.MaxServers = 2, 12
	cfg.Games = []config.Game{g}
	cfg.AllocationWait = 5 * time.Second
	cfg.TokenRate, cfg.JoinRate, cfg.CreateRate = 10000, 10000, 10000 // the rate limit tests set their own
	cfg.ShutdownTimeout = 5 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	a, err := app.New(cfg, log)
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: tb, app: a, base: "http://" + a.PublicAddr(), ws: "ws://" + a.PublicAddr(),
		admin: "http://" + a.AdminAddr(), cancel: cancel, done: make(chan error, 1), once: &sync.Once{}}
	go func() { h.done <- a.Run(ctx) }()
	tb.Cleanup(h.stop)
	h.waitReady()
	return h
}

// with returns the harness reporting to t (a subtest).
func (h *harness) with(t testing.TB) *harness {
	c := *h
	c.t = t
	return &c
}

// stop shuts Usher down and waits for Run to return (once; Cleanup calls it too).
func (h *harness) stop() {
	h.once.Do(func() {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			h.t.Errorf("Usher did not stop within 20s")
		}
	})
}

// waitReady waits for /readyz and for the warm buffer to hold ready servers.
func (h *harness) waitReady() {
	h.t.Helper()
	eventually(h.t, 15*time.Second, func() error {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		ready := 0
		for _, s := range h.app.Local.Servers() {
			if s.State == "Ready" {
				ready++
			}
		}
		if ready == 0 {
			return fmt.Errorf("no ready game server yet")
		}
		return nil
	})
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(tb testing.TB, within time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not true within %s: %v", within, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a request and decodes the JSON answer into out (if 2xx) or returns the error code.
func (h *harness) do(method, path, token string, body string, out any) (status int, code string, hdr http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				h.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
			}
		}
		return resp.StatusCode, "", resp.Header
	}
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		h.t.Fatalf("%s %s: %d with a body that is not an error object: %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, e.Error.Code, resp.Header
}

type tokenResp struct {
	Token     string    `json:"token"`
	PlayerID  string    `json:"player_id"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *harness) token(name string) tokenResp {
	h.t.Helper()
	var tr tokenResp
	body := ""
	if name != "" {
		b, _ := json.Marshal(map[string]string{"name": name})
		body = string(b)
	}
	if st, code, _ := h.do("POST", "/request_token", "", body, &tr); st != 200 {
		h.t.Fatalf("request_token: %d %s", st, code)
	}
	return tr
}

type joinResp struct {
	Room       string    `json:"room"`
	Ticket     string    `json:"ticket"`
	ConnectURL string    `json:"connect_url"`
	ExpiresAt  time.Time `json:"expires_at"`
	Game       string    `json:"game"`
	MaxPlayers int       `json:"max_players"`
}

func (h *harness) join(token, body string) (joinResp, int, string) {
	h.t.Helper()
	var jr joinResp
	st, code, _ := h.do("POST", "/join", token, body, &jr)
	return jr, st, code
}

func (h *harness) mustJoin(token, body string) joinResp {
	h.t.Helper()
	jr, st, code := h.join(token, body)
	if st != 200 {
		h.t.Fatalf("join %s: %d %s", body, st, code)
	}
	return jr
}

// dial connects to connectURL (as given by /join) with an optional Origin. On refusal it
// returns the HTTP status and error code.
func (h *harness) dial(connectURL, origin string) (*websocket.Conn, int, string) {
	h.t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(h.ws+connectURL, hdr)
	if err == nil {
		return c, 101, ""
	}
	if resp == nil {
		h.t.Fatalf("dial %s: %v", redact(connectURL), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	_ = json.Unmarshal(b, &e)
	return nil, resp.StatusCode, e.Error.Code
}

// mustDialNative connects like a native client: no Origin (serve mode allows no browser).
func (h *harness) mustDialNative(connectURL string) *websocket.Conn {
	h.t.Helper()
	c, st, code := h.dial(connectURL, "")
	if c == nil {
		h.t.Fatalf("connect: %d %s", st, code)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) mustDial(connectURL string) *websocket.Conn {
	h.t.Helper()
	c, st, code := h.dial(connectURL, "http://localhost:5173")
	if c == nil {
		h.t.Fatalf("connect: %d %s", st, code)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

func redact(u string) string {
	if i := strings.Index(u, "?"); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

type welcome struct {
	Type    string   `json:"type"`
	Player  string   `json:"player"`
	Room    string   `json:"room"`
	Players []string `json:"players"`
}

func readWelcome(tb testing.TB, c *websocket.Conn) welcome {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read welcome: %v", err)
	}
	var w welcome
	if mt != websocket.TextMessage || json.Unmarshal(b, &w) != nil || w.Type != "welcome" {
		tb.Fatalf("first message = %d %q, want a welcome", mt, b)
	}
	return w
}

func readMessage(tb testing.TB, c *websocket.Conn) (int, []byte) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	return mt, b
}

// closeCode waits for the connection to be closed and returns the close code received.
func closeCode(tb testing.TB, c *websocket.Conn, within time.Duration) int {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		tb.Fatalf("connection ended without a close frame: %v", err)
	}
}

func ticketOf(connectURL string) string {
	u, _ := url.Parse(connectURL)
	return u.Query().Get("ticket")
}

// eachStore runs f twice: with Usher's shared state in memory, and in a real redis-server
// (--redis-url) of its own.
func eachStore(t *testing.T, f func(t *testing.T, store func(*config.Config))) {
	t.Run("memory", func(t *testing.T) { f(t, func(*config.Config) {}) })
	t.Run("redis", func(t *testing.T) {
		r := redistest.Start(t)
		f(t, func(c *config.Config) { c.RedisURL = r.URL() })
	})
}
