package bench

import (
	"fmt"
	"math"
	"slices"
)

// PathSummary is a path's medians over the rounds. Ratios are taken within each round, then
// their median is reported.
type PathSummary struct {
	Path                         string   `json:"path"`
	Rounds                       int      `json:"rounds"`
	PacedRoundTripsPerSecond     float64  `json:"paced_round_trips_per_second"`
	PacedFramesPerCPUSecond      float64  `json:"paced_frames_per_cpu_second"`
	PacedVsDirect                *float64 `json:"paced_frames_per_cpu_second_vs_direct,omitempty"`
	PacedVsNginx                 *float64 `json:"paced_frames_per_cpu_second_vs_nginx,omitempty"`
	SaturatedRoundTripsPerSecond float64  `json:"saturated_round_trips_per_second"`
	SaturatedThroughputVsDirect  *float64 `json:"saturated_round_trips_vs_direct,omitempty"`
	SaturatedFramesPerCPUSecond  float64  `json:"saturated_frames_per_cpu_second"`
	SaturatedVsDirect            *float64 `json:"saturated_frames_per_cpu_second_vs_direct,omitempty"`
	SaturatedVsNginx             *float64 `json:"saturated_frames_per_cpu_second_vs_nginx,omitempty"`
	LightP50US                   float64  `json:"light_p50_us"`
	LightP99US                   float64  `json:"light_p99_us"`
	LightP999US                  float64  `json:"light_p999_us"`
	LightAddedP50US              *float64 `json:"light_added_p50_us,omitempty"`
	LightAddedP99US              *float64 `json:"light_added_p99_us,omitempty"`
	LightAddedP999US             *float64 `json:"light_added_p999_us,omitempty"`
	P50US                        float64  `json:"p50_us"`
	P99US                        float64  `json:"p99_us"`
	P999US                       float64  `json:"p999_us"`
	AddedP50US                   *float64 `json:"added_p50_us,omitempty"`
	AddedP99US                   *float64 `json:"added_p99_us,omitempty"`
	AddedP999US                  *float64 `json:"added_p999_us,omitempty"`
	CPUPerRoundTripUS            float64  `json:"cpu_per_round_trip_us"`
	GeneratorCores               float64  `json:"generator_cores"` // the load generator's CPU during the paced window, in cores
	IdleBytesPerConn             float64  `json:"idle_bytes_per_connection"`
	IdleLiveBytesPerConn         *float64 `json:"idle_bytes_per_connection_after_gc,omitempty"`
	LoadBytesPerConn             float64  `json:"load_bytes_per_connection"`
	ConnectsPerSecond            float64  `json:"connects_per_second"`
	ConnectP50MS                 float64  `json:"connect_p50_ms"`
	ConnectP99MS                 float64  `json:"connect_p99_ms"`
	AllocsPerFrame               *float64 `json:"allocs_per_frame,omitempty"`
	GoroutinesPerConn            *float64 `json:"goroutines_per_connection,omitempty"`
	Unexpected                   uint64   `json:"unexpected_closes"`
	Failures                     int      `json:"failed_connections"`
	Lost                         uint64   `json:"lost_messages"`
}

