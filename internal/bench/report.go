package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Report file names, in Config.Out.
const (
	ReportMarkdown = "bench-report.md"
	ReportJSON     = "bench-report.json"
)

// WriteReport writes bench-report.json and bench-report.md into dir.
func WriteReport(rep *Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportJSON), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ReportMarkdown), []byte(Markdown(rep)), 0o644)
}

// Markdown renders the report for people.
func Markdown(rep *Report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m, c := rep.Machine, rep.Config
	p("# Usher bench report\n\n")
	p("%s, %s. `%s`\n\n", rep.Started.Format(time.RFC3339), rep.Finished.Sub(rep.Started).Round(time.Second), rep.Command)
	p("| machine | |\n|---|---|\n")
	p("| CPU | %s, %d cores |\n| memory | %d MiB |\n| kernel / OS | %s / %s |\n| Go | %s |\n| nginx | %s |\n",
		m.CPUModel, m.Cores, m.MemoryMiB, m.Kernel, m.OS, m.GoVersion, m.Nginx)
	p("| load average (1/5/15 min) | start %.2f %.2f %.2f · end %.2f %.2f %.2f · 1-min during: %s |\n",
		m.LoadStart[0], m.LoadStart[1], m.LoadStart[2], m.LoadEnd[0], m.LoadEnd[1], m.LoadEnd[2], floats(m.LoadDuring))
	p("| open files | %d |\n", m.FileLimit)
	if m.Revision != "" {
		p("| revision | %s |\n", m.Revision)
	}
	rate := rateLimit(c)
	runDefault, _ := c.profileNames()
	if runDefault {
		p("\n**Setup.** %d players per path, %d-byte binary messages, echoed by the example game server "+
			"(USHER_EXAMPLE_ECHO=1, %d rooms). Light: %.0f message/s per player; paced: %.0f messages/s per player; each for %s (after %s warm-up). "+
			"Saturated: one message in flight per player, at most %.0f/s each, for %s. %d rounds, paths rotated "+
			"each round; a fresh Usher and nginx every round.%s nginx `worker_processes %s`. Usher's limits "+
			"enforced: message rate %s, message size 64 KiB. Generator: %d epoll workers.\n\n",
			c.Connections, c.Size, echoServers(c.Connections), c.LightRate, c.Rate, c.Duration, c.Warmup,
			c.SaturateRate, c.Saturate, c.Rounds, interleaveNote(c), c.NginxWorkers, rate, c.GenWorkers)
	} else {
		p("\n")
	}
	store := "in memory"
	if c.RedisURL != "" {
		store = "in Redis (`--redis-url`)"
	}
	p("**Shared state** (tickets, rate limits, holds, room-code claims): %s.\n\n", store)
	for _, n := range rep.Notes {
		p("> %s\n\n", n)
	}

	paths := []string{}
	for _, k := range []string{PathDirect, PathUsher, PathNginx} {
		if _, ok := rep.Paths[k]; ok {
			paths = append(paths, k)
		}
	}
	if len(paths) > 0 {
		p("## Relay, medians of %d rounds\n\n", c.Rounds)
		p("| |")
		for _, k := range paths {
			p(" %s |", k)
		}
		p("\n|---|%s\n", strings.Repeat("---:|", len(paths)))
		row := func(name string, f func(PathSummary) string) {
			p("| %s |", name)
			for _, k := range paths {
				p(" %s |", f(rep.Paths[k]))
			}
			p("\n")
		}
		row("light: latency p50 / p99 / p99.9 (µs)", func(s PathSummary) string {
			return fmt.Sprintf("%s / %s / %s", num(s.LightP50US), num(s.LightP99US), num(s.LightP999US))
		})
		row("light: added vs direct p50 / p99 / p99.9 (µs)", func(s PathSummary) string {
			if s.LightAddedP50US == nil {
				return "—"
			}
			return fmt.Sprintf("%s / %s / %s", num(*s.LightAddedP50US), num(*s.LightAddedP99US), num(*s.LightAddedP999US))
		})
		row("paced: round trips/s", func(s PathSummary) string { return num(s.PacedRoundTripsPerSecond) })
		row("paced: frames per hop CPU-second ¹", func(s PathSummary) string { return num(s.PacedFramesPerCPUSecond) })
		row("… vs direct / vs nginx", func(s PathSummary) string { return ratios(s.PacedVsDirect, s.PacedVsNginx) })
		row("saturated: round trips/s (vs direct) ²", func(s PathSummary) string {
			if s.SaturatedThroughputVsDirect == nil {
				return num(s.SaturatedRoundTripsPerSecond)
			}
			return num(s.SaturatedRoundTripsPerSecond) + opt(" (", s.SaturatedThroughputVsDirect, "×)")
		})
		row("saturated: frames per hop CPU-second", func(s PathSummary) string { return num(s.SaturatedFramesPerCPUSecond) })
		row("… vs direct / vs nginx", func(s PathSummary) string { return ratios(s.SaturatedVsDirect, s.SaturatedVsNginx) })
		row("paced: latency p50 / p99 / p99.9 (µs)", func(s PathSummary) string {
			return fmt.Sprintf("%s / %s / %s", num(s.P50US), num(s.P99US), num(s.P999US))
		})
		row("paced: added vs direct p50 / p99 / p99.9 (µs)", func(s PathSummary) string {
			if s.AddedP50US == nil {
				return "—"
			}
			return fmt.Sprintf("%s / %s / %s", num(*s.AddedP50US), num(*s.AddedP99US), num(*s.AddedP999US))
		})
		row("CPU per round trip, all processes (µs)", func(s PathSummary) string { return num(s.CPUPerRoundTripUS) })
		row("load generator CPU (cores)", func(s PathSummary) string { return fmt.Sprintf("%.2f", s.GeneratorCores) })
		row("RSS per connection, idle / under load (KB) ³", func(s PathSummary) string {
			if s.Path == PathDirect {
				return "—"
			}
			return fmt.Sprintf("%.1f / %.1f", s.IdleBytesPerConn/1024, s.LoadBytesPerConn/1024)
		})
		row("… idle, after a full GC (KB)", func(s PathSummary) string { return opt("", kb(s.IdleLiveBytesPerConn), "") })
		row("connect storm: connects/s, p50 / p99 (ms)", func(s PathSummary) string {
			return fmt.Sprintf("%s, %s / %s", num(s.ConnectsPerSecond), num(s.ConnectP50MS), num(s.ConnectP99MS))
		})
		row("heap allocations per relayed frame", func(s PathSummary) string { return opt("", s.AllocsPerFrame, "") })
		row("goroutines per connection", func(s PathSummary) string { return opt("", s.GoroutinesPerConn, "") })
		row("unexpected closes / failed connects / lost", func(s PathSummary) string {
			return fmt.Sprintf("%d / %d / %d", s.Unexpected, s.Failures, s.Lost)
		})
		p("\n¹ The hop is the process that relays: Usher, nginx (master and workers), or for direct the echo " +
			"game servers. A proxy relays two frames per round trip, an echo server one; each is one read and " +
			"one write of a frame. CPU from /proc/<pid>/stat (10 ms ticks).\n" +
			"² Saturated throughput shares two cores between the generator, the game servers and the proxy: a " +
			"path with a proxy has a third process to feed, so it cannot match direct here; frames per CPU-second " +
			"is the fair comparison.\n" +
			"³ RSS growth of the hop from just before the connect storm to all players connected and idle " +
			"(--settle later), and to the middle of the paced window, divided by the players; a fresh Usher and " +
			"nginx each round. Not shown for direct: the game servers serve every path of a round.\n\n")
	}
	if len(rep.Profiles) > 0 {
		profilesMarkdown(&b, rep)
	}
	if a := rep.API; a != nil {
		p("## API through Usher (usher path), medians\n\n")
		p("| step | per second (wall) | per Usher CPU-second | p50 (ms) | p99 (ms) |\n|---|---:|---:|---:|---:|\n")
		p("| token (`POST /request_token`) | %s | %s | %s | %s |\n", num(a.TokensPerSecond), num(a.TokensPerCPUSecond), num(a.TokenP50MS), num(a.TokenP99MS))
		p("| join by code (`POST /join`) | %s | %s | %s | %s |\n", num(a.JoinsPerSecond), num(a.JoinsPerCPUSecond), num(a.JoinP50MS), num(a.JoinP99MS))
		p("| connect (`/connect` upgrade + dial) | %s | %s | %s | %s |\n", num(a.ConnectsPerSecond), num(a.ConnectsPerCPUSecond), num(a.ConnectP50MS), num(a.ConnectP99MS))
		p("| whole flow (token + join + connect) | %s | | | |\n\n", num(a.FlowsPerSecond))
		p("Tokens and joins: %d requests in flight; connects: %d at once. Errors: %d.\n\n", c.HTTPConcurrency, c.ConnectConcurrency, a.Errors)
	}
	if s := rep.Soak; s != nil {
		p("## Soak (%d players through Usher)\n\n", s.Connections)
		if cr := s.Cycles; cr != nil {
			p("| cycle | connected | connects/s | p99 (ms) | RSS connected (MB) | goroutines connected | RSS after, not collected (MB) | … collected (MB) | live heap (MB) | goroutines after |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for i, cy := range cr.Cycles {
				p("| %d | %d | %s | %s | %.1f | %.0f | %.1f | %.1f | %.1f | %.0f |\n", i+1, cy.Connected, num(cy.ConnectsPerSecond), num(cy.ConnectP99MS),
					mb(cy.RSSConnected), cy.GoroutinesConnected, mb(cy.RSSIdle), mb(cy.RSSSettled), mb(cy.HeapLive), cy.GoroutinesIdle)
			}
			p("\nGoroutines before the first cycle %.0f, after cycle 1 (the baseline: pools warmed) %.0f, after the last %.0f. "+
				"Growth over cycle 1 (largest of the later cycles): RSS connected %+.1f %%; after disconnect, once collected "+
				"(two full GCs, which empty sync.Pools, and free memory returned to the OS: what Usher still holds) %+.1f %%, "+
				"its live heap %+.1f %%; after disconnect, not collected %+.1f %% (garbage and free memory the runtime has not "+
				"returned yet: how much depends on where the collector's cycle stood, so it is shown, not judged). "+
				"(The collection after each cycle also means every cycle starts from a settled heap.)\n\n",
				cr.GoroutinesBefore, cr.GoroutinesBase, cr.GoroutinesEnd, cr.RSSConnectedGrowthPct, cr.RSSSettledGrowthPct,
				cr.HeapLiveGrowthPct, cr.RSSIdleGrowthPct)
		}
		if h := s.Hold; h != nil {
			codes := ""
			if len(h.CloseCodes) > 0 {
				codes = fmt.Sprintf(" (close codes %v)", h.CloseCodes)
			}
			p("Hold: %d connected, %d still open after %s at %.0f round trips/s (%.1f Usher CPU-s, %.2f cores); %d unexpected closes%s; "+
				"RSS %.1f MB at start, %.1f MB max, %.1f MB at end; latency p50 %s µs, p99 %s µs, p99.9 %s µs.\n\n",
				h.Connected, h.Held, fmtDur(h.Seconds), h.MessagesPerSecond, h.CPUSeconds, h.CPUSeconds/max(h.Seconds, 1), h.Unexpected, codes,
				mb(h.RSSStart), mb(h.RSSMax), mb(h.RSSEnd), num(h.Latency.P50), num(h.Latency.P99), num(h.Latency.P999))
		}
	}
	p("## Targets (../shared/PERFORMANCE.md)\n\n| # | what | target | measured | |\n|---|---|---|---|---|\n")
	for _, t := range rep.Targets {
		p("| %s | %s | %s | %s | %s |\n", t.ID, t.What, t.Goal, t.Measured, t.Status)
	}
	if len(rep.Runs) > 0 {
		p("\n## Every run\n\n| round | path | connects/s | light p50 / p99 (µs) | paced rt/s | frames/hop CPU-s | p50 / p99 / p99.9 (µs) | sat. rt/s | sat. frames/CPU-s | idle KB/conn | unexpected | problems |\n|---:|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|\n")
		for _, r := range rep.Runs {
			var prt, pf, lat, srt, sf, light string
			if r.Light != nil {
				light = fmt.Sprintf("%s / %s", num(r.Light.Latency.P50), num(r.Light.Latency.P99))
			}
			if r.Paced != nil {
				prt, pf = num(r.Paced.RoundTripsPerSecond), num(r.Paced.FramesPerCPUSecond)
				lat = fmt.Sprintf("%s / %s / %s", num(r.Paced.Latency.P50), num(r.Paced.Latency.P99), num(r.Paced.Latency.P999))
			}
			if r.Saturated != nil {
				srt, sf = num(r.Saturated.RoundTripsPerSecond), num(r.Saturated.FramesPerCPUSecond)
			}
			p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %d | %s |\n", r.Round+1, r.Path, num(r.Connect.PerSecond), light, prt, pf, lat, srt, sf,
				r.IdleBytesPerConn/1024, r.Unexpected, strings.Join(r.Problems, "; "))
		}
	}
	return b.String()
}

