package e2e

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/internal/app"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/match"
)

// TestAllocationWaitOnInjectedClock: the whole app tells time by the clock it is given
// (app.WithClock): a join that finds no free server keeps trying for --allocation-wait
// of that clock's time, not of the wall's.
func TestAllocationWaitOnInjectedClock(t *testing.T) {
	fake := agonestest.NewServer(t) // no GameServer: no server is ever free
	t0 := time.Now()
	clk := clocktesting.NewFakeClock(t0)
	k, _ := auth.GenerateKey()
	keyPEM, _ := auth.MarshalKey(k)
	h := startServeWith(t, fake, keyPEM, func(c *config.Config) { c.AllocationWait = time.Minute }, app.WithClock(clk))
	tk := h.token("Ann")
	done := make(chan joinOutcome, 1)
	go func() { done <- h.rawJoin(tk, `{"game":"example"}`) }()
	wall := time.Now()
	var o joinOutcome
loop:
	for {
		select {
		case o = <-done:
			break loop
		case <-time.After(time.Millisecond):
			clk.Step(100 * time.Millisecond)
		}
		if time.Since(wall) > 30*time.Second {
			t.Fatalf("no answer after 30s of wall time (%v on the injected clock)", clk.Since(t0))
		}
	}
	if o.err != nil || o.status != 503 || o.code != "no_capacity" {
		t.Fatalf("join = %d %s (%v), want 503 no_capacity", o.status, o.code, o.err)
	}
	// It waited most of the minute on the injected clock, in far less wall time: it gives up
	// when the next wait would end past the minute, and a wait is at most the backoff's cap
	// plus its jitter (1.5 s + 50 %); the clock moves in steps of 100 ms.
	b := match.DefaultBackoff()
	longest := time.Duration(float64(b.Cap)*(1+b.Jitter)) + 100*time.Millisecond
	if waited := clk.Since(t0); waited < time.Minute-longest || waited > time.Minute+time.Second {
		t.Errorf("answered after %v on the injected clock, want the 1m allocation wait less at most one wait (%v)", waited, longest)
	}
	if took := time.Since(wall); took > 20*time.Second {
		t.Errorf("answered after %v of wall time: the wait ran on the wall clock", took)
	}
}