// APISummary is the medians of the usher path's API phases: tokens, joins and connects.
type APISummary struct {
	TokensPerSecond      float64 `json:"tokens_per_second"`
	TokensPerCPUSecond   float64 `json:"tokens_per_cpu_second"`
	TokenP50MS           float64 `json:"token_p50_ms"`
	TokenP99MS           float64 `json:"token_p99_ms"`
	JoinsPerSecond       float64 `json:"joins_per_second"`
	JoinsPerCPUSecond    float64 `json:"joins_per_cpu_second"`
	JoinP50MS            float64 `json:"join_p50_ms"`
	JoinP99MS            float64 `json:"join_p99_ms"`
	ConnectsPerSecond    float64 `json:"connects_per_second"`
	ConnectsPerCPUSecond float64 `json:"connects_per_cpu_second"`
	ConnectP50MS         float64 `json:"connect_p50_ms"`
	ConnectP99MS         float64 `json:"connect_p99_ms"`
	// FlowsPerSecond is players per second through the whole flow (token, join, connect), each
	// step done for all players in turn: 1 / (1/tokens + 1/joins + 1/connects).
	FlowsPerSecond float64 `json:"flows_per_second"`
	Errors         int     `json:"errors"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianPtr(v []float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	m := round3(median(v))
	return &m
}

func round3(f float64) float64 {
	if f == 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	// three significant digits
	d := math.Pow(10, 3-math.Ceil(math.Log10(math.Abs(f))))
	return math.Round(f*d) / d
}

func summarize(runs []PathRun) map[string]PathSummary {
	byRound := map[int]map[string]*PathRun{}
	for i := range runs {
		r := &runs[i]
		if byRound[r.Round] == nil {
			byRound[r.Round] = map[string]*PathRun{}
		}
		byRound[r.Round][r.Path] = r
	}
	out := map[string]PathSummary{}
	for _, path := range []string{PathDirect, PathUsher, PathNginx} {
		var (
			s                                                = PathSummary{Path: path}
			rt, fpc, vsD, vsN, srt, srtD, sfpc, svsD, svsN   []float64
			p50, p99, p999, a50, a99, a999, cpuRT, gen, idle []float64
			load, cps, c50, c99, allocs, gpc, live           []float64
			l50, l99, l999, la50, la99, la999                []float64
		)
		for round := 0; round < 100; round++ {
			rs, ok := byRound[round]
			if !ok {
				continue
			}
			r, ok := rs[path]
			if !ok || r.Paced == nil {
				continue
			}
			s.Rounds++
			s.Unexpected += r.Unexpected
			s.Failures += r.Connect.Count - r.Connect.OK
			s.Lost += r.Paced.Lost
			rt = append(rt, r.Paced.RoundTripsPerSecond)
			fpc = append(fpc, r.Paced.FramesPerCPUSecond)
			p50 = append(p50, r.Paced.Latency.P50)
			p99 = append(p99, r.Paced.Latency.P99)
			p999 = append(p999, r.Paced.Latency.P999)
			cpuRT = append(cpuRT, r.Paced.CPUPerRoundTripUS)
			if r.Light != nil {
				l50, l99, l999 = append(l50, r.Light.Latency.P50), append(l99, r.Light.Latency.P99), append(l999, r.Light.Latency.P999)
			}
			if r.Paced.WindowSeconds > 0 {
				gen = append(gen, r.Paced.GeneratorCPUSeconds/r.Paced.WindowSeconds)
			}
			if path != PathDirect { // the game servers live through the round: their RSS carries over
				idle = append(idle, r.IdleBytesPerConn)
				load = append(load, r.LoadBytesPerConn)
			}
			cps = append(cps, r.Connect.PerSecond)
			c50 = append(c50, r.Connect.Latency.P50/1000)
			c99 = append(c99, r.Connect.Latency.P99/1000)
			if r.Paced.AllocsPerFrame != nil {
				allocs = append(allocs, *r.Paced.AllocsPerFrame)
			}
			if r.Goroutines != nil {
				gpc = append(gpc, r.Goroutines.PerConn)
			}
			if r.RSSIdleLive > 0 {
				live = append(live, r.IdleLiveBytesPerConn)
			}
			if r.Saturated != nil {
				srt = append(srt, r.Saturated.RoundTripsPerSecond)
				sfpc = append(sfpc, r.Saturated.FramesPerCPUSecond)
			}
			ratio := func(other string, get func(*PathRun) float64) (float64, bool) {
				o, ok := rs[other]
				if !ok || o.Paced == nil || get(o) == 0 {
					return 0, false
				}
				return get(r) / get(o), true
			}
			pacedFPC := func(x *PathRun) float64 { return x.Paced.FramesPerCPUSecond }
			satFPC := func(x *PathRun) float64 {
				if x.Saturated == nil {
					return 0
				}
				return x.Saturated.FramesPerCPUSecond
			}
			satRT := func(x *PathRun) float64 {
				if x.Saturated == nil {
					return 0
				}
				return x.Saturated.RoundTripsPerSecond
			}
			if path != PathDirect {
				if v, ok := ratio(PathDirect, pacedFPC); ok {
					vsD = append(vsD, v)
				}
				if v, ok := ratio(PathDirect, satFPC); ok && r.Saturated != nil {
					svsD = append(svsD, v)
				}
				if v, ok := ratio(PathDirect, satRT); ok && r.Saturated != nil {
					srtD = append(srtD, v)
				}
				if d, ok := rs[PathDirect]; ok && d.Light != nil && r.Light != nil {
					la50 = append(la50, r.Light.Latency.P50-d.Light.Latency.P50)
					la99 = append(la99, r.Light.Latency.P99-d.Light.Latency.P99)
					la999 = append(la999, r.Light.Latency.P999-d.Light.Latency.P999)
				}
				if d, ok := rs[PathDirect]; ok && d.Paced != nil {
					a50 = append(a50, r.Paced.Latency.P50-d.Paced.Latency.P50)
					a99 = append(a99, r.Paced.Latency.P99-d.Paced.Latency.P99)
					a999 = append(a999, r.Paced.Latency.P999-d.Paced.Latency.P999)
				}
			}
			if path == PathUsher {
				if v, ok := ratio(PathNginx, pacedFPC); ok {
					vsN = append(vsN, v)
				}
				if v, ok := ratio(PathNginx, satFPC); ok && r.Saturated != nil {
					svsN = append(svsN, v)
				}
			}
		}
		if s.Rounds == 0 {
			continue
		}
		s.PacedRoundTripsPerSecond = round3(median(rt))
		s.PacedFramesPerCPUSecond = round3(median(fpc))
		s.PacedVsDirect, s.PacedVsNginx = medianPtr(vsD), medianPtr(vsN)
		s.SaturatedRoundTripsPerSecond = round3(median(srt))
		s.SaturatedThroughputVsDirect = medianPtr(srtD)
		s.SaturatedFramesPerCPUSecond = round3(median(sfpc))
		s.SaturatedVsDirect, s.SaturatedVsNginx = medianPtr(svsD), medianPtr(svsN)
		s.P50US, s.P99US, s.P999US = round3(median(p50)), round3(median(p99)), round3(median(p999))
		s.AddedP50US, s.AddedP99US, s.AddedP999US = medianPtr(a50), medianPtr(a99), medianPtr(a999)
		s.LightP50US, s.LightP99US, s.LightP999US = round3(median(l50)), round3(median(l99)), round3(median(l999))
		s.LightAddedP50US, s.LightAddedP99US, s.LightAddedP999US = medianPtr(la50), medianPtr(la99), medianPtr(la999)
		s.CPUPerRoundTripUS = round3(median(cpuRT))
		s.GeneratorCores = round3(median(gen))
		s.IdleBytesPerConn, s.LoadBytesPerConn = round3(median(idle)), round3(median(load))
		s.ConnectsPerSecond, s.ConnectP50MS, s.ConnectP99MS = round3(median(cps)), round3(median(c50)), round3(median(c99))
		s.AllocsPerFrame = medianPtr(allocs)
		s.GoroutinesPerConn = medianPtr(gpc)
		s.IdleLiveBytesPerConn = medianPtr(live)
		out[path] = s
	}
	return out
}

func summarizeAPI(runs []PathRun) *APISummary {
	var tps, tpc, t50, t99, jps, jpc, j50, j99, cps, cpc, c50, c99 []float64
	a := &APISummary{}
	for _, r := range runs {
		if r.Path != PathUsher || r.Tokens == nil || r.Joins == nil {
			continue
		}
		tps, tpc = append(tps, r.Tokens.PerSecond), append(tpc, r.Tokens.PerCPUSecond)
		t50, t99 = append(t50, r.Tokens.Latency.P50/1000), append(t99, r.Tokens.Latency.P99/1000)
		jps, jpc = append(jps, r.Joins.PerSecond), append(jpc, r.Joins.PerCPUSecond)
		j50, j99 = append(j50, r.Joins.Latency.P50/1000), append(j99, r.Joins.Latency.P99/1000)
		cps, cpc = append(cps, r.Connect.PerSecond), append(cpc, r.Connect.PerCPUSecond)
		c50, c99 = append(c50, r.Connect.Latency.P50/1000), append(c99, r.Connect.Latency.P99/1000)
		a.Errors += (r.Tokens.Count - r.Tokens.OK) + (r.Joins.Count - r.Joins.OK) + (r.Connect.Count - r.Connect.OK)
	}
	if len(tps) == 0 {
		return nil
	}
	a.TokensPerSecond, a.TokensPerCPUSecond = round3(median(tps)), round3(median(tpc))
	a.TokenP50MS, a.TokenP99MS = round3(median(t50)), round3(median(t99))
	a.JoinsPerSecond, a.JoinsPerCPUSecond = round3(median(jps)), round3(median(jpc))
	a.JoinP50MS, a.JoinP99MS = round3(median(j50)), round3(median(j99))
	a.ConnectsPerSecond, a.ConnectsPerCPUSecond = round3(median(cps)), round3(median(cpc))
	a.ConnectP50MS, a.ConnectP99MS = round3(median(c50)), round3(median(c99))
	if a.TokensPerSecond > 0 && a.JoinsPerSecond > 0 && a.ConnectsPerSecond > 0 {
		a.FlowsPerSecond = round3(1 / (1/a.TokensPerSecond + 1/a.JoinsPerSecond + 1/a.ConnectsPerSecond))
	}
	return a
}

// Target is one line of ../shared/PERFORMANCE.md's table, judged on this run's figures.
type Target struct {
	ID       string `json:"id"`
	What     string `json:"what"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, missed, not measured
}

