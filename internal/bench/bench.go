package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/usher-gg/usher/internal/exampleserver"
)

// Report is everything one run measured; it is written as bench-report.json and rendered as
// bench-report.md.
type Report struct {
	Started  time.Time              `json:"started"`
	Finished time.Time              `json:"finished"`
	Command  string                 `json:"command"`
	Config   Config                 `json:"config"`
	Machine  Machine                `json:"machine"`
	Notes    []string               `json:"notes,omitempty"`
	Runs     []PathRun              `json:"runs"`  // the default phases (without --profiles, or with default in it)
	Paths    map[string]PathSummary `json:"paths"` // medians of Runs
	API      *APISummary            `json:"api,omitempty"`
	Profiles []ProfileReport        `json:"profiles,omitempty"` // --profiles: every round of each game profile
	Soak     *SoakResult            `json:"soak,omitempty"`
	Targets  []Target               `json:"targets"`
}

// Run runs the bench: rounds of the three paths interleaved (in each round the default phases,
// then each game profile of --profiles), then the soak if asked. It
// returns the report (also when a round failed part way: what was measured is kept) and writes
// nothing; see WriteReport.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !generatorSupported {
		return nil, errors.New("usher-bench needs Linux (epoll and /proc)")
	}
	rep := &Report{Started: time.Now().UTC(), Config: cfg, Command: strings.Join(os.Args, " ")}
	lim, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raise the open file limit: %w", err)
	}
	if cfg.WaitLoad > 0 {
		if note := waitForLoad(ctx, cfg.WaitLoad, cfg.WaitLoadFor, log); note != "" {
			rep.Notes = append(rep.Notes, note)
		}
	}
	rep.Machine = describeMachine()
	rep.Machine.FileLimit = lim
	rep.Machine.Revision = revision()
	// Two sockets per proxied player in Usher or nginx, and a few per game server (its
	// connections to the bridge, in Usher).
	servers, players := echoServers(cfg.Connections), cfg.Connections
	runDefault, profiles := cfg.profileNames()
	for _, p := range profiles {
		servers, players = max(servers, p.servers(cfg.Connections)), max(players, p.players(cfg.Connections))
	}
	need := uint64(2*max(players, cfg.SoakConnections*boolInt(cfg.Soak > 0)) + 4*servers + 200)
	if lim < need {
		return nil, fmt.Errorf("open file limit %d is below the %d this run needs (two per proxied player); lower --connections", lim, need)
	}
	nginxBin, nginxVer := findNginx()
	rep.Machine.Nginx = nginxVer
	paths := slices.Clone(cfg.Paths)
	if nginxBin == "" {
		rep.Machine.Nginx = "not installed"
		if i := slices.Index(paths, PathNginx); i >= 0 {
			paths = slices.Delete(paths, i, i+1)
			rep.Notes = append(rep.Notes, "nginx not installed: the nginx path was skipped "+
				"(Debian: apt-get install -y nginx-light).")
			log.Warn("nginx not installed: skipping the nginx path (apt-get install -y nginx-light)")
		}
	}

	dir := cfg.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "usher-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// nginx's workers may run as another user: let them into the directory.
	_ = os.Chmod(dir, 0o755)

	profRuns := make([][]PathRun, len(profiles))
	var runErr error
rounds:
	for r := range cfg.Rounds {
		if ctx.Err() != nil {
			break
		}
		roundDir := filepath.Join(dir, fmt.Sprintf("round-%d", r))
		if runDefault {
			rep.Machine.LoadDuring = append(rep.Machine.LoadDuring, loadAverage()[0])
			runs, err := runRound(ctx, cfg, paths, r, roundDir, nginxBin, nil, log)
			rep.Runs = append(rep.Runs, runs...)
			if err != nil {
				runErr = fmt.Errorf("round %d: %w", r+1, err)
				log.Error("round failed", "round", r+1, "err", err)
				break
			}
		}
		for i := range profiles {
			if ctx.Err() != nil {
				break rounds
			}
			p := &profiles[i]
			rep.Machine.LoadDuring = append(rep.Machine.LoadDuring, loadAverage()[0])
			runs, err := runRound(ctx, cfg, paths, r, filepath.Join(roundDir, p.Name), nginxBin, p, log)
			profRuns[i] = append(profRuns[i], runs...)
			if err != nil {
				runErr = fmt.Errorf("round %d, profile %s: %w", r+1, p.Name, err)
				log.Error("round failed", "round", r+1, "profile", p.Name, "err", err)
				break rounds
			}
		}
	}
	rep.Paths = summarize(rep.Runs)
	rep.API = summarizeAPI(rep.Runs)
	for i, p := range profiles {
		if len(profRuns[i]) > 0 {
			rep.Profiles = append(rep.Profiles, summarizeProfile(p, cfg.Connections, paths, profRuns[i]))
		}
	}
	if cfg.Soak > 0 && runErr == nil && ctx.Err() == nil {
		rep.Machine.LoadDuring = append(rep.Machine.LoadDuring, loadAverage()[0])
		rep.Soak, err = runSoak(ctx, cfg, filepath.Join(dir, "soak"), log)
		if err != nil {
			runErr = fmt.Errorf("soak: %w", err)
		}
	}
	rep.Machine.LoadEnd = loadAverage()
	rep.Finished = time.Now().UTC()
	rep.Targets = evaluate(rep)
	if runErr == nil {
		runErr = ctx.Err()
	}
	return rep, runErr
}

