// Package bench measures Usher's relay and API against the direct path and nginx, side by side
// on loopback: the logic of cmd/usher-bench.
//
// One run starts, per round, a fresh Usher (the real app wiring, as its own process) whose
// local fleet runs example game servers in echo mode, and nginx when it is installed. It then
// drives N simulated players through each path in turn — direct (load generator → game
// server), usher (→ Usher /connect → game server) and nginx (→ nginx → game server) — in an
// order that rotates every round, and reports medians over the rounds: relayed frames per
// CPU-second of the relaying process (from /proc/<pid>/stat), round-trip latency and what each
// proxy adds to it, RSS per connection, connects per second, errors; and, through Usher's real
// API, tokens and joins per second and per CPU-second. An opt-in soak holds thousands of
// players for a while and cycles them, to check memory and goroutines come back.
package bench

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Paths a bench can drive.
const (
	PathDirect = "direct"
	PathUsher  = "usher"
	PathNginx  = "nginx"
)

// Config is a bench run. Zero values take the defaults of DefaultConfig through the flags.
type Config struct {
	Connections  int           // simulated players per path
	Rate         float64       // messages per second per player in the paced phase
	LightRate    float64       // messages per second per player in the light phase (latency, P3); 0 skips it
	Size         int           // message payload bytes (at least 16: timestamp and ids)
	Duration     time.Duration // measured window of the paced phase
	Warmup       time.Duration // load before each measured window
	Settle       time.Duration // pause between all connected and the idle RSS reading
	Saturate     time.Duration // measured window of the saturated phase (0: skip it)
	SaturateRate float64       // per-player cap on the saturated phase (Usher refuses > 200/s)
	Rounds       int           // interleaved rounds; medians are reported
	// Interleave, when > 0, connects every path at once in a round and interleaves their load
	// windows in slots of this length (see stack.load); 0 runs the paths one after another.
	Interleave time.Duration
	Paths      []string // which of direct, usher, nginx to drive
	// Profiles are the game profiles to run (see ParseProfile), each its own window per path per
	// round; "default" is the phases above. Empty: the default phases only.
	Profiles     []string
	NginxWorkers string // nginx worker_processes: "auto" (one per core) or a number

	GenWorkers         int      // load generator goroutines (each with its own epoll)
	ConnectConcurrency int      // connections opened at once in a connect storm
	HTTPConcurrency    int      // API requests in flight for tokens and joins
	SourceIPs          int      // loopback source addresses the players connect from (127.0.0.1…)
	MaxMessageRate     int      // Usher's --max-message-rate; -1 keeps its default (200)
	APIRate            float64  // token requests per second to Usher during each of its load windows (0: none)
	UsherEnv           []string // extra KEY=VALUE for Usher's process (GOMAXPROCS, GOGC, GODEBUG…)
	RedisURL           string   // Usher's --redis-url: its shared state in this Redis ("" in memory)

	Out     string // directory for bench-report.md and bench-report.json
	WorkDir string // where to keep logs and configs (empty: a temporary directory, removed)
	Pprof   bool   // save a CPU profile of Usher during the first usher paced window

	WaitLoad    float64       // wait until the 1-minute load average is below this (0: start at once)
	WaitLoadFor time.Duration // for at most this long, then run anyway (the report says so)

	Soak            time.Duration // hold SoakConnections players this long (0: no soak)
	SoakConnections int
	SoakCycles      int     // connect-all / disconnect-all cycles before the hold
	SoakRate        float64 // messages per second per player while held

	// soakPause is how long the soak lets Usher settle before the first cycle and after each
	// disconnect before counting goroutines (0: 11 s, past fasthttp's 10 s idle-worker
	// timeout, then up to 15 s more for them to go); tests shorten both to it.
	soakPause time.Duration
}

// DefaultConfig is the bench's default: 2,000 players, 64-byte messages, a light phase at 1
// message a second each (latency), a paced one at 10 (efficiency) and a saturated one, three
// rounds.
func DefaultConfig() Config {
	return Config{
		Connections: 2000, Rate: 10, LightRate: 1, Size: 64, Duration: 10 * time.Second, Warmup: 2 * time.Second, Settle: 2 * time.Second,
		Saturate: 5 * time.Second, SaturateRate: 100, Rounds: 3,
		Paths: []string{PathDirect, PathUsher, PathNginx}, NginxWorkers: "auto",
		GenWorkers: 2, ConnectConcurrency: 32, HTTPConcurrency: 16, SourceIPs: 8, MaxMessageRate: -1,
		Out: ".", WaitLoadFor: 15 * time.Minute, SoakConnections: 9500, SoakCycles: 10, SoakRate: 1,
	}
}

// maxConnections keeps a proxy's two sockets per player under the ~20,000 open files a
// process may have here.
const maxConnections = 9900

// maxInterleavedPlayers bounds the players of all paths connected at once (--interleave): the
// bench holds a socket for each, under the ~20,000 open files a process may have here.
const maxInterleavedPlayers = 18000

