// Package testclock is test support: a fake clock that moves on by itself whenever code
// waits on it, so that retries and timeouts run on injected time in no wall time.
package testclock

import (
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// StepWhileWaiting advances clk by step whenever something waits on it (a timer, a
// ticker, a sleep), until the returned stop is called. A wait so ends up to one step late.
func StepWhileWaiting(clk *clocktesting.FakeClock, step time.Duration) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			default:
			}
			if clk.HasWaiters() {
				clk.Step(step)
			} else {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}()
	return func() { close(done); <-finished }
}
