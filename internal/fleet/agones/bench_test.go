package agones

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
)

// BenchmarkJoinAllocation times joins that each take a seat with one allocation
// (performance target P10: Usher's own overhead per Agones allocation ≤ 5 ms), against
// agonestest's allocator over loopback HTTP serving each request as it arrives (no batch
// wait), with no gathering window (Coalesce < 0; the default 10 ms window is a wait by
// design, not work) and no client-side rate limit (QPS < 0; agones.DefaultQPS would make
// this measure the limiter). A join's time here is Usher's work — the room lookup, the
// queue, the request's encoding, the answer's decoding and the seat bookkeeping — plus the
// fake's own work and the HTTP round trip, so Usher's overhead is at most this.
//
//	go test -run '^$' -bench JoinAllocation -benchmem ./internal/fleet/agones/
func BenchmarkJoinAllocation(b *testing.B) {
	const perRoom = 64 // seats per room: each allocation carries the room's whole players List
	fake := agonestest.NewServer(b)
	fake.SetBatchWait(0)
	game := Game{ID: "bench", MaxPlayers: perRoom, PortName: "ws"}
	rooms := b.N/(perRoom-1) + 2 // the last one for the warm-up join
	for i := range rooms {
		fake.Add(asRoom(serverOf(game, fmt.Sprintf("b-%d", i)), game.ID, roomCode(i), false, "host"))
	}
	client, err := agonesv1.NewClient(&rest.Config{Host: fake.URL(), QPS: -1})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Games: []Game{game}, Coalesce: -1}
	f, err := New(cfg, client, metrics.New(prometheus.NewRegistry()), clock.RealClock{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	}()
	eventually(b, f.Synced)
	// One join outside the timing: the first allocation after the fleet starts is sometimes
	// answered as a retry (one backoff wait, 0.4–0.6 s) against the fake (docs/performance.md).
	if _, err := f.Join(ctx, "bench", roomCode(rooms-1), "warm-up"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := f.Join(ctx, "bench", roomCode(i/(perRoom-1)), fmt.Sprintf("p-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	gs, _ := fake.Get("default", "b-0")
	if got := len(seats(gs)); got != min(perRoom, b.N+1) {
		b.Fatalf("room 0 holds %d players, want %d", got, min(perRoom, b.N+1))
	}
	if sent := len(fake.Requests()); sent < b.N+1 {
		b.Fatalf("%d allocations sent for %d joins", sent, b.N+1)
	}
}

// roomCode is the i-th room's code, four characters of match.CodeAlphabet.
func roomCode(i int) string {
	c := make([]byte, 4)
	for k := range c {
		c[len(c)-1-k] = match.CodeAlphabet[i%len(match.CodeAlphabet)]
		i /= len(match.CodeAlphabet)
	}
	return string(c)
}
