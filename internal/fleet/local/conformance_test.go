//go:build unix

package local

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/usher-gg/usher/contract"
)

// brokenGame is a game server that breaks the contract of docs/game-servers.md on purpose, for
// the conformance recorder to catch: it reports a player before it has a room, heartbeats once
// and then never again, reports its seated player connected twice, a stranger who holds no
// seat, a disconnect of a player it never reported, its player's disconnect twice, then calls
// /shutdown and does not exit.
func brokenGame(ctx context.Context) int {
	bc, err := contract.NewClient(os.Getenv(contract.EnvBridgeURL), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := bc.Ready(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ready:", err)
		return 2
	}
	_ = bc.PlayerConnected(ctx, "early")
	_ = bc.Heartbeat(ctx)
	a, err := bc.Allocation(ctx)
	for err == nil && a.State != contract.StateAllocated {
		a, err = bc.WaitAllocation(ctx, a.Version, 30*time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "allocation:", err)
		return 2
	}
	for _, p := range a.Players {
		_ = bc.PlayerConnected(ctx, p)
		_ = bc.PlayerConnected(ctx, p)
	}
	_ = bc.PlayerConnected(ctx, "stranger")
	_ = bc.PlayerDisconnected(ctx, "nobody", contract.ReasonLeft)
	for _, p := range a.Players {
		_ = bc.PlayerDisconnected(ctx, p, contract.ReasonLeft)
		_ = bc.PlayerDisconnected(ctx, p, contract.ReasonLeft)
	}
	_ = bc.Shutdown(ctx)
	<-ctx.Done() // and stays until killed
	return 0
}

// TestConformanceCatchesABrokenServer proves the recorder on a game server that breaks every
// rule it checks.
func TestConformanceCatchesABrokenServer(t *testing.T) {
	cfg := fastConfig(testGame("broken", "broken"))
	cfg.HeartbeatTimeout, cfg.Conformance = 20*time.Second, true
	fx := runFleet(t, cfg, nil)
	f := fx.f
	fx.createWhenReady(t, "broken", "K7QX", "p1")
	want := []string{RuleConnectedNotAllocated, RuleHeartbeat, RuleConnectedWithoutSeat,
		RuleDisconnectedUnknown, RuleDisconnectedTwice, RuleNoExitAfterShutdown}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []string
		for _, v := range f.Violations() {
			if !slices.Contains(got, v.Rule) {
				got = append(got, v.Rule)
			}
			if v.Game != "broken" || v.Server == "" || v.Detail == "" {
				t.Errorf("violation without its server or detail: %+v", v)
			}
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(r string) bool { return slices.Contains(got, r) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules not reported: %v; reported: %v", missing, f.Violations())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConformanceQuietForAGoodServer: a server that keeps the contract (ready, heartbeats,
// shutdown then exit 0) is never reported.
func TestConformanceQuietForAGoodServer(t *testing.T) {
	cfg := fastConfig(testGame("good", "shutdown-after", envTestAfter+"=1500"))
	cfg.HeartbeatTimeout, cfg.Conformance = 5*time.Second, true
	fx := runFleet(t, cfg, nil)
	eventually(t, 10*time.Second, "the server shut down and exited", func() bool { return fx.exits("good", exitShutdown) >= 1 })
	if v := fx.f.Violations(); len(v) != 0 {
		t.Errorf("violations of a server that keeps the contract: %v", v)
	}
}

// TestConformanceCatchesACrash: exiting without /shutdown is a break of the contract.
func TestConformanceCatchesACrash(t *testing.T) {
	cfg := fastConfig(testGame("crashy", "crash-after-ready"))
	cfg.Conformance = true
	fx := runFleet(t, cfg, nil)
	eventually(t, 10*time.Second, "a crash reported", func() bool {
		return slices.ContainsFunc(fx.f.Violations(), func(v Violation) bool { return v.Rule == RuleExitWithoutShutdown })
	})
}
