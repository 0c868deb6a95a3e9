package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/exampleserver"
)

func TestMain(m *testing.M) {
	if code, ok := RunRole(); ok { // this test binary is also Usher and the game servers
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestRunProducesReport runs the whole bench with a handful of players and checks the report
// is complete and sane. It asserts nothing about speed.
// runBench runs a tiny bench with cfg (4 connects and API requests at once, reports to a
// temporary directory) and returns the report as read back from bench-report.json, and
// bench-report.md.
func runBench(t *testing.T, cfg Config, limit time.Duration) (got Report, md string) {
	t.Helper()
	if !generatorSupported {
		t.Skip("the bench needs Linux")
	}
	if testing.Short() {
		t.Skip("starts Usher, game servers and nginx: skipped with -short")
	}
	cfg.Out = t.TempDir()
	cfg.ConnectConcurrency, cfg.HTTPConcurrency = 4, 4
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := Run(ctx, cfg, log)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := WriteReport(rep, cfg.Out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Out, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", ReportJSON, err)
	}
	b, err = os.ReadFile(filepath.Join(cfg.Out, ReportMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	return got, string(b)
}

func TestRunProducesReport(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Connections, cfg.Rate, cfg.LightRate = 12, 5, 2
	cfg.Duration, cfg.Warmup, cfg.Settle, cfg.Saturate, cfg.SaturateRate = time.Second, 200*time.Millisecond, 100*time.Millisecond, 500*time.Millisecond, 20
	cfg.Rounds = 1
	got, md := runBench(t, cfg, 2*time.Minute)
	want := []string{PathDirect, PathUsher}
	bin, _ := findNginx()
	if bin == "" && os.Getenv("CI") != "" {
		t.Error("nginx is not installed: CI must install nginx-light (.ci/run does)")
	}
	if bin != "" {
		want = append(want, PathNginx)
	} else if len(got.Notes) == 0 || !strings.Contains(got.Notes[0], "nginx not installed") {
		t.Errorf("notes = %q, want one saying nginx is not installed", got.Notes)
	}
	if len(got.Runs) != len(want) {
		t.Fatalf("%d runs, want %d (%v)", len(got.Runs), len(want), want)
	}
	for _, r := range got.Runs {
		if r.Connect.OK != cfg.Connections || r.Unexpected != 0 || len(r.Problems) > 0 {
			t.Errorf("%s: %d of %d connected, %d unexpected closes, problems %q", r.Path, r.Connect.OK, cfg.Connections, r.Unexpected, r.Problems)
		}
		if r.Paced == nil || r.Paced.Received == 0 || r.Paced.Latency.P50 <= 0 || r.Paced.Latency.P99 < r.Paced.Latency.P50 {
			t.Errorf("%s: paced window %+v, want messages and ordered latencies", r.Path, r.Paced)
		}
		if r.Light == nil || r.Light.Received == 0 {
			t.Errorf("%s: light window %+v, want messages", r.Path, r.Light)
		}
		if r.Saturated == nil || r.Saturated.Received == 0 {
			t.Errorf("%s: saturated window %+v, want messages", r.Path, r.Saturated)
		}
		if r.RSSBase <= 0 || r.RSSIdle <= 0 {
			t.Errorf("%s: RSS base %d idle %d, want both read", r.Path, r.RSSBase, r.RSSIdle)
		}
	}
	u, ok := got.Paths[PathUsher]
	if !ok || u.AddedP50US == nil || u.AllocsPerFrame == nil || u.GoroutinesPerConn == nil {
		t.Errorf("usher summary %+v: want added latency, allocations and goroutines", u)
	}
	if got.API == nil || got.API.TokensPerSecond <= 0 || got.API.JoinsPerSecond <= 0 || got.API.ConnectsPerSecond <= 0 || got.API.Errors != 0 {
		t.Errorf("API summary %+v: want tokens, joins and connects without errors", got.API)
	} else if a := got.API; a.TokenP50MS <= 0 || a.TokenP99MS < a.TokenP50MS || a.JoinP50MS <= 0 || a.JoinP99MS < a.JoinP50MS ||
		a.ConnectP50MS <= 0 || a.ConnectP99MS < a.ConnectP50MS {
		t.Errorf("API summary %+v: want p50 and p99 of tokens, joins and connects, p99 >= p50", a)
	}
	if got.Machine.Cores <= 0 || got.Machine.GoVersion == "" || got.Machine.Kernel == "" || got.Machine.FileLimit == 0 {
		t.Errorf("machine %+v: want cores, Go version, kernel and file limit", got.Machine)
	}
	ids := map[string]bool{}
	for _, tg := range got.Targets {
		ids[tg.ID] = true
	}
	for _, id := range []string{"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"} {
		if !ids[id] {
			t.Errorf("targets lack %s", id)
		}
	}
	for _, s := range []string{"# Usher bench report", "## Relay", "## API through Usher", "## Targets", "load average"} {
		if !strings.Contains(md, s) {
			t.Errorf("%s lacks %q", ReportMarkdown, s)
		}
	}
}

// TestSoak runs the soak alone (--rounds 0) with a handful of players: two connect-all /
// disconnect-all cycles, each read connected, after the disconnect and once collected, then a
// short hold. It asserts nothing about how much memory Usher uses, only that every reading
// was taken and that P5 and P6 are judged from them.
func TestSoak(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rounds, cfg.Soak, cfg.SoakConnections, cfg.SoakCycles, cfg.SoakRate = 0, 2*time.Second, 12, 2, 2
	cfg.soakPause = 500 * time.Millisecond
	got, md := runBench(t, cfg, 2*time.Minute)
	s := got.Soak
	if s == nil || s.Cycles == nil || s.Hold == nil {
		t.Fatalf("soak = %+v, want cycles and a hold", s)
	}
	if len(s.Cycles.Cycles) != 2 {
		t.Fatalf("%d cycles, want 2", len(s.Cycles.Cycles))
	}
	for i, cy := range s.Cycles.Cycles {
		if cy.Connected != 12 || cy.Unexpected != 0 || cy.RSSConnected <= 0 || cy.RSSIdle <= 0 || cy.RSSSettled <= 0 ||
			cy.HeapLive <= 0 || cy.HeapLive >= cy.RSSSettled || cy.GoroutinesConnected <= 0 {
			t.Errorf("cycle %d = %+v: want 12 connected, none closed unexpectedly, every reading taken, the live heap below RSS", i+1, cy)
		}
	}
	if h := s.Hold; h.Connected != 12 || h.Held != 12 || h.Unexpected != 0 || h.Lost != 0 || h.Latency.Count == 0 || h.RSSMax <= 0 {
		t.Errorf("hold = %+v: want all 12 held, none lost, latencies counted", h)
	}
	verdicts := map[string]string{}
	for _, tg := range got.Targets {
		verdicts[tg.ID] = tg.Status
	}
	for _, id := range []string{"P5", "P6"} {
		if v := verdicts[id]; v == "" || v == statusUnknown {
			t.Errorf("%s: %q, want it judged", id, v)
		}
	}
	for _, want := range []string{"## Soak (12 players through Usher)", "live heap (MB)", "once collected", "Hold: 12 connected, 12 still open"} {
		if !strings.Contains(md, want) {
			t.Errorf("%s lacks %q", ReportMarkdown, want)
		}
	}
}

// TestRunProfiles runs two rounds of a tiny echo profile and a tiny room profile and checks the
// report: every path of every round with its own figures, in rotated order; every message
// delivered where it belongs (its sender in echo mode, the rest of its room in broadcast mode,
// so deliveries = sends × (room size − 1)); and the comparisons with direct and nginx. It
// asserts nothing about speed.
func TestRunProfiles(t *testing.T) {
	cfg := DefaultConfig()
	// Rates high enough that every hop's CPU over the 1 s window spans several 10 ms ticks (the
	// frames-per-CPU-second comparison needs a reading above 0). room4@60:17: 16 players, one left out.
	cfg.Connections, cfg.Rounds, cfg.Profiles = 18, 2, []string{"echo100", "room4@60:17"}
	cfg.Duration, cfg.Warmup, cfg.Settle = time.Second, 200*time.Millisecond, 100*time.Millisecond
	cfg.APIRate = 40 // tokens beside the relay in Usher's windows
	// The paths connected at once, their windows in turns of 250 ms (TestRunProducesReport runs
	// them one after another).
	cfg.Interleave = 250 * time.Millisecond
	got, md := runBench(t, cfg, 3*time.Minute)
	paths := []string{PathDirect, PathUsher}
	if bin, _ := findNginx(); bin != "" {
		paths = append(paths, PathNginx)
	} else if os.Getenv("CI") != "" {
		t.Error("nginx is not installed: CI must install nginx-light (.ci/run does)")
	}
	if len(got.Runs) != 0 || len(got.Paths) != 0 || got.API != nil {
		t.Errorf("the default phases ran (%d runs, %d path summaries, API %v): want only the profiles", len(got.Runs), len(got.Paths), got.API)
	}
	if len(got.Profiles) != 2 {
		t.Fatalf("%d profiles in the report, want 2", len(got.Profiles))
	}
	for i, want := range []struct {
		name      string
		mode      string
		players   int
		servers   int
		receivers uint64
		rate      float64
	}{
		{"echo100", ModeEcho, 18, 1, 1, 100},
		{"room4@60:17", ModeBroadcast, 16, 4, 3, 60},
	} {
		pr := got.Profiles[i]
		if pr.Name != want.name || pr.Mode != want.mode || pr.Players != want.players || pr.Servers != want.servers || pr.Rate != want.rate {
			t.Errorf("profile %d: %s %s, %d players on %d servers at %v/s; want %s %s, %d on %d at %v/s", i, pr.Name, pr.Mode, pr.Players,
				pr.Servers, pr.Rate, want.name, want.mode, want.players, want.servers, want.rate)
		}
		if len(pr.Runs) != cfg.Rounds*len(paths) {
			t.Errorf("%s: %d runs, want %d", pr.Name, len(pr.Runs), cfg.Rounds*len(paths))
		}
		for _, r := range pr.Runs {
			g := r.Game
			if r.Profile != pr.Name || g == nil || r.Paced != nil || r.Light != nil || r.Saturated != nil {
				t.Errorf("%s round %d %s: profile %q, game window %v, default windows %v %v %v: want only the game window",
					pr.Name, r.Round+1, r.Path, r.Profile, g != nil, r.Light != nil, r.Paced != nil, r.Saturated != nil)
				continue
			}
			where := fmt.Sprintf("%s round %d %s", pr.Name, r.Round+1, r.Path)
			if r.Connect.OK != want.players || r.Unexpected != 0 || r.Misrouted != 0 || len(r.Problems) > 0 {
				t.Errorf("%s: %d of %d connected, %d unexpected closes, %d misrouted, problems %q", where, r.Connect.OK, want.players,
					r.Unexpected, r.Misrouted, r.Problems)
			}
			// The generator sends at the profile's rate: about players × rate × window.
			if offered := float64(want.players) * want.rate * g.WindowSeconds; float64(g.Sent) < 0.8*offered || float64(g.Sent) > 1.2*offered {
				t.Errorf("%s: sent %d in %.2f s, want about %.0f", where, g.Sent, g.WindowSeconds, offered)
			}
			if g.Expected != g.Sent*want.receivers {
				t.Errorf("%s: expected %d deliveries of %d messages, want × %d", where, g.Expected, g.Sent, want.receivers)
			}
			if g.Received > g.Expected || float64(g.Received) < 0.98*float64(g.Expected) || g.Lost != g.Expected-g.Received {
				t.Errorf("%s: received %d of %d (lost %d), want all (2 %% tolerance)", where, g.Received, g.Expected, g.Lost)
			}
			if g.Latency.Count != g.Received || g.Latency.P50 <= 0 || g.Latency.P99 < g.Latency.P50 || g.Latency.P999 < g.Latency.P99 {
				t.Errorf("%s: latency %+v, want one sample per delivery, ordered quantiles", where, g.Latency)
			}
			// --api-rate: about 40 token requests in Usher's 1 s window, all answered; none elsewhere.
			if a := g.API; (r.Path == PathUsher) != (a != nil) {
				t.Errorf("%s: API load %+v, want one in Usher's windows only", where, a)
			} else if a != nil && (a.Rate != 40 || a.Requests < 30 || a.Requests > 45 || a.Errors != 0 || a.P50MS <= 0 || a.P99MS < a.P50MS) {
				t.Errorf("%s: API load %+v, want about 40 requests at 40/s, no error, ordered quantiles", where, a)
			}
			if g.SlotSeconds != 0.25 || g.WindowSeconds != 1 {
				t.Errorf("%s: window of %v s in turns of %v s, want 1 s in turns of 0.25 s (--interleave)", where, g.WindowSeconds, g.SlotSeconds)
			}
			var inTurns uint64
			for _, l := range g.Turns {
				inTurns += l.Count
				if (l.GCCycles != nil) != (r.Path == PathUsher) || l.HopRunQueueMS < 0 || l.GameServerRunQueueMS < 0 || l.GeneratorRunQueueMS < 0 {
					t.Errorf("%s: turn %+v, want Usher's collections counted in its turns only, run-queue waits ≥ 0", where, l)
				}
			}
			if len(g.Turns) != 4 || inTurns > g.Latency.Count || float64(inTurns) < 0.9*float64(g.Latency.Count) {
				t.Errorf("%s: %d turns holding %d of %d latencies, want 4 holding nearly all", where, len(g.Turns), inTurns, g.Latency.Count)
			}
			if wantRoom := int(want.receivers+1) * boolInt(want.mode == ModeBroadcast); g.RoomSize != wantRoom || g.Mode != pr.Name {
				t.Errorf("%s: window mode %q room size %d, want %q %d", where, g.Mode, g.RoomSize, pr.Name, wantRoom)
			}
		}
		if len(pr.Rounds) != cfg.Rounds {
			t.Fatalf("%s: %d rounds, want %d", pr.Name, len(pr.Rounds), cfg.Rounds)
		}
		for k, round := range pr.Rounds {
			order := slices.Concat(paths[k%len(paths):], paths[:k%len(paths)])
			var gotOrder []string
			for _, f := range round.Paths {
				gotOrder = append(gotOrder, f.Path)
				if f.Received == 0 || f.P50US <= 0 {
					t.Errorf("%s round %d %s: %+v, want figures of its own", pr.Name, k+1, f.Path, f)
				}
				if (f.Path == PathDirect) != (f.AddedP50US == nil) || (f.Path == PathUsher && slices.Contains(paths, PathNginx)) != (f.VsNginxP99US != nil) {
					t.Errorf("%s round %d %s: added vs direct %v, vs nginx %v: want added for proxies, Usher − nginx for usher",
						pr.Name, k+1, f.Path, f.AddedP50US, f.VsNginxP99US)
				}
			}
			if round.Round != k || !slices.Equal(gotOrder, order) {
				t.Errorf("%s: round %d ran %v, want %v (rotated each round)", pr.Name, round.Round+1, gotOrder, order)
			}
		}
		if len(pr.Medians) != len(paths) {
			t.Errorf("%s: medians of %d paths, want %d", pr.Name, len(pr.Medians), len(paths))
		}
		if slices.Contains(paths, PathNginx) && (pr.UsherVsNginx == nil || pr.UsherVsNginx.Rounds != cfg.Rounds) {
			t.Errorf("%s: Usher vs nginx %+v, want %d rounds compared", pr.Name, pr.UsherVsNginx, cfg.Rounds)
		}
	}
	for _, s := range []string{"## Game profiles", "### echo100: 18 players × 100 messages/s", "### room4@60:17: 16 players in 4 rooms of 4",
		"| 1 | direct |", "| 2 | usher |", "| median | usher |", "the API also served 40 token requests per second (`--api-rate`)",
		"**Interleaved** (`--interleave 250ms`)", "p99 of each turn (µs), in order: round 1 direct ",
		"Time the hop's threads waited for a CPU in each turn (ms; runnable, not running; all of nginx's processes, all game servers for direct): round 1 direct "} {
		if !strings.Contains(md, s) {
			t.Errorf("%s lacks %q", ReportMarkdown, s)
		}
	}
	if t.Failed() {
		t.Logf("%s:\n%s", ReportMarkdown, md)
	}
	if strings.Contains(md, "**Setup.**") {
		t.Errorf("%s describes the default phases, which did not run", ReportMarkdown)
	}
}

func TestParseProfile(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Profile
		err  string
	}{
		{"echo20", Profile{Name: "echo20", Mode: ModeEcho, Rate: 20}, ""},
		{"echo2.5", Profile{Name: "echo2.5", Mode: ModeEcho, Rate: 2.5}, ""},
		{"room4", Profile{Name: "room4", Mode: ModeBroadcast, RoomSize: 4, Rate: 20}, ""},
		{"room8@30", Profile{Name: "room8@30", Mode: ModeBroadcast, RoomSize: 8, Rate: 30}, ""},
		{"room4:500", Profile{Name: "room4:500", Mode: ModeBroadcast, RoomSize: 4, Rate: 20, Players: 500}, ""},
		{"room8@30:64", Profile{Name: "room8@30:64", Mode: ModeBroadcast, RoomSize: 8, Rate: 30, Players: 64}, ""},
		{"echo20:1000", Profile{Name: "echo20:1000", Mode: ModeEcho, Rate: 20, Players: 1000}, ""},
		{"echo20:", Profile{}, "the players after : must be 1 to 9900"},
		{"echo20:0", Profile{}, "the players after : must be 1 to 9900"},
		{"echo20:9901", Profile{}, "the players after : must be 1 to 9900"},
		{"room4:x", Profile{}, "the players after :"},
		{"room4@:500", Profile{}, "the rate after @"},
		{"echo", Profile{}, "the rate must be"},
		{"echo0", Profile{}, "the rate must be"},
		{"room1", Profile{}, "the room size must be 2 to 64"},
		{"room65", Profile{}, "the room size must be 2 to 64"},
		{"room4@", Profile{}, "the rate after @"},
		{"room4@-1", Profile{}, "the rate after @"},
		{"rooms4", Profile{}, "the room size"},
		{"tick20", Profile{}, "unknown kind"},
		{"default", Profile{}, "unknown kind"}, // not a game profile: Config handles it
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProfile(tc.name)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestProfilePlayers(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		n, wantPlayers, wantSrvs int
	}{
		{"echo20", 1000, 1000, 2},
		{"echo20", 950, 950, 1},
		{"room4", 1000, 1000, 250},
		{"room8", 1000, 1000, 125},
		{"room8", 50, 48, 6},
		{"room4", 3, 0, 0},
		{"room4:500", 1000, 500, 125}, // its own players, not --connections
		{"room4:502", 10, 500, 125},
		{"echo20:1901", 10, 1901, 3},
	} {
		p, err := ParseProfile(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got, gotS := p.players(tc.n), p.servers(tc.n); got != tc.wantPlayers || gotS != tc.wantSrvs {
			t.Errorf("%s with %d: %d players on %d servers, want %d on %d", tc.name, tc.n, got, gotS, tc.wantPlayers, tc.wantSrvs)
		}
	}
}

// TestSummarizeProfile checks the comparisons on figures made up for it: added latency is a
// path's minus direct's of the same round, Usher − nginx is Usher's minus nginx's, and the
// rounds meeting the targets are counted.
func TestSummarizeProfile(t *testing.T) {
	run := func(round int, path string, p50, p99, fpc float64) PathRun {
		return PathRun{Path: path, Round: round, Profile: "room4", Connect: Phase{Count: 8, OK: 8}, Game: &LoadResult{
			Mode: "room4", RoomSize: 4, WindowSeconds: 2, Sent: 100, Expected: 300, Received: 300, HopCPUSeconds: 0.5,
			FramesPerCPUSecond: fpc, Latency: Latency{Count: 300, P50: p50, P99: p99, P999: p99 * 2},
		}}
	}
	runs := []PathRun{
		run(0, PathDirect, 100, 1000, 50000), run(0, PathUsher, 300, 3000, 60000), run(0, PathNginx, 250, 3500, 50000),
		run(1, PathUsher, 400, 2000, 50000), run(1, PathNginx, 500, 1500, 50000), run(1, PathDirect, 200, 500, 40000),
	}
	p, _ := ParseProfile("room4")
	rep := summarizeProfile(p, 8, []string{PathDirect, PathUsher, PathNginx}, runs)
	if rep.Players != 8 || rep.Servers != 2 || len(rep.Rounds) != 2 || len(rep.Medians) != 3 {
		t.Fatalf("%d players, %d servers, %d rounds, %d medians; want 8, 2, 2, 3", rep.Players, rep.Servers, len(rep.Rounds), len(rep.Medians))
	}
	f := func(v *float64) float64 {
		if v == nil {
			return -1e9
		}
		return *v
	}
	u0, u1 := rep.Rounds[0].Paths[1], rep.Rounds[1].Paths[0]
	if u0.Path != PathUsher || f(u0.AddedP50US) != 200 || f(u0.AddedP99US) != 2000 || f(u0.VsNginxP50US) != 50 || f(u0.VsNginxP99US) != -500 ||
		f(u0.FramesVsNginx) != 1.2 || f(u0.FramesVsDirect) != 1.2 {
		t.Errorf("round 1 usher: %+v", u0)
	}
	if u1.Path != PathUsher || f(u1.AddedP50US) != 200 || f(u1.VsNginxP50US) != -100 || f(u1.VsNginxP99US) != 500 || f(u1.FramesVsNginx) != 1 {
		t.Errorf("round 2 usher: %+v", u1)
	}
	if n := rep.Rounds[0].Paths[2]; n.Path != PathNginx || f(n.AddedP50US) != 150 || n.VsNginxP50US != nil || n.FramesVsNginx != nil {
		t.Errorf("round 1 nginx: %+v", n)
	}
	if d := rep.Rounds[0].Paths[0]; d.Path != PathDirect || d.AddedP50US != nil || d.FramesVsDirect != nil || d.HopCores != 0.25 {
		t.Errorf("round 1 direct: %+v", d)
	}
	if got, want := *rep.UsherVsNginx, (UsherVsNginx{Rounds: 2, P50AtMost: 1, P99AtMost: 1, FramesAtLeast: 1}); got != want {
		t.Errorf("Usher vs nginx %+v, want %+v", got, want)
	}
	m := rep.Medians[1]
	if m.Path != PathUsher || m.P50US != 350 || f(m.AddedP50US) != 200 || f(m.VsNginxP99US) != 0 || f(m.FramesVsNginx) != 1.1 || m.Received != 300 {
		t.Errorf("usher medians: %+v", m)
	}
}

// TestSummarizeAPI checks the API figures on rounds made up for it: each is the median over the
// usher path's rounds (other paths have no API phases), latencies in milliseconds, and the
// report's table shows p50 and p99 of each step.
func TestSummarizeAPI(t *testing.T) {
	phase := func(perSecond, p50us, p99us float64) *Phase {
		return &Phase{Count: 10, OK: 10, PerSecond: perSecond, PerCPUSecond: 2 * perSecond, Latency: Latency{Count: 10, P50: p50us, P99: p99us}}
	}
	run := func(path string, f float64) PathRun {
		r := PathRun{Path: path, Connect: *phase(300*f, 3000*f, 30000*f)}
		if path == PathUsher {
			r.Tokens, r.Joins = phase(100*f, 1000*f, 10000*f), phase(200*f, 2000*f, 20000*f)
		}
		return r
	}
	runs := []PathRun{run(PathUsher, 1), run(PathDirect, 100), run(PathUsher, 3), run(PathUsher, 2), run(PathNginx, 100)}
	a := summarizeAPI(runs)
	want := APISummary{
		TokensPerSecond: 200, TokensPerCPUSecond: 400, TokenP50MS: 2, TokenP99MS: 20,
		JoinsPerSecond: 400, JoinsPerCPUSecond: 800, JoinP50MS: 4, JoinP99MS: 40,
		ConnectsPerSecond: 600, ConnectsPerCPUSecond: 1200, ConnectP50MS: 6, ConnectP99MS: 60,
		FlowsPerSecond: 109, // 1 / (1/200 + 1/400 + 1/600), three significant figures
	}
	if a == nil || *a != want {
		t.Fatalf("summarizeAPI = %+v, want %+v", a, want)
	}
	md := Markdown(&Report{API: a})
	for _, row := range []string{
		"| step | per second (wall) | per Usher CPU-second | p50 (ms) | p99 (ms) |",
		"| token (`POST /request_token`) | 200 | 400 | 2.00 | 20.0 |",
		"| join by code (`POST /join`) | 400 | 800 | 4.00 | 40.0 |",
		"| connect (`/connect` upgrade + dial) | 600 | 1200 | 6.00 | 60.0 |",
	} {
		if !strings.Contains(md, row) {
			t.Errorf("report lacks the row %q:\n%s", row, md)
		}
	}
}

func TestRoutedRight(t *testing.T) {
	for _, tc := range []struct {
		room     int
		from, to uint32
		want     bool
	}{
		{0, 5, 5, true}, // echo
		{0, 5, 6, false},
		{4, 5, 5, false}, // the sender never gets its own message back
		{4, 4, 7, true},
		{4, 7, 4, true},
		{4, 3, 4, false}, // rooms 0 and 1
		{4, 8, 12, false},
	} {
		if got := routedRight(tc.room, tc.from, tc.to); got != tc.want {
			t.Errorf("room %d: %d → %d routed right = %v, want %v", tc.room, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := DefaultConfig()
	bad.Connections, bad.Rate, bad.Paths, bad.Rounds = 20000, 250, []string{"usher", "usher", "haproxy"}, 0
	err := bad.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"--connections", "--rate", "unknown path", "named twice", "--rounds 0 needs --soak"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}

	ok := DefaultConfig()
	ok.Connections, ok.Profiles = 1000, []string{"echo20", "echo30", "room4", "room8", "room4:500", "default"}
	if err := ok.Validate(); err != nil {
		t.Errorf("issue 14's profiles: %v", err)
	}
	bad = DefaultConfig()
	bad.Connections, bad.Profiles = 6, []string{"echo20", "echo20", "tick", "room8", "echo250", "room4:3", "room2:2000"}
	err = bad.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"a profile is named twice", `profile "tick"`, "room8 needs at least 8 players", "echo250 sends 250 messages/s",
		"room4:3 needs at least 4 players (it has 3)", "room2:2000 would start 1000 game servers"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	bad = DefaultConfig()
	bad.Connections, bad.Profiles = 1002, []string{"room2"}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "would start 501 game servers") {
		t.Errorf("room2 with 1002 players: err = %v, want too many game servers", err)
	}

	// --interleave: every path connected at once, each with its own game servers.
	ok = DefaultConfig()
	ok.Connections, ok.Profiles, ok.Interleave = 500, []string{"echo20", "room4"}, 500*time.Millisecond
	if err := ok.Validate(); err != nil {
		t.Errorf("interleaved room4 at 500 players (375 game servers): %v", err)
	}
	bad = DefaultConfig()
	bad.Connections, bad.Profiles, bad.Interleave = 6500, []string{"room4:1000"}, 50*time.Millisecond
	err = bad.Validate()
	for _, s := range []string{"--interleave must be 0 or 100ms to 1m, got 50ms", "--connections × paths must be at most 18000 (the bench's own sockets), got 19500",
		"room4:1000 would start 750 game servers"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %q", err, s)
		}
	}
}

// TestBenchCatalog: the bench's catalog is one a real Usher accepts; room profiles run their
// game servers with one P; --usher-env keys are given back to the game servers.
func TestBenchCatalog(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMAXPROCS", "")
	t.Setenv("GODEBUG", "madvdontneed=1")
	cfg := Config{UsherEnv: []string{"GOGC=400", "GODEBUG=gctrace=1", "GOMAXPROCS=3"}}
	for _, tc := range []struct {
		roomSize, players int
		heartbeat         time.Duration
		echo, maxprocs    string
	}{{0, 1000, 0, "1", ""}, {4, 5, 5 * time.Second, "0", "1"}} {
		b, err := benchCatalog(cfg, "/bin/self", "/tmp/reg", 7, tc.roomSize, tc.heartbeat)
		if err != nil {
			t.Fatal(err)
		}
		games, err := config.ParseCatalog(bytes.NewReader(b), "/bin/self", "default")
		if err != nil {
			t.Fatalf("roomSize %d: Usher refuses the catalog: %v\n%s", tc.roomSize, err, b)
		}
		if len(games) != 1 {
			t.Fatalf("roomSize %d: %d games, want 1", tc.roomSize, len(games))
		}
		g := games[0]
		if g.ID != benchGame || g.MaxPlayers != tc.players || g.Buffer != 7 || g.MaxServers != 7 || len(g.Command) != 1 || g.Command[0] != "/bin/self" {
			t.Errorf("roomSize %d: game %+v", tc.roomSize, g)
		}
		want := map[string]string{
			envRole: roleExample, envRegistry: "/tmp/reg", exampleserver.EnvEcho: tc.echo,
			exampleserver.EnvEmptyTimeout: "1h", "GOGC": "", "GODEBUG": "madvdontneed=1", "GOMAXPROCS": tc.maxprocs,
		}
		for k, v := range want {
			if got, ok := g.Env[k]; !ok || got != v {
				t.Errorf("roomSize %d: env %s = %q (set %v), want %q", tc.roomSize, k, got, ok, v)
			}
		}
		if got, ok := g.Env[exampleserver.EnvHeartbeat]; (tc.heartbeat > 0) != ok || ok && got != tc.heartbeat.String() {
			t.Errorf("roomSize %d: heartbeat %q (set %v), want %v (0: unset)", tc.roomSize, got, ok, tc.heartbeat)
		}
	}
}
