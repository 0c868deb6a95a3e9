// Package devtest is test support: it runs the whole of `usher dev` in the test process, on
// loopback ports, with real example game server processes (the test binary itself, re-run
// as the example server). Tests of the pages, the terminal client and the metrics use it.
//
// A test package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { devtest.Main(m) }
package devtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/app"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/exampleserver"
	"github.com/usher-gg/usher/internal/testlog"
)

// asExample makes the test binary act as the example game server when the local fleet
// starts it (the same code `usher example-server` runs).
const asExample = "USHER_DEVTEST_AS_EXAMPLE_SERVER"

// Main runs the tests, or the example game server when the local fleet started this binary.
func Main(m *testing.M) {
	if os.Getenv(asExample) == "1" {
		os.Exit(exampleserver.Main())
	}
	os.Exit(m.Run())
}

// Usher is a running `usher dev`.
type Usher struct {
	App   *app.App
	Base  string // http://127.0.0.1:port of the public API
	Admin string // http://127.0.0.1:port of the admin listener
	Token string // the admin token
	Log   *testlog.Buffer
}

// AdminToken is the admin token Start configures unless edit sets another.
const AdminToken = "devtest-admin-token-0123456789"

// Start runs Usher like `usher dev` with the example game and generous rate limits, and
// stops it when the test ends. edit may change the config first. Its log is kept in Log
// (and copied to stderr with -v).
func Start(tb testing.TB, edit func(*config.Config)) *Usher {
	tb.Helper()
	cfg := config.Default(config.ModeDev)
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AdminToken = AdminToken
	g := config.ExampleGame(os.Args[0])
	g.Command = []string{os.Args[0]}
	g.Env = map[string]string{asExample: "1", "USHER_EXAMPLE_EMPTY_TIMEOUT": "3s", "USHER_EXAMPLE_HEARTBEAT": "500ms"}
	g.Buffer, g.MaxServers = 2, 8
	cfg.Games = []config.Game{g}
	cfg.AllocationWait = 5 * time.Second
	cfg.TokenRate, cfg.JoinRate, cfg.CreateRate = 10000, 10000, 10000
	cfg.ShutdownTimeout = 5 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	buf := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(cfg, log)
	if err != nil {
		tb.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	u := &Usher{App: a, Base: "http://" + a.PublicAddr(), Admin: "http://" + a.AdminAddr(), Token: cfg.AdminToken, Log: buf}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			tb.Errorf("Usher did not stop within 20s")
		}
		if testing.Verbose() {
			tb.Logf("usher log:\n%s", buf.String())
		}
	})
	Eventually(tb, 15*time.Second, func() error {
		resp, err := http.Get(u.Base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		for _, s := range a.Local.Servers() {
			if s.State == "Ready" {
				return nil
			}
		}
		return fmt.Errorf("no ready game server yet")
	})
	return u
}

// Eventually polls f until it returns nil, failing the test if within passes first.
func Eventually(tb testing.TB, within time.Duration, f func() error) {
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
