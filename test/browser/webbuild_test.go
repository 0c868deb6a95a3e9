package browser

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/devtest"
	"github.com/usher-gg/usher/internal/godotpack"
)

// TestGodotWebBuild: usher dev serves a catalog game's Godot project as a web build at
// /play/<game>/, with the pinned Godot web engine, and the portal opens it after a join. The
// game — the demo's client half, running for real in the engine — takes the portal's join
// from the tab and connects through Usher, so the game server sees the player. (The demo's
// server half cannot run here: the example server stands in for it.)
func TestGodotWebBuild(t *testing.T) {
	engine, err := godotpack.DefaultEngineDir()
	if err == nil {
		err = godotpack.CheckEngine(engine)
	}
	if err != nil {
		if errors.Is(err, godotpack.ErrNoEngine) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	chromium := chromiumPath(t)
	u := devtest.Start(t, func(c *config.Config) {
		g := c.Games[0]
		g.ID, g.Name, g.WebClient, g.WebBuild = "demo", "Usher Demo", "", "../../godot/demo"
		// The engine takes seconds to load: the room must wait for its player longer than the
		// example game's 3 s in these tests.
		g.Env = maps.Clone(g.Env)
		g.Env["USHER_EXAMPLE_EMPTY_TIMEOUT"] = "60s"
		c.Games = append(c.Games, g)
	})

	var games struct {
		Games []struct {
			ID        string `json:"id"`
			WebClient string `json:"web_client"`
			Players   int    `json:"players"`
		} `json:"games"`
	}
	demo := func() (webClient string, players int) {
		t.Helper()
		resp, err := http.Get(u.Base + "/games")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&games); err != nil {
			t.Fatal(err)
		}
		for _, g := range games.Games {
			if g.ID == "demo" {
				return g.WebClient, g.Players
			}
		}
		t.Fatal("no demo game in GET /games")
		return "", 0
	}
	if wc, _ := demo(); wc != "/play/demo/" {
		t.Fatalf("the demo's web_client = %q, want /play/demo/", wc)
	}
	for _, f := range []struct{ path, ctype string }{{"/play/demo/", "text/html"}, {"/play/demo/index.wasm", "application/wasm"}, {"/play/demo/game.pck", "application/octet-stream"}} {
		resp, err := http.Get(u.Base + f.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), f.ctype) {
			t.Fatalf("GET %s: %d %s", f.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); csp == "" {
			t.Errorf("GET %s: no Content-Security-Policy", f.path)
		}
	}

	// Chromium with a software GL context, which the engine needs.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("use-angle", "swiftshader"), chromedp.Flag("enable-unsafe-swiftshader", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 860))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	go func() { // what the game prints, for the test's log
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			t.Logf("console: %s", m.String())
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(u.Base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.game[data-game="demo"] .create`)),
		chromedp.SendKeys(chromedp.CSS("#name"), "Alice"),
		chromedp.Click(chromedp.CSS(`.game[data-game="demo"] .create`))); err != nil {
		t.Fatalf("create a demo room in the portal: %v", err)
	}
	devtest.Eventually(t, 60*time.Second, func() error {
		if _, n := demo(); n != 1 {
			return errors.New("the game server does not see the player yet")
		}
		return nil
	})
	if path, err := chromedp.Run(ctx, chromedp.Evaluate[string]("location.pathname")); err != nil || path != "/play/demo/" {
		t.Errorf("the page is %q (%v), want /play/demo/", path, err)
	}
}