// Validate reports every setting out of range.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	limit := 200.0
	if c.MaxMessageRate > 0 {
		limit = float64(c.MaxMessageRate)
	}
	unlimited := c.MaxMessageRate == 0
	check(c.Connections >= 1 && c.Connections <= maxConnections, "--connections must be 1 to %d, got %d", maxConnections, c.Connections)
	check(c.Rate > 0 && (unlimited || c.Rate < limit), "--rate must be above 0 and below Usher's --max-message-rate (%v), got %v", limit, c.Rate)
	check(c.LightRate >= 0 && (unlimited || c.LightRate < limit), "--light-rate must be 0 to below Usher's --max-message-rate, got %v", c.LightRate)
	check(c.Size >= minPayloadSize && c.Size <= 60<<10, "--size must be %d to %d bytes, got %d", minPayloadSize, 60<<10, c.Size)
	check(c.Duration >= time.Second && c.Duration <= 10*time.Minute, "--duration must be 1s to 10m, got %s", c.Duration)
	check(c.Warmup >= 0 && c.Warmup <= time.Minute, "--warmup must be 0 to 1m, got %s", c.Warmup)
	check(c.Settle >= 0 && c.Settle <= time.Minute, "--settle must be 0 to 1m, got %s", c.Settle)
	check(c.Saturate >= 0 && c.Saturate <= 10*time.Minute, "--saturate must be 0 to 10m, got %s", c.Saturate)
	check(c.SaturateRate > 0 && (unlimited || c.SaturateRate < limit), "--saturate-rate must be above 0 and below Usher's --max-message-rate (%v), got %v", limit, c.SaturateRate)
	check(c.Rounds >= 0 && c.Rounds <= 20, "--rounds must be 0 to 20, got %d", c.Rounds)
	check(c.Rounds > 0 || c.Soak > 0, "--rounds 0 needs --soak")
	check(c.Interleave == 0 || c.Interleave >= 100*time.Millisecond && c.Interleave <= time.Minute, "--interleave must be 0 or 100ms to 1m, got %s", c.Interleave)
	check(c.Interleave == 0 || c.Connections*len(c.Paths) <= maxInterleavedPlayers,
		"--interleave connects every path at once: --connections × paths must be at most %d (the bench's own sockets), got %d", maxInterleavedPlayers, c.Connections*len(c.Paths))
	check(len(c.Paths) > 0, "--paths must name at least one path")
	for _, p := range c.Paths {
		check(p == PathDirect || p == PathUsher || p == PathNginx, "--paths: unknown path %q (direct, usher, nginx)", p)
	}
	check(!hasDup(c.Paths), "--paths: a path is named twice")
	check(!hasDup(c.Profiles), "--profiles: a profile is named twice")
	for _, name := range c.Profiles {
		if name == ProfileDefault {
			continue
		}
		p, err := ParseProfile(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("--profiles: %w", err))
			continue
		}
		check(unlimited || p.Rate < limit, "--profiles: %s sends %v messages/s per player, not below Usher's --max-message-rate (%v)", name, p.Rate, limit)
		check(p.RoomSize <= p.conns(c.Connections), "--profiles: %s needs at least %d players (it has %d)", name, p.RoomSize, p.conns(c.Connections))
		sets := 1
		if c.Interleave > 0 {
			sets = len(c.Paths) // a set of game servers per path
		}
		check(p.servers(c.Connections)*sets <= maxGameServers, "--profiles: %s would start %d game servers, at most %d (lower --connections or use bigger rooms)",
			name, p.servers(c.Connections)*sets, maxGameServers)
	}
	check(c.NginxWorkers != "", "--nginx-workers must be auto or a number")
	check(c.GenWorkers >= 1 && c.GenWorkers <= 16, "--gen-workers must be 1 to 16, got %d", c.GenWorkers)
	check(c.ConnectConcurrency >= 1 && c.ConnectConcurrency <= 1024, "--connect-concurrency must be 1 to 1024")
	check(c.HTTPConcurrency >= 1 && c.HTTPConcurrency <= 1024, "--http-concurrency must be 1 to 1024")
	check(c.SourceIPs >= 1 && c.SourceIPs <= 250, "--source-ips must be 1 to 250")
	check(c.MaxMessageRate >= -1, "--max-message-rate must be -1 (Usher's default), 0 (unlimited) or more")
	check(c.APIRate >= 0 && c.APIRate <= 20000, "--api-rate must be 0 to 20000 requests per second, got %v", c.APIRate)
	check(c.Out != "", "--out is required")
	check(c.WaitLoad >= 0 && c.WaitLoadFor >= 0 && c.WaitLoadFor <= 2*time.Hour, "--wait-load must be >= 0 and --wait-load-for 0 to 2h")
	check(c.Soak >= 0 && c.Soak <= 2*time.Hour, "--soak must be 0 to 2h, got %s", c.Soak)
	if c.Soak > 0 {
		check(c.SoakConnections >= 1 && c.SoakConnections <= maxConnections, "--soak-connections must be 1 to %d", maxConnections)
		check(c.SoakCycles >= 0 && c.SoakCycles <= 100, "--soak-cycles must be 0 to 100")
		check(c.SoakRate >= 0 && (unlimited || c.SoakRate < limit), "--soak-rate must be 0 to below Usher's --max-message-rate")
	}
	return errors.Join(errs...)
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func hasDup(s []string) bool {
	c := slices.Clone(s)
	slices.Sort(c)
	return len(slices.Compact(c)) != len(s)
}

