package godotweb

import (
	"errors"
	"os"
	"sync"
	"testing"
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
		dir, err := DefaultEngineDir()
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
		missing := errors.Is(err, ErrNoEngine) || errors.Is(err, ErrNoChromium)
		if missing && os.Getenv("CI") != "true" {
			tb.Skipf("skipping the real Godot engine test: %v", err)
		}
		tb.Fatalf("godot web runner: %v", err)
	}
	return shared.browser
}
