package e2e

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkConcurrentJoins measures join latency (p50, p99, worst) when many players join
// at once, in usher dev and in usher serve against the fake Agones (allocations served in
// batches every 500 ms, as Agones does by default):
//
//   - N players typing the code of one fresh room of 4 (the host seated): 3 get in
//     (a fleet of 10 servers, a fresh room each round);
//   - 200 players quick-matching on a fleet of 60 servers of 4 seats: all get in.
//
// Run it with: go test ./test/e2e -run '^$' -bench ConcurrentJoins -benchtime 3x
func BenchmarkConcurrentJoins(b *testing.B) {
	for _, mode := range []string{"dev", "serve"} {
		for _, n := range []int{12, 50} {
			b.Run(fmt.Sprintf("%s/%d-into-one-room", mode, n), func(b *testing.B) {
				be := benchBackend(b, mode, 10)
				h := be.h.with(b)
				var all []joinOutcome
				for b.Loop() {
					b.StopTimer()
					host := h.mustJoin(h.token("host").Token, `{"game":"example"}`)
					tokens := h.tokens(n)
					b.StartTimer()
					outs := h.joinAll(tokens, fmt.Sprintf(`{"game":"example","room":%q}`, host.Room))
					b.StopTimer()
					if got := tally(b, outs); got["200"] != 3 {
						b.Fatalf("answers %v, want 3 admitted", got)
					}
					all = append(all, outs...)
					b.StartTimer()
				}
				report(b, all)
			})
		}
		b.Run(mode+"/200-quick-on-60-servers", func(b *testing.B) {
			var all []joinOutcome
			for b.Loop() {
				b.StopTimer()
				be := benchBackend(b, mode, 60)
				h := be.h.with(b)
				tokens := h.tokens(200)
				b.StartTimer()
				outs := h.joinAll(tokens, `{"game":"example","quick":true}`)
				b.StopTimer()
				if got := tally(b, outs); got["200"] != 200 {
					b.Fatalf("answers %v, want all 200 seated", got)
				}
				all = append(all, outs...)
				be.h.stop()
				b.StartTimer()
			}
			report(b, all)
		})
	}
}

func benchBackend(tb testing.TB, mode string, servers int) backend {
	if mode == "dev" {
		return devBackend(tb, servers)
	}
	be, _ := serveBackend(tb, servers)
	return be
}

// report adds the latency percentiles of every join to the benchmark's figures.
func report(b *testing.B, outs []joinOutcome) {
	p50, p99 := latencies(outs)
	worst := time.Duration(0)
	for _, o := range outs {
		worst = max(worst, o.latency)
	}
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op") // wall time per round says nothing here
}
