package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/app"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
)

// echoServer is a stand-in game server on loopback: it echoes each message and records who
// connected (the query Usher's proxy adds).
type echoServer struct {
	ln      net.Listener
	mu      sync.Mutex
	players []url.Values
}

func startEcho(tb testing.TB) *echoServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	e := &echoServer{ln: ln}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		e.mu.Lock()
		e.players = append(e.players, r.URL.Query())
		e.mu.Unlock()
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, b) != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return e
}

func (e *echoServer) port() int32 { return int32(e.ln.Addr().(*net.TCPAddr).Port) }

// count is how many times player connected.
func (e *echoServer) count(player string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, q := range e.players {
		if q.Get(contract.QueryPlayer) == player {
			n++
		}
	}
	return n
}

// startServe runs `usher serve` wiring against a fake Agones API server through a real
// kubeconfig file.
func startServe(tb testing.TB, fake *agonestest.Server, keyPEM []byte, opts ...app.Option) *harness {
	tb.Helper()
	return startServeWith(tb, fake, keyPEM, nil, opts...)
}

// startServeWith is startServe with edit applied to the config first.
func startServeWith(tb testing.TB, fake *agonestest.Server, keyPEM []byte, edit func(*config.Config), opts ...app.Option) *harness {
	tb.Helper()
	kubeconfig := filepath.Join(tb.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: %q}}]
users: [{name: tester, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: tester}}]
current-context: fake
`, fake.URL())
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg := config.Default(config.ModeServe)
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Kubeconfig = kubeconfig
	cfg.JWTKeyPEM = string(keyPEM)
	cfg.AdminToken = "e2e-admin-token-0123456789"
	cfg.DrainDelay = 0
	cfg.AllowNoOrigin = true
	cfg.TokenRate, cfg.JoinRate, cfg.CreateRate = 10000, 10000, 10000
	cfg.Games = []config.Game{{ID: "example", Name: "Example", MaxPlayers: 4,
		Agones: config.AgonesGame{Namespace: "usher-games", Fleet: "example", PortName: "ws", Dial: config.DialAddress}}}
	if edit != nil {
		edit(&cfg)
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: tb, app: a, base: "http://" + a.PublicAddr(), ws: "ws://" + a.PublicAddr(),
		admin: "http://" + a.AdminAddr(), cancel: cancel, done: make(chan error, 1), once: &sync.Once{}}
	go func() { h.done <- a.Run(ctx) }()
	tb.Cleanup(h.stop)
	eventually(tb, 10*time.Second, func() error {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return h
}

// TestServeAgainstAgones runs the whole serve path — kubeconfig, our Agones client, the
// GameServer watch, allocations, tickets and the proxy — against a fake Agones API server
// whose GameServers point at a real WebSocket server on loopback.
func TestServeAgainstAgones(t *testing.T) {
	fake := agonestest.NewServer(t)
	echo := startEcho(t)
	for _, name := range []string{"example-x7k2p-aaaaa", "example-x7k2p-bbbbb"} {
		gs := agonestest.GameServer("usher-games", "example", name, "ws", 4)
		gs.Status.Address = "127.0.0.1"
		gs.Status.Ports = []agones.GameServerStatusPort{{Name: "ws", Port: echo.port()}}
		fake.Add(gs)
	}
	k, _ := auth.GenerateKey()
	keyPEM, _ := auth.MarshalKey(k)
	h := startServe(t, fake, keyPEM)

	alice := h.token("Alice")
	j := h.mustJoin(alice.Token, `{"game":"example"}`)
	c, st, code := h.dial(j.ConnectURL, "") // a native client: serve mode allows no browser Origin by default
	if c == nil {
		t.Fatalf("connect: %d %s", st, code)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, b := readMessage(t, c); string(b) != "ping" {
		t.Errorf("echo = %q", b)
	}
	echo.mu.Lock()
	got := echo.players[0]
	echo.mu.Unlock()
	if got.Get("usher_player") != alice.PlayerID || got.Get("usher_room") != j.Room || got.Get("usher_name") != "Alice" {
		t.Errorf("game server was told %v", got)
	}

	// The allocation labelled the GameServer and seated Alice in its players list.
	var room *agones.GameServer
	for _, gs := range fake.GameServers() {
		if gs.Labels["usher.dev/room"] == j.Room {
			room = gs
		}
	}
	if room == nil || room.Status.State != agones.GameServerStateAllocated || room.Labels["usher.dev/public"] != "false" {
		t.Fatalf("no Allocated GameServer labelled with room %s: %+v", j.Room, room)
	}

	// Bob joins by code; Usher restarts; Carol still finds the room (it lives in Agones).
	h.mustJoin(h.token("Bob").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room))
	h.stop()
	h2 := startServe(t, fake, keyPEM)
	if jc := h2.mustJoin(h2.token("Carol").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); jc.Room != j.Room {
		t.Errorf("after restart joined %s, want %s", jc.Room, j.Room)
	}
	// Alice's token, signed by the shared key, still works on the new replica.
	if _, st, code := h2.join(alice.Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 200 {
		t.Errorf("alice after restart: %d %s", st, code)
	}
	h2.mustJoin(h2.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)) // fourth seat
	if _, st, code := h2.join(h2.token("").Token, fmt.Sprintf(`{"game":"example","room":%q}`, j.Room)); st != 409 || code != "room_full" {
		t.Errorf("fifth player: %d %s, want 409 room_full", st, code)
	}
	var games struct {
		Games []struct{ Rooms, Players int } `json:"games"`
	}
	eventually(t, 5*time.Second, func() error {
		h2.do("GET", "/games", "", "", &games)
		if len(games.Games) != 1 || games.Games[0].Rooms != 1 || games.Games[0].Players != 4 {
			return fmt.Errorf("/games = %+v, want 1 room with 4 seats", games)
		}
		return nil
	})
}