func num(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f >= 100 || f <= -100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10 || f <= -10:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

func opt(pre string, f *float64, post string) string {
	if f == nil {
		return "—"
	}
	return pre + num(*f) + post
}

func ratios(d, n *float64) string {
	if d == nil && n == nil {
		return "—"
	}
	return opt("", d, "×") + " / " + opt("", n, "×")
}

func floats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmt.Sprintf("%.2f", f)
	}
	if len(s) == 0 {
		return "—"
	}
	return strings.Join(s, " ")
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// profilesMarkdown renders the game profiles: per profile, every round of every path, then the
// medians.
func profilesMarkdown(b *strings.Builder, rep *Report) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	c := rep.Config
	p("## Game profiles\n\n")
	p("Each profile: %d-byte binary messages at a fixed rate per player, all the time; one window of %s (after %s warm-up) "+
		"per path per round, %d rounds, paths rotated each round; a fresh Usher, game servers and nginx per profile and round.%s "+
		"Latency is measured at every player that receives a message, from the send time it carries. "+
		"*Added* is the path's latency minus direct's in the same round; *Usher − nginx* is Usher's added latency minus "+
		"nginx's (≤ 0: Usher added no more than nginx). Frames per hop CPU-second: a proxy relays one frame up and one "+
		"down per round trip (echo), one up and K−1 down per message (rooms of K); the direct path's hop is the game "+
		"servers, one frame per message received. The median rows are medians over the rounds (lost and problems: totals). "+
		"nginx `worker_processes %s`. Usher's limits enforced: message rate %s, message size 64 KiB. Generator: %d epoll workers.\n\n",
		c.Size, c.Duration, c.Warmup, c.Rounds, interleaveNote(c), c.NginxWorkers, rateLimit(c), c.GenWorkers)
	for _, pr := range rep.Profiles {
		p("### %s: %s\n\n", pr.Name, pr.describe(c.Connections))
		p("| round | path | p50 / p99 / p99.9 (µs) | added vs direct p50 / p99 / p99.9 (µs) | Usher − nginx p50 / p99 / p99.9 (µs) " +
			"| frames / hop CPU-s | vs direct / vs nginx | hop cores | received / expected | lost | problems |\n")
		p("|---:|---|---|---|---|---:|---|---:|---|---:|---|\n")
		row := func(round string, f ProfileFigures) {
			var trouble []string
			if f.Unexpected > 0 {
				trouble = append(trouble, fmt.Sprintf("%d unexpected closes", f.Unexpected))
			}
			if f.Failures > 0 {
				trouble = append(trouble, fmt.Sprintf("%d failed connects", f.Failures))
			}
			if f.Misrouted > 0 {
				trouble = append(trouble, fmt.Sprintf("%d misrouted", f.Misrouted))
			}
			if len(f.Problems) > 0 {
				trouble = f.Problems // they name the above too
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %d / %d | %d | %s |\n", round, f.Path,
				triple(&f.P50US, &f.P99US, &f.P999US), triple(f.AddedP50US, f.AddedP99US, f.AddedP999US),
				triple(f.VsNginxP50US, f.VsNginxP99US, f.VsNginxP999US), num(f.FramesPerCPUSecond),
				ratios(f.FramesVsDirect, f.FramesVsNginx), num(f.HopCores), f.Received, f.Expected, f.Lost, strings.Join(trouble, "; "))
		}
		for _, r := range pr.Rounds {
			for _, f := range r.Paths {
				row(strconv.Itoa(r.Round+1), f)
			}
		}
		for _, f := range pr.Medians {
			row("median", f)
		}
		p("\n")
		var notes []string
		if v := pr.UsherVsNginx; v != nil {
			notes = append(notes, fmt.Sprintf("Usher's added latency ≤ nginx's at p50 in %d of %d rounds, at p99 in %d of %d; "+
				"frames per CPU-second ≥ %.1f× nginx's in %d of %d.", v.P50AtMost, v.Rounds, v.P99AtMost, v.Rounds, framesTarget, v.FramesAtLeast, v.Rounds))
		}
		for _, f := range pr.Medians {
			if f.Path == PathUsher && f.AllocsPerFrame != nil {
				notes = append(notes, "Usher's heap allocations per relayed frame (median): "+num(*f.AllocsPerFrame)+".")
			}
			if f.Path == PathDirect {
				notes = append(notes, "Load generator: "+num(f.GeneratorCores)+" cores (direct, median).")
			}
		}
		if note := apiNote(pr.Runs); note != "" {
			notes = append(notes, note)
		}
		if len(notes) > 0 {
			p("%s\n\n", strings.Join(notes, " "))
		}
		if t := turnsLine(pr.Runs, func(t Turn) float64 { return t.P99 }); t != "" {
			p("p99 of each turn (µs), in order: %s.\n\n", t)
			p("Time the hop's threads waited for a CPU in each turn (ms; runnable, not running; all of nginx's processes, all game "+
				"servers for direct): %s.\n\n", turnsLine(pr.Runs, func(t Turn) float64 { return t.HopRunQueueMS }))
		}
	}
}