// waitForLoad polls the 1-minute load average every 5 s until it is below limit, for at most
// d. It returns a note for the report when it gave up.
func waitForLoad(ctx context.Context, limit float64, d time.Duration, log *slog.Logger) string {
	deadline := time.Now().Add(d)
	for {
		l := loadAverage()[0]
		if l < limit {
			return ""
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("The 1-minute load average stayed at or above %.2f for %s (%.2f at start): the machine was busy, figures are noisier.", limit, d, l)
		}
		log.Info("waiting for a quieter machine", "load_1m", l, "want_below", limit)
		sleep(ctx, 5*time.Second)
		if ctx.Err() != nil {
			return ""
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runRound starts a fresh Usher (and nginx) and runs every path once, in an order rotated by
// the round number, so no path always runs first or last: the default phases when prof is nil,
// else the game profile's window.
func runRound(ctx context.Context, cfg Config, paths []string, round int, dir, nginxBin string, prof *Profile, log *slog.Logger) ([]PathRun, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	players, rooms, roomSize, name := cfg.Connections, echoServers(cfg.Connections), 0, ProfileDefault
	if prof != nil {
		players, rooms, name = prof.players(cfg.Connections), prof.servers(cfg.Connections), prof.Name
		if prof.Mode == ModeBroadcast {
			roomSize = prof.RoomSize
		}
	}
	interleave := cfg.Interleave > 0 && len(paths) > 1
	sets, heartbeat := 1, time.Duration(0)
	if interleave {
		sets = len(paths) // every path connected at once: a set of game servers each
		// Usher's bridge hears every game server's heartbeat, in its own turns too: with a set
		// per path, slower heartbeats keep their rate near one set's (2 s each), well inside
		// the local fleet's 10 s timeout.
		heartbeat = min(time.Duration(sets)*exampleserver.DefaultHeartbeatInterval, 5*time.Second)
	}
	log.Info("round starting", "round", round+1, "profile", name, "rooms", rooms*sets, "dir", dir)
	u, err := startUsher(ctx, cfg, dir, rooms*sets, roomSize, heartbeat, log)
	if err != nil {
		return nil, err
	}
	defer u.stop()
	s := &stack{cfg: cfg, u: u, log: log, out: cfg.Out, round: round, profile: prof, players: players, roomSize: roomSize,
		paths: paths, ownServers: interleave}
	if slices.Contains(paths, PathNginx) {
		if s.ng, err = startNginx(ctx, nginxBin, dir, cfg.NginxWorkers, u.servers); err != nil {
			return nil, err
		}
		defer s.ng.stop()
	}
	order := slices.Concat(paths[round%len(paths):], paths[:round%len(paths)])
	if interleave {
		return s.runInterleaved(ctx, order, name)
	}
	var runs []PathRun
	for _, p := range order {
		log.Info("path starting", "round", round+1, "profile", name, "path", p, "connections", players)
		pr, err := s.runPath(ctx, p)
		runs = append(runs, pr)
		if err != nil {
			return runs, fmt.Errorf("%s: %w", p, err)
		}
		logRun(log, pr)
	}
	return runs, nil
}

// runInterleaved connects every path's players in order, runs the load windows with the
// paths taking turns (see stack.load), then disconnects them in the same order.
func (s *stack) runInterleaved(ctx context.Context, order []string, name string) ([]PathRun, error) {
	var (
		lps []*livePath
		err error
	)
	for _, p := range order {
		s.log.Info("path connecting", "round", s.round+1, "profile", name, "path", p, "connections", s.players)
		var lp *livePath
		lp, err = s.connectPath(ctx, p)
		if lp.gen != nil {
			lps = append(lps, lp)
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", p, err)
			break
		}
	}
	if err == nil {
		s.log.Info("interleaved windows starting", "round", s.round+1, "profile", name, "paths", order, "slot", s.cfg.Interleave)
		s.runLoads(ctx, lps)
	}
	runs := make([]PathRun, 0, len(lps))
	for _, lp := range lps {
		if derr := s.disconnectPath(ctx, lp); derr != nil && err == nil {
			err = fmt.Errorf("%s: %w", lp.path, derr)
		}
		runs = append(runs, lp.pr)
		logRun(s.log, lp.pr)
	}
	return runs, err
}

func logRun(log *slog.Logger, pr PathRun) {
	attrs := []any{"round", pr.Round + 1, "path", pr.Path, "connected", pr.Connect.OK,
		"connects_per_s", int(pr.Connect.PerSecond), "idle_kb_per_conn", fmt.Sprintf("%.1f", pr.IdleBytesPerConn/1024)}
	if pr.Light != nil {
		attrs = append(attrs, "light_p50_us", pr.Light.Latency.P50, "light_p99_us", pr.Light.Latency.P99)
	}
	if pr.Paced != nil {
		attrs = append(attrs, "rt_per_s", int(pr.Paced.RoundTripsPerSecond), "frames_per_cpu_s", int(pr.Paced.FramesPerCPUSecond),
			"p50_us", pr.Paced.Latency.P50, "p99_us", pr.Paced.Latency.P99)
	}
	if pr.Saturated != nil {
		attrs = append(attrs, "sat_rt_per_s", int(pr.Saturated.RoundTripsPerSecond), "sat_frames_per_cpu_s", int(pr.Saturated.FramesPerCPUSecond))
	}
	if g := pr.Game; g != nil {
		attrs = append(attrs, "profile", pr.Profile, "received_per_s", int(g.RoundTripsPerSecond), "frames_per_cpu_s", int(g.FramesPerCPUSecond),
			"p50_us", g.Latency.P50, "p99_us", g.Latency.P99, "p999_us", g.Latency.P999, "lost", g.Lost)
	}
	attrs = append(attrs, "unexpected", pr.Unexpected)
	log.Info("path done", attrs...)
}

// revision is the VCS revision the binary was built from, when Go recorded it.
func revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
