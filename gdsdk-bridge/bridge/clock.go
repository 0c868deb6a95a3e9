package bridge

import "time"

// Clock is the bridge's source of time: the health window, seat timeouts and the terminate
// timeout read it, so tests drive them with a fake instead of sleeping. (The sidecar cannot
// use k8s.io/utils/clock: it depends on nothing outside the standard library.)
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel that receives the time every d, and a func that stops it.
	NewTicker(d time.Duration) (<-chan time.Time, func())
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (systemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
