package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/app"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/exampleserver"
)

// The benchmarks run the real app — Fiber, middleware, JWTs, the match service, the local
// fleet with an example game server process and the ticket store — through app.Test, so the
// figures are Usher's request handling without the network:
//
//	go test -run '^$' -bench . -benchmem ./internal/app/

// asExample makes this test binary the example game server when the local fleet starts it.
const asExample = "USHER_APP_TEST_AS_EXAMPLE_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(asExample) == "1" {
		os.Exit(exampleserver.Main())
	}
	os.Exit(m.Run())
}

// startApp runs Usher like `usher dev` on loopback ports, with one game of 1000 seats and
// the per-IP limits lifted, and waits for a ready game server.
func startApp(b *testing.B) *app.App {
	b.Helper()
	cfg := config.Default(config.ModeDev)
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	g := config.ExampleGame(os.Args[0])
	g.Command = []string{os.Args[0]}
	g.Env = map[string]string{asExample: "1", "USHER_EXAMPLE_EMPTY_TIMEOUT": "1h"}
	g.MaxPlayers, g.Buffer, g.MaxServers = 1000, 1, 2
	cfg.Games = []config.Game{g}
	cfg.TokenRate, cfg.JoinRate, cfg.CreateRate = 1<<30, 1<<30, 1<<30
	cfg.ShutdownTimeout = 5 * time.Second
	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			b.Error("Usher did not stop within 20s")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ready := false
		for _, s := range a.Local.Servers() {
			ready = ready || s.State == "Ready"
		}
		if ready {
			return a
		}
		if time.Now().After(deadline) {
			b.Fatal("no ready game server within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call sends a request through app.Test and decodes a 200 answer into out.
func call(b *testing.B, a *app.App, method, path, token, body string, out any) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.API.App().Test(req, -1)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.Fatal(err)
		}
	}
}

type tokenResp struct {
	Token string `json:"token"`
}

type joinResp struct {
	Room   string `json:"room"`
	Ticket string `json:"ticket"`
}

// BenchmarkRequestToken is POST /request_token: a new player id and an Ed25519-signed JWT.
func BenchmarkRequestToken(b *testing.B) {
	a := startApp(b)
	b.ReportAllocs()
	for b.Loop() {
		call(b, a, http.MethodPost, "/request_token", "", `{}`, nil)
	}
}

// BenchmarkJoin is POST /join by room code: bearer token verified, room found, seat checked
// (each of the 64 players already holds one, so joins never fill the room) and a ticket issued.
func BenchmarkJoin(b *testing.B) {
	a := startApp(b)
	var creator tokenResp
	call(b, a, http.MethodPost, "/request_token", "", `{}`, &creator)
	var room joinResp
	call(b, a, http.MethodPost, "/join", creator.Token, `{"game":"example"}`, &room)
	tokens := make([]string, 64)
	for i := range tokens {
		var t tokenResp
		call(b, a, http.MethodPost, "/request_token", "", `{"name":"p`+strconv.Itoa(i)+`"}`, &t)
		tokens[i] = t.Token
	}
	body := `{"game":"example","room":"` + room.Room + `"}`
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		call(b, a, http.MethodPost, "/join", tokens[i%len(tokens)], body, nil)
		i++
	}
}

// BenchmarkJoinParallel is BenchmarkJoin from GOMAXPROCS goroutines at once.
func BenchmarkJoinParallel(b *testing.B) {
	a := startApp(b)
	var creator tokenResp
	call(b, a, http.MethodPost, "/request_token", "", `{}`, &creator)
	var room joinResp
	call(b, a, http.MethodPost, "/join", creator.Token, `{"game":"example"}`, &room)
	tokens := make(chan string, 256)
	for range cap(tokens) {
		var t tokenResp
		call(b, a, http.MethodPost, "/request_token", "", `{}`, &t)
		tokens <- t.Token
	}
	body := `{"game":"example","room":"` + room.Room + `"}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		tok := <-tokens
		for pb.Next() {
			call(b, a, http.MethodPost, "/join", tok, body, nil)
		}
	})
}

// BenchmarkJoinFreshToken is BenchmarkJoin where every join brings a token not seen before, as
// when a lobby fills: the verified-token cache cannot help, so the signature is checked. The
// tokens are minted in advance (outside the timer) for the same 64 players, so the room never
// fills; each has its own jti, so no two are alike.
func BenchmarkJoinFreshToken(b *testing.B) {
	a := startApp(b)
	var creator tokenResp
	call(b, a, http.MethodPost, "/request_token", "", `{}`, &creator)
	var room joinResp
	call(b, a, http.MethodPost, "/join", creator.Token, `{"game":"example"}`, &room)
	body := `{"game":"example","room":"` + room.Room + `"}`
	const batch = 2048
	tokens := make([]string, 0, batch)
	mint := func() {
		tokens = tokens[:0]
		for i := range batch {
			t, _, err := a.Tokens.Issue("bench-player-"+strconv.Itoa(i%64), "p")
			if err != nil {
				b.Fatal(err)
			}
			tokens = append(tokens, t)
		}
	}
	mint()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(tokens) {
			b.StopTimer()
			mint()
			i = 0
			b.StartTimer()
		}
		call(b, a, http.MethodPost, "/join", tokens[i], body, nil)
		i++
	}
}
