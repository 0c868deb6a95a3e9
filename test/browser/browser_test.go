// Package browser tests the pages people open — the portal, the example game's web client and
// the admin page — in a real headless Chromium (Debian's chromium), driven by chromedp,
// against a real `usher dev` with real example game servers. Each test saves screenshots at
// desktop and phone widths under test/browser/out/ (-update-images copies them to docs/images/).
//
// Without Chromium the tests skip locally (with what to install) and fail in CI (CI=true).
package browser

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usher-gg/usher/internal/devtest"
)

var updateImages = flag.Bool("update-images", false, "copy the screenshots to docs/images/")

func TestMain(m *testing.M) { devtest.Main(m) }

// chromiumPath finds the browser: $CHROME, or chromium / chromium-browser / google-chrome on PATH.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "headless Chromium is not installed: apt-get install chromium (or set CHROME to a Chrome binary)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// browser is one headless Chromium; tab opens isolated tabs in it (their own cookies and storage).
type browser struct {
	t     *testing.T
	alloc context.Context
	root  context.Context

	mu       sync.Mutex
	problems []string // exceptions and Content-Security-Policy violations seen in any tab
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root, chromedp.Navigate("about:blank")); err != nil {
		cancelRoot()
		cancelAlloc()
		t.Fatalf("start %s: %v", path, err)
	}
	b := &browser{t: t, alloc: alloc, root: root}
	t.Cleanup(func() {
		cancelRoot()
		cancelAlloc()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("browser: %s", p)
		}
	})
	return b
}

// tab is one page in its own browser context, watched for exceptions and CSP violations.
type tab struct {
	b   *browser
	t   testing.TB
	ctx context.Context
}

// tab opens a tab for test t (the browser's test or a subtest of it).
func (b *browser) tab(t testing.TB) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(tcancel)
	if err := chromedp.Do(tctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.problems = append(b.problems, m.String()+" at "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	return &tab{b: b, t: t, ctx: tctx}
}

// do runs steps, failing the test with what was being done.
func (t *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	t.t.Helper()
	if err := chromedp.Do(t.ctx, steps...); err != nil {
		t.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS waits until a JavaScript expression is truthy, across page navigations.
func (t *tab) waitJS(what, expr string) {
	t.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(t.ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.t.Fatalf("waiting for %s (%s): not true within 20s (last error: %v)", what, expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text returns the text of the first element matching a CSS selector.
func (t *tab) text(sel string) string {
	t.t.Helper()
	s, err := chromedp.Run(t.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval returns a JavaScript expression's value as a string.
func (t *tab) eval(expr string) string {
	t.t.Helper()
	s, err := chromedp.Run(t.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.t.Fatalf("eval %s: %v", expr, err)
	}
	return s
}

// js makes a JavaScript string literal.
func js(s string) string { return fmt.Sprintf("%q", s) }

// shoot saves the page at desktop width and at a phone's, as name-desktop.png
// and name-phone.png under out/ (and docs/images/ with -update-images).
func (t *tab) shoot(name string) {
	t.t.Helper()
	for _, v := range []struct {
		suffix string
		set    chromedp.Action[chromedp.Void]
	}{
		{"desktop", chromedp.EmulateViewport(1280, 860)},
		// A phone 390 CSS pixels wide (an iPhone 13's), drawn at 2x to keep the files small.
		{"phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)},
	} {
		img, err := chromedp.Run(t.ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
			if _, err := v.set(ctx, tg); err != nil {
				return nil, err
			}
			time.Sleep(300 * time.Millisecond) // let the layout settle
			return chromedp.FullScreenshot(100)(ctx, tg)
		})
		if err != nil {
			t.t.Fatalf("screenshot %s: %v", name, err)
		}
		save(t.t, name+"-"+v.suffix+".png", img)
	}
	t.do("reset the viewport", chromedp.EmulateReset())
}

func save(tb testing.TB, name string, img []byte) {
	tb.Helper()
	for _, dir := range outDirs() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), img, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func outDirs() []string {
	dirs := []string{"out"}
	if *updateImages {
		dirs = append(dirs, filepath.Join("..", "..", "docs", "images"))
	}
	return dirs
}
