package godotweb

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/godotpack"
)

// shared is the one Chromium of a test binary, started by the first ForTest.
var shared struct {
	once    sync.Once
	browser *Browser
	err     error
}

// ForTest returns a Browser for tests, shared by the tests of one binary (Chromium starts
// once; each run gets its own tab and page server). When the engine or Chromium is missing
// the test is skipped with what to install, except in CI (CI=true), where it fails: CI
// installs both (.ci/run).
func ForTest(tb testing.TB) *Browser {
	tb.Helper()
	shared.once.Do(func() {
		dir, err := godotpack.DefaultEngineDir()
		if err != nil {
			shared.err = err
			return
		}
		chromium, err := FindChromium()
		if err != nil {
			shared.err = err
			return
		}
		shared.browser, shared.err = NewBrowser(dir, chromium)
	})
	if err := shared.err; err != nil {
		missing := errors.Is(err, godotpack.ErrNoEngine) || errors.Is(err, ErrNoChromium)
		if missing && os.Getenv("CI") != "true" {
			tb.Skipf("skipping the real Godot engine test: %v", err)
		}
		tb.Fatalf("godot web runner: %v", err)
	}
	return shared.browser
}

// TestProject is the project the GDScript tests run in: the demo (godot/demo) with the addon
// (godot/addons) and the tests (godot/tests, at res://tests/) of the repository at root,
// starting in the tests' main scene, which runs res://tests/NAME_test.gd for --test=NAME.
func TestProject(root string) (godotpack.Project, error) {
	p := godotpack.Project{}
	for _, d := range []struct{ dir, prefix string }{
		{"godot/demo", ""},
		{"godot/addons", "addons"},
		{"godot/tests", "tests"},
	} {
		if err := p.AddDir(filepath.Join(root, d.dir), d.prefix); err != nil {
			return nil, err
		}
	}
	project := string(p["project.godot"])
	if project == "" {
		return nil, errors.New("godot/demo has no project.godot")
	}
	mainScene := regexp.MustCompile(`(?m)^run/main_scene=.*$`)
	p["project.godot"] = []byte(mainScene.ReplaceAllString(project, `run/main_scene="res://tests/main.tscn"`))
	return p, nil
}

// RunTest runs the GDScript test res://tests/NAME_test.gd of TestProject(root), plus the files
// of extra, with args on its command line and control serving /test/ on the page's origin.
// What the game prints goes to the test log; a failed check, a GDScript error or the timeout
// fails the test.
func RunTest(t *testing.T, root, name string, args []string, control http.Handler, extra godotpack.Project) {
	t.Helper()
	b := ForTest(t)
	p, err := TestProject(root)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		p[k] = v
	}
	opts := Options{
		Args:    append([]string{"--test=" + name}, args...),
		Timeout: 2 * time.Minute,
		Handler: control,
		OnLine:  func(line string) { t.Log(line) },
	}
	res, err := b.Run(context.Background(), p, opts)
	if errors.Is(err, ErrEngineCrash) {
		// The engine's own crash, which follows the heap's layout, not the code under test:
		// run once more with one file more in the pack, which moves the layout. A second
		// crash fails the test.
		t.Logf("godot %s: %v\nrunning once more with the pack's layout changed", name, err)
		p["zz_layout.txt"] = []byte("changes the engine's heap layout: see ErrEngineCrash\n")
		res, err = b.Run(context.Background(), p, opts)
	}
	if err != nil {
		t.Fatalf("godot %s: %v", name, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("godot %s: exit code %d (failed checks above)", name, res.ExitCode)
	}
	if !strings.Contains(strings.Join(res.Output, "\n"), "TEST "+name+":") {
		t.Fatalf("godot %s: the test did not report", name)
	}
}