// Flags registers every setting on fs, with c's values as defaults.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.IntVar(&c.Connections, "connections", c.Connections, "simulated players per path (at most 9900: two sockets each in the proxy)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "paced phase: messages per second per player")
	fs.Float64Var(&c.LightRate, "light-rate", c.LightRate, "light phase (latency at light load, P3): messages per second per player, for --duration; 0 skips it")
	fs.IntVar(&c.Size, "size", c.Size, "message payload bytes (at least 16)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "paced phase: measured window per path per round")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before each measured window")
	fs.DurationVar(&c.Settle, "settle", c.Settle, "pause after the connect storm before reading idle memory")
	fs.DurationVar(&c.Saturate, "saturate", c.Saturate, "saturated phase (one message in flight per player): measured window; 0 skips it")
	fs.Float64Var(&c.SaturateRate, "saturate-rate", c.SaturateRate, "saturated phase: most messages per second per player (Usher closes clients above --max-message-rate)")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "interleaved rounds (medians are reported; at least 3 for figures that count)")
	fs.DurationVar(&c.Interleave, "interleave", c.Interleave, "connect every path at once in a round and take their load windows in turns "+
		"of this length (e.g. 1s), so the machine's slow drifts fall on every path alike; 0 runs the paths one after another")
	fs.Func("paths", "comma-separated paths to drive: direct,usher,nginx (default all)", func(s string) error {
		c.Paths = splitList(s)
		return nil
	})
	fs.Func("profiles", "comma-separated game profiles, each a window of --duration per path per round: echo<rate> (e.g. echo20, echo30: "+
		"each message back to its sender), room<size>[@<rate>] (e.g. room4, room8: rooms of that many players, each message relayed to the "+
		"others of the room, 20/s unless @rate), either with :<players> to run that many players instead of --connections (e.g. room4:500), "+
		"default (the light, paced and saturated phases); without the flag: default only", func(s string) error {
		c.Profiles = splitList(s)
		return nil
	})
	fs.StringVar(&c.NginxWorkers, "nginx-workers", c.NginxWorkers, "nginx worker_processes (auto: one per core, like Usher's GOMAXPROCS)")
	fs.IntVar(&c.GenWorkers, "gen-workers", c.GenWorkers, "load generator goroutines, each with its own epoll")
	fs.IntVar(&c.ConnectConcurrency, "connect-concurrency", c.ConnectConcurrency, "connections opened at once in a connect storm")
	fs.IntVar(&c.HTTPConcurrency, "http-concurrency", c.HTTPConcurrency, "API requests in flight for tokens and joins")
	fs.IntVar(&c.SourceIPs, "source-ips", c.SourceIPs, "loopback source addresses players connect from (127.0.0.1 …)")
	fs.IntVar(&c.MaxMessageRate, "max-message-rate", c.MaxMessageRate, "Usher's --max-message-rate; -1 keeps Usher's default")
	fs.Float64Var(&c.APIRate, "api-rate", c.APIRate, "token requests per second (POST /request_token) sent to Usher during each of its load windows, "+
		"so the API runs beside the relay; its latency is in the report (0: none)")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Usher's --redis-url: tickets, rate limits, holds and room-code claims in this Redis, so the token, join and connect figures include it (empty: in memory)")
	fs.Func("usher-env", "KEY=VALUE added to Usher's environment (not its game servers'), for tuning experiments (e.g. GOMAXPROCS=1); repeatable", func(s string) error {
		if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", s)
		}
		c.UsherEnv = append(c.UsherEnv, s)
		return nil
	})
	fs.StringVar(&c.Out, "out", c.Out, "directory for bench-report.md and bench-report.json")
	fs.StringVar(&c.WorkDir, "work-dir", c.WorkDir, "keep configs and logs (Usher, game servers, nginx) here (default: a temporary directory, removed)")
	fs.Float64Var(&c.WaitLoad, "wait-load", c.WaitLoad, "first wait until the 1-minute load average is below this (e.g. 1.0 on a shared machine; 0: start at once)")
	fs.DurationVar(&c.WaitLoadFor, "wait-load-for", c.WaitLoadFor, "wait at most this long for --wait-load, then run anyway (the report notes it)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "save a CPU profile of Usher during the first usher paced window to --out/usher-cpu.pprof")
	fs.DurationVar(&c.Soak, "soak", c.Soak, "opt-in soak: after the rounds, connect/disconnect cycles, then hold --soak-connections players this long (e.g. 10m)")
	fs.IntVar(&c.SoakConnections, "soak-connections", c.SoakConnections, "soak: players")
	fs.IntVar(&c.SoakCycles, "soak-cycles", c.SoakCycles, "soak: connect-all / disconnect-all cycles before the hold")
	fs.Float64Var(&c.SoakRate, "soak-rate", c.SoakRate, "soak: messages per second per player while held (0: only keepalive pings)")
}