// turnsLine lists a figure of each interleaved run's turns (its p99: which turn made a round's
// tail), by round and path ("" when the windows were not interleaved).
func turnsLine(runs []PathRun, figure func(Turn) float64) string {
	var parts []string
	for _, r := range runs {
		if r.Game == nil || len(r.Game.Turns) == 0 {
			continue
		}
		var ps []string
		for _, l := range r.Game.Turns {
			ps = append(ps, num(figure(l)))
		}
		parts = append(parts, fmt.Sprintf("round %d %s %s", r.Round+1, r.Path, strings.Join(ps, " / ")))
	}
	return strings.Join(parts, "; ")
}

// rateLimit is Usher's message rate limit in words.
func rateLimit(c Config) string {
	switch {
	case c.MaxMessageRate == 0:
		return "unlimited"
	case c.MaxMessageRate > 0:
		return fmt.Sprintf("%d/s", c.MaxMessageRate)
	}
	return "Usher's default (200/s, burst 400)"
}

// triple renders three latencies as "a / b / c", or "—" when there are none.
func triple(a, b, c *float64) string {
	if a == nil || b == nil || c == nil {
		return "—"
	}
	return num(*a) + " / " + num(*b) + " / " + num(*c)
}

// apiNote sums up the API traffic Usher served beside the relay (--api-rate) in a profile's
// runs: medians of the rounds' p50 and p99, totals of requests and errors.
func apiNote(runs []PathRun) string {
	var p50, p99 []float64
	var rate float64
	var n, errs int
	for _, r := range runs {
		if r.Path != PathUsher || r.Game == nil || r.Game.API == nil {
			continue
		}
		a := r.Game.API
		rate, n, errs = a.Rate, n+a.Requests, errs+a.Errors
		p50, p99 = append(p50, a.P50MS), append(p99, a.P99MS)
	}
	if len(p50) == 0 {
		return ""
	}
	return fmt.Sprintf("During Usher's windows the API also served %s token requests per second (`--api-rate`): p50 %s ms, p99 %s ms "+
		"(medians of the rounds), %d requests, %d errors; Usher's CPU and allocations above include them.",
		strconv.FormatFloat(rate, 'f', -1, 64), num(median(p50)), num(median(p99)), n, errs)
}

// interleaveNote says how the paths' windows were taken, when they were interleaved.
func interleaveNote(c Config) string {
	if c.Interleave <= 0 || len(c.Paths) < 2 {
		return ""
	}
	return fmt.Sprintf(" **Interleaved** (`--interleave %s`): in each round every path's players are connected at once, "+
		"each path with game servers of its own, and the paths take turns of %s through each window, after a warm-up of whole "+
		"rounds of turns (at least %s per path), until each had its full window; CPU is read at every turn and charged to its path.",
		c.Interleave, c.Interleave, c.Warmup)
}
