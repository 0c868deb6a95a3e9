package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/godotpack"
	"github.com/usher-gg/usher/internal/godotweb"
)

// The Godot tests run GDScript for real: the addon, the demo and godot/tests are packed into
// one project and run in the Godot 4.6 web engine in headless Chromium (internal/godotweb).
// godot/tests/main.gd picks the test script from --test=NAME and quits with the number of
// failed checks. They skip without the engine or Chromium, except in CI, where they fail.
// They do not run in parallel: Chromium and the engine take a whole CPU, which would starve the
// timing-sensitive parallel tests of this package (no_capacity under -race).

// runGodot runs godot/tests/NAME_test.gd (see godotweb.RunTest).
func runGodot(t *testing.T, name string, args []string, control http.Handler, extra godotpack.Project) {
	t.Helper()
	godotweb.RunTest(t, "../..", name, args, control, extra)
}

func TestGodotScriptsLoad(t *testing.T) {
	runGodot(t, "load", nil, nil, nil)
}

func TestGodotAddonUnits(t *testing.T) {
	runGodot(t, "addon", nil, nil, nil)
}

// TestGodotClient drives UsherClient against `usher dev` through a forwarder the test page can
// ask (POST /test/cut) to drop every connection, as a network blip would.
func TestGodotClient(t *testing.T) {
	h := startUsher(t, func(c *config.Config) {
		c.Games[0].MaxPlayers = 2
		c.Games[0].Env["USHER_EXAMPLE_EMPTY_TIMEOUT"] = "20s"
	})
	fw := newForwarder(t, strings.TrimPrefix(h.base, "http://"))
	control := http.NewServeMux()
	control.HandleFunc("POST /test/cut", func(w http.ResponseWriter, _ *http.Request) {
		t.Logf("cutting %d connections", fw.cut())
	})
	runGodot(t, "client", []string{"--usher=http://" + fw.addr()}, control, nil)
}

// forwarder relays TCP connections on a loopback port to target, and can drop them all.
type forwarder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newForwarder(tb testing.TB, target string) *forwarder {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	tb.Cleanup(func() {
		ln.Close()
		f.cut()
		f.wg.Wait()
	})
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", f.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		f.track(c, up)
		f.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer f.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

func (f *forwarder) track(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		f.conns[c] = true
	}
}

// cut drops every open connection without a WebSocket close (an abnormal closure, 1006).
func (f *forwarder) cut() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for c := range f.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		if err := c.Close(); err == nil || !errors.Is(err, net.ErrClosed) {
			n++
		}
		delete(f.conns, c)
	}
	return n
}

// TestGodotDemo runs the demo's client scenes against `usher dev`, whose "demo" game is served
// by the example server here (a Godot server cannot listen in the web engine).
func TestGodotDemo(t *testing.T) {
	h := startUsher(t, func(c *config.Config) { c.Games[0].ID = "demo" })
	runGodot(t, "demo", []string{"--usher=" + h.base}, nil, nil)
}

// TestDemoCatalog checks the demo's catalog for `usher dev`: it parses, and runs the demo's
// dedicated server headless from the repository root.
func TestDemoCatalog(t *testing.T) {
	f, err := os.Open("../../godot/demo/usher-dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	games, err := config.ParseCatalog(f, "/usr/bin/usher", "default")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var demo *config.Game
	for i := range games {
		if games[i].ID == "demo" {
			demo = &games[i]
		}
	}
	if demo == nil {
		t.Fatal("no demo game in the catalog")
	}
	want := []string{"godot", "--headless", "--path", "godot/demo", "--", "--server"}
	if !slices.Equal(demo.Command, want) {
		t.Errorf("command = %q, want %q", demo.Command, want)
	}
	if _, err := os.Stat(filepath.Join("../..", demo.Command[3], "project.godot")); err != nil {
		t.Errorf("the command's --path is not a Godot project: %v", err)
	}
}

// TestExampleServerConformance runs the example server under the conformance recorder
// (`usher dev --bridge-conformance`) through a whole room: two players, a message, the same
// player connecting again (4002), everyone leaving, the empty room shutting down and the
// process exiting. The reference server must break no rule.
func TestExampleServerConformance(t *testing.T) {
	t.Parallel()
	h := startUsher(t, func(c *config.Config) { c.BridgeConformance = true })
	alice, bob := h.token("Alice"), h.token("Bob")
	j := h.mustJoin(alice.Token, `{"game":"example"}`)
	ca := h.mustDial(j.ConnectURL)
	readWelcome(t, ca)
	cb := h.mustDial(h.mustJoin(bob.Token, `{"game":"example","room":"`+j.Room+`"}`).ConnectURL)
	readWelcome(t, cb)
	if err := ca.WriteMessage(1, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	readMessage(t, cb)
	ca2 := h.mustDial(h.mustJoin(alice.Token, `{"game":"example","room":"`+j.Room+`"}`).ConnectURL)
	readWelcome(t, ca2)
	if code := closeCode(t, ca, 5*time.Second); code != 4002 {
		t.Errorf("older connection closed with %d, want 4002", code)
	}
	ca2.Close()
	cb.Close()
	// The room empties; the example server shuts down after its empty timeout (3s) and exits.
	eventually(t, 20*time.Second, func() error {
		for _, s := range h.app.Local.Servers() {
			if s.Room == j.Room {
				return fmt.Errorf("room %s still has its server (%s)", j.Room, s.State)
			}
		}
		return nil
	})
	if v := h.app.Local.Violations(); len(v) != 0 {
		t.Errorf("the example server broke the contract: %v", v)
	}
}