const (
	statusMet     = "met"
	statusMissed  = "missed"
	statusUnknown = "not measured"
)

func judge(ok bool) string {
	if ok {
		return statusMet
	}
	return statusMissed
}

func evaluate(rep *Report) []Target {
	var ts []Target
	u, haveU := rep.Paths[PathUsher]
	ng, haveN := rep.Paths[PathNginx]
	add := func(id, what, goal, measured, status string) {
		ts = append(ts, Target{ID: id, What: what, Goal: goal, Measured: measured, Status: status})
	}
	fmtRatio := func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.2f×", *p)
	}
	if haveU && u.PacedVsDirect != nil {
		add("P1", "relayed frames per proxy CPU-second vs direct echo (paced)", "≥ 0.9×",
			fmt.Sprintf("%s (%.0f vs %.0f /CPU-s)", fmtRatio(u.PacedVsDirect), u.PacedFramesPerCPUSecond, rep.Paths[PathDirect].PacedFramesPerCPUSecond),
			judge(*u.PacedVsDirect >= 0.9))
	} else {
		add("P1", "relayed frames per proxy CPU-second vs direct echo", "≥ 0.9×", "—", statusUnknown)
	}
	if haveU && u.PacedVsNginx != nil {
		add("P1", "relayed frames per proxy CPU-second vs nginx (paced)", "≥ 0.9× (stretch ≥ 1.0×)",
			fmt.Sprintf("%s (%.0f vs %.0f /CPU-s)", fmtRatio(u.PacedVsNginx), u.PacedFramesPerCPUSecond, ng.PacedFramesPerCPUSecond),
			judge(*u.PacedVsNginx >= 0.9))
	} else {
		add("P1", "relayed frames per proxy CPU-second vs nginx", "≥ 0.9×", "—", statusUnknown)
	}
	if haveU && u.SaturatedVsNginx != nil {
		add("P1", "relayed frames per proxy CPU-second vs nginx (saturated)", "≥ 0.9×",
			fmt.Sprintf("%s (%.0f vs %.0f /CPU-s)", fmtRatio(u.SaturatedVsNginx), u.SaturatedFramesPerCPUSecond, ng.SaturatedFramesPerCPUSecond),
			judge(*u.SaturatedVsNginx >= 0.9))
	}
	if haveU && u.AllocsPerFrame != nil {
		add("P2", "heap allocations per relayed frame, steady state (Usher's whole process)", "0",
			fmt.Sprintf("%.4f", *u.AllocsPerFrame), judge(*u.AllocsPerFrame < 0.01))
	} else {
		add("P2", "heap allocations per relayed frame", "0", "—", statusUnknown)
	}
	// P3 is judged at light load (the light phase); without it, on the paced phase.
	a50, a99, phase := u.LightAddedP50US, u.LightAddedP99US, "light load"
	var n99 *float64
	if haveN {
		n99 = ng.LightAddedP99US
	}
	if a50 == nil {
		a50, a99, phase = u.AddedP50US, u.AddedP99US, "paced"
		if haveN {
			n99 = ng.AddedP99US
		}
	}
	if haveU && a50 != nil {
		add("P3", "added latency p50 vs direct ("+phase+")", "≤ 150 µs", fmt.Sprintf("%.0f µs", *a50), judge(*a50 <= 150))
		add("P3", "added latency p99 vs direct ("+phase+")", "≤ 2 ms (stretch ≤ 1 ms)", fmt.Sprintf("%.0f µs", *a99), judge(*a99 <= 2000))
		if n99 != nil {
			add("P3", "added latency p99: Usher vs nginx ("+phase+")", "≤ nginx's",
				fmt.Sprintf("%.0f µs vs %.0f µs", *a99, *n99), judge(*a99 <= *n99))
		}
	} else {
		add("P3", "added latency vs direct", "p50 ≤ 150 µs, p99 ≤ 2 ms", "—", statusUnknown)
	}
	if haveU {
		add("P4", "memory per idle proxied connection (RSS, both legs)", "≤ 20 KB (stretch ≤ 10 KB)",
			fmt.Sprintf("%.1f KB (%s KB after a full GC)", u.IdleBytesPerConn/1024, opt("", kb(u.IdleLiveBytesPerConn), "")), judge(u.IdleBytesPerConn <= 20*1024))
	} else {
		add("P4", "memory per idle proxied connection", "≤ 20 KB", "—", statusUnknown)
	}
	if s := rep.Soak; s != nil {
		if s.Cycles != nil {
			c := s.Cycles
			add("P5", fmt.Sprintf("%d cycles of connect-all / disconnect-all (%d players)", len(c.Cycles), s.Connections),
				"RSS within 10 %, goroutines back to baseline",
				fmt.Sprintf("RSS connected %+.1f %%, disconnected and collected %+.1f %% (live heap %+.1f %%; not collected %+.1f %%, not judged); goroutines after cycle 1 %.0f, after the last %.0f",
					c.RSSConnectedGrowthPct, c.RSSSettledGrowthPct, c.HeapLiveGrowthPct, c.RSSIdleGrowthPct, c.GoroutinesBase, c.GoroutinesEnd),
				cyclesVerdict(c))
		}
		if h := s.Hold; h != nil {
			add("P6", fmt.Sprintf("concurrent proxied players held %s", fmtDur(h.Seconds)),
				"9,500 held, 0 unexpected closes, RSS ≤ 200 MB (stretch ≤ 100 MB)",
				fmt.Sprintf("%d held, %d unexpected closes, RSS max %.0f MB", h.Held, h.Unexpected, float64(h.RSSMax)/(1<<20)),
				judge(h.Held >= 9500 && h.Unexpected == 0 && h.RSSMax <= 200<<20))
		}
	} else {
		add("P5", "connect/disconnect cycles", "RSS within 10 %, goroutines back", "run with --soak", statusUnknown)
		add("P6", "9,500 players held in a soak", "0 unexpected closes, RSS ≤ 200 MB", "run with --soak", statusUnknown)
	}
	if a := rep.API; a != nil {
		add("P7", "connect storm (ticket check + dial + upgrade)", "≥ 1,000 upgrades/s, p99 ≤ 50 ms (stretch ≥ 2,500/s)",
			fmt.Sprintf("%.0f /s, p99 %.1f ms", a.ConnectsPerSecond, a.ConnectP99MS), judge(a.ConnectsPerSecond >= 1000 && a.ConnectP99MS <= 50))
		add("P8", "tokens issued per core per second (per Usher CPU-second)", "≥ 10,000 (stretch ≥ 20,000)",
			fmt.Sprintf("%.0f /CPU-s (%.0f /s wall)", a.TokensPerCPUSecond, a.TokensPerSecond), judge(a.TokensPerCPUSecond >= 10000))
		add("P9", "joins per core per second (per Usher CPU-second), local fleet", "≥ 5,000 (stretch ≥ 8,000)",
			fmt.Sprintf("%.0f /CPU-s (%.0f /s wall)", a.JoinsPerCPUSecond, a.JoinsPerSecond), judge(a.JoinsPerCPUSecond >= 5000))
	} else {
		add("P7", "connect storm", "≥ 1,000/s", "—", statusUnknown)
		add("P8", "tokens per core per second", "≥ 10,000", "—", statusUnknown)
		add("P9", "joins per core per second", "≥ 5,000", "—", statusUnknown)
	}
	return ts
}

func kb(b *float64) *float64 {
	if b == nil {
		return nil
	}
	v := *b / 1024
	return &v
}

func fmtDur(sec float64) string {
	if sec >= 60 {
		return fmt.Sprintf("%.1f min", sec/60)
	}
	return fmt.Sprintf("%.0f s", sec)
}

// cyclesVerdict judges P5: RSS connected and RSS after disconnect once collected within
// 10 % of cycle 1's, goroutines back to the baseline; not measured when a cycle could not
// be collected (Usher's control listener did not answer) or there was only one cycle.
func cyclesVerdict(c *CyclesResult) string {
	if len(c.Cycles) < 2 || slices.ContainsFunc(c.Cycles, func(cy Cycle) bool { return cy.RSSSettled == 0 }) {
		return statusUnknown
	}
	return judge(c.RSSConnectedGrowthPct <= 10 && c.RSSSettledGrowthPct <= 10 &&
		c.GoroutinesEnd <= c.GoroutinesBase+max(5, c.GoroutinesBase/100))
}
