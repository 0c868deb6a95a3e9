package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is a batch of requests or connections: how many, how fast, and what they cost the
// process under test.
type Phase struct {
	Count        int            `json:"count"`
	OK           int            `json:"ok"`
	Errors       map[string]int `json:"errors,omitempty"`
	Seconds      float64        `json:"seconds"`
	PerSecond    float64        `json:"per_second"`
	CPUSeconds   float64        `json:"cpu_seconds"`    // of the process under test (Usher, nginx, or the game servers for direct)
	PerCPUSecond float64        `json:"per_cpu_second"` // OK / CPUSeconds
	Latency      Latency        `json:"latency"`
}

// LoadResult is one measured window of traffic over the connected players.
type LoadResult struct {
	Mode             string  `json:"mode"`                // light, paced or saturated; or a game profile's name
	RoomSize         int     `json:"room_size,omitempty"` // broadcast: each message goes to the other RoomSize−1 players of a room
	WindowSeconds    float64 `json:"window_seconds"`
	OfferedPerSecond float64 `json:"offered_per_second,omitempty"` // paced: messages sent per second by all players
	Sent             uint64  `json:"sent"`
	// Expected is the messages players should receive: Sent (echo), or Sent × (RoomSize−1).
	Expected uint64 `json:"expected"`
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"` // Expected − Received
	// RoundTripsPerSecond is messages received per second: round trips in echo mode, deliveries
	// in broadcast mode.
	RoundTripsPerSecond  float64 `json:"round_trips_per_second"`
	HopCPUSeconds        float64 `json:"hop_cpu_seconds"` // the relaying process: Usher, nginx, or (direct) the echo servers
	GameServerCPUSeconds float64 `json:"game_server_cpu_seconds"`
	GeneratorCPUSeconds  float64 `json:"generator_cpu_seconds"`
	// FramesPerCPUSecond is frames relayed per CPU-second of the hop: a proxy relays two frames
	// per round trip (one each way), an echo server handles one (it reads it and writes it back).
	// Each is one read and one write of a frame. In broadcast mode a proxy relays one frame up and
	// RoomSize−1 down per message sent; a game server handles one frame per delivery.
	FramesPerCPUSecond float64  `json:"frames_per_cpu_second"`
	CPUPerRoundTripUS  float64  `json:"cpu_per_round_trip_us"` // all processes: generator, hop, game servers
	AllocsPerFrame     *float64 `json:"allocs_per_frame,omitempty"`
	Latency            Latency  `json:"latency"`
	// SlotSeconds is set when the paths' windows were interleaved (--interleave): the window
	// was this path's slots of this length, taken in turn with the other paths'.
	SlotSeconds float64 `json:"slot_seconds,omitempty"`
	// Turns is each of the path's turns, in order (interleaved windows only): which turn made
	// the window's tail, and whose wait for a CPU went with it.
	Turns []Turn `json:"turns,omitempty"`
	// API is the token requests Usher served during the window beside the relay (--api-rate).
	API *APILoad `json:"api_load,omitempty"`
}

// Turn is one turn of an interleaved window: its latency, and how long the threads of each of
// the path's processes waited on a run queue during it (runnable, not running: the scheduler
// holding them back), and Usher's garbage collections in it.
type Turn struct {
	Latency
	HopRunQueueMS        float64 `json:"hop_run_queue_ms"`
	GameServerRunQueueMS float64 `json:"game_server_run_queue_ms"`
	GeneratorRunQueueMS  float64 `json:"generator_run_queue_ms"`
	GCCycles             *int    `json:"gc_cycles,omitempty"` // Usher only
}

// APILoad is the API traffic the bench sent Usher during a load window (--api-rate): POST
// /request_token at a fixed rate, so the API runs beside the relay as it does in production.
type APILoad struct {
	Rate     float64 `json:"rate"` // asked for, per second
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
}

// PathRun is one path in one round.
type PathRun struct {
	Path                 string            `json:"path"`
	Round                int               `json:"round"`
	Connections          int               `json:"connections"`
	Tokens               *Phase            `json:"tokens,omitempty"`
	Joins                *Phase            `json:"joins,omitempty"`
	Connect              Phase             `json:"connect"`
	RSSBase              int64             `json:"rss_base_bytes"`
	RSSIdle              int64             `json:"rss_idle_bytes"`
	RSSLoad              int64             `json:"rss_load_bytes"`
	IdleBytesPerConn     float64           `json:"idle_bytes_per_connection"`
	RSSIdleLive          int64             `json:"rss_idle_after_gc_bytes,omitempty"` // usher: after a full collection
	IdleLiveBytesPerConn float64           `json:"idle_bytes_per_connection_after_gc,omitempty"`
	LoadBytesPerConn     float64           `json:"load_bytes_per_connection"`
	Goroutines           *GoroutineCounts  `json:"goroutines,omitempty"`
	Light                *LoadResult       `json:"light,omitempty"` // latency at light load (P3)
	Paced                *LoadResult       `json:"paced,omitempty"`
	Saturated            *LoadResult       `json:"saturated,omitempty"`
	Profile              string            `json:"profile,omitempty"` // the game profile this run is of (ProfileReport.Runs)
	Game                 *LoadResult       `json:"game,omitempty"`    // a game profile's window
	Unexpected           uint64            `json:"unexpected_closes"`
	CloseCodes           map[string]uint64 `json:"close_codes,omitempty"` // "0" is a connection that ended without a close frame
	ProtocolErrors       uint64            `json:"protocol_errors"`
	Misrouted            uint64            `json:"misrouted"`
	CloseTimeouts        uint64            `json:"close_timeouts"`
	Lagged               uint64            `json:"generator_lagged"`
	Backlogged           uint64            `json:"generator_backlogged"`
	DisconnectSecs       float64           `json:"disconnect_seconds"`
	Problems             []string          `json:"problems,omitempty"`
}

// GoroutineCounts are Usher's goroutines around a path run.
type GoroutineCounts struct {
	Base     float64 `json:"base"`
	Idle     float64 `json:"idle"` // all players connected
	PerConn  float64 `json:"per_connection"`
	After    float64 `json:"after"` // all players gone
	Sessions float64 `json:"sessions_idle"`
}

// stack is what one round runs against.
type stack struct {
	cfg      Config
	u        *usherProc
	ng       *nginxProc
	log      *slog.Logger
	out      string // report directory (pprof profiles)
	round    int
	profile  *Profile // nil: the default phases
	players  int      // per path
	roomSize int      // broadcast: players per room (and game server); 0: echo
	// paths are the round's paths; with ownServers each has its own game servers (see servers).
	paths      []string
	ownServers bool
}

// servers are the game servers of path: all of them when the paths run in turn; when their
// windows are interleaved every path is connected at once, and each has a set of its own (as
// many as one path would have), so a room never mixes players of two paths.
func (s *stack) servers(path string) []gameServer {
	all := s.u.servers
	if !s.ownServers {
		return all
	}
	k, per := slices.Index(s.paths, path), len(all)/len(s.paths)
	return all[k*per : (k+1)*per]
}

// server is the game server of path's player i: one room of roomSize players each in
// broadcast mode, spread evenly in echo mode.
func (s *stack) server(path string, i int) gameServer {
	set := s.servers(path)
	if s.roomSize >= 2 {
		return set[i/s.roomSize]
	}
	return set[i%len(set)]
}

// gameServers are the processes of path's game servers.
func (s *stack) gameServers(path string) procGroup {
	set := s.servers(path)
	g := make(procGroup, len(set))
	for i, srv := range set {
		g[i] = srv.PID
	}
	return g
}

// receivers is how many players get each message: its sender (echo), or the rest of its room.
func (s *stack) receivers() int { return max(s.roomSize-1, 1) }

func (s *stack) hop(path string) procGroup {
	switch path {
	case PathUsher:
		return procGroup{s.u.pid()}
	case PathNginx:
		return s.ng.group
	}
	return s.gameServers(path)
}

// livePath is a path whose players are connected: what its load windows and its disconnect
// need.
type livePath struct {
	pr        PathRun
	path      string
	gen       *generator
	hop, gs   procGroup // the relaying process(es), and the path's game servers
	connected int
}

// problem notes something that went wrong in the path's run (the report lists it).
func (lp *livePath) problem(log *slog.Logger, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	lp.pr.Problems = append(lp.pr.Problems, msg)
	log.Warn("problem", "path", lp.path, "round", lp.pr.Round, "msg", msg)
}

// runPath connects s.players players through path, loads them, and disconnects them.
func (s *stack) runPath(ctx context.Context, path string) (PathRun, error) {
	lp, err := s.connectPath(ctx, path)
	if err != nil {
		if lp.gen != nil {
			lp.gen.stop()
		}
		return lp.pr, err
	}
	s.runLoads(ctx, []*livePath{lp})
	err = s.disconnectPath(ctx, lp)
	return lp.pr, err
}

// runLoads runs the load windows over the connected paths: the game profile's window, or the
// default phases (light, paced, saturated). With several paths their windows are interleaved
// (see load).
func (s *stack) runLoads(ctx context.Context, lps []*livePath) {
	cfg := s.cfg
	if s.profile != nil {
		for i, lr := range s.load(ctx, lps, modePaced, s.profile.Rate, cfg.Duration) {
			lp := lps[i]
			lp.pr.Game = lr
			lr.Mode = s.profile.Name
			if lr.Lost > 0 {
				lp.problem(s.log, "%d of %d messages lost", lr.Lost, lr.Expected)
			}
		}
		return
	}
	if cfg.LightRate > 0 {
		for i, lr := range s.load(ctx, lps, modePaced, cfg.LightRate, cfg.Duration) {
			lps[i].pr.Light = lr
			lr.Mode = "light"
		}
	}
	for i, lr := range s.load(ctx, lps, modePaced, cfg.Rate, cfg.Duration) {
		lps[i].pr.Paced = lr
	}
	if cfg.Saturate > 0 && ctx.Err() == nil {
		for i, lr := range s.load(ctx, lps, modeSaturate, cfg.SaturateRate, cfg.Saturate) {
			lps[i].pr.Saturated = lr
		}
	}
}

// connectPath gets s.players players through path (for usher: tokens and joins through the
// API first), waits for the game servers to have them all, and reads the hop's idle memory.
func (s *stack) connectPath(ctx context.Context, path string) (*livePath, error) {
	cfg := s.cfg
	n := s.players
	lp := &livePath{pr: PathRun{Path: path, Round: s.round, Connections: n}, path: path, hop: s.hop(path), gs: s.gameServers(path)}
	pr := &lp.pr
	if s.profile != nil {
		pr.Profile = s.profile.Name
	}
	hop := lp.hop

	// Who connects where.
	jobs := make([]dialJob, n)
	prefix := fmt.Sprintf("%s%d-", path[:1], s.round)
	for i := range jobs {
		srv := s.server(path, i)
		q := url.Values{"usher_player": {prefix + strconv.Itoa(i)}, "usher_room": {srv.Room}}.Encode()
		switch path {
		case PathDirect:
			jobs[i] = dialJob{addr: srv.addr(), uri: "/?" + q}
		case PathNginx:
			jobs[i] = dialJob{addr: s.ng.addr, uri: fmt.Sprintf("/gs/%d/?%s", srv.Port, q)}
		}
	}
	var gBase float64
	if path == PathUsher {
		m, _ := scrape(ctx, s.u.addrs.Admin, "go_goroutines")
		gBase = m["go_goroutines"]
		players := make([]player, n)
		// Tokens, then joins: each through the real API, measured on Usher's CPU.
		pr.Tokens = s.measure(ctx, hop, n, cfg.HTTPConcurrency, func(i int) error {
			p, err := s.u.api.token(ctx)
			players[i] = p
			return err
		})
		pr.Joins = s.measure(ctx, hop, n, cfg.HTTPConcurrency, func(i int) error {
			if players[i].token == "" {
				return errors.New("no token")
			}
			t, _, err := s.u.api.join(ctx, players[i].token, benchGame, s.server(path, i).Room)
			players[i].ticket = t
			return err
		})
		s.u.api.close() // idle keep-alive connections would count as Usher goroutines
		for i := range jobs {
			jobs[i] = dialJob{addr: s.u.addrs.Public, uri: "/connect?ticket=" + url.QueryEscape(players[i].ticket)}
		}
	}
	if path == PathUsher {
		// Tokens and joins left garbage: collect it, so the baseline is what Usher holds.
		if _, err := s.u.collect(ctx); err != nil {
			lp.problem(s.log, "garbage collection before the baseline: %v", err)
		}
	}
	pr.RSSBase = hop.rss()

	gen, err := newGenerator(cfg.GenWorkers, cfg.Size, s.roomSize)
	if err != nil {
		return lp, err
	}
	lp.gen = gen
	pr.Connect = *s.measure(ctx, hop, n, cfg.ConnectConcurrency, func(i int) error {
		if path == PathUsher && jobs[i].uri == "/connect?ticket=" {
			return errors.New("no ticket")
		}
		src := net.IPv4(127, 0, 0, byte(1+i%cfg.SourceIPs))
		fd, rest, err := dialWS(ctx, src, jobs[i], 15*time.Second)
		if err != nil {
			return err
		}
		return gen.add(fd, uint32(i), rest) // player i: in broadcast mode, room i/roomSize
	})
	connected := pr.Connect.OK
	if connected < n {
		lp.problem(s.log, "%d of %d connections failed: %v", n-connected, n, pr.Connect.Errors)
	}
	// Wait until the game servers have every player (the usher and nginx paths report them
	// asynchronously), then let the connect storm's garbage settle.
	if err := waitUntil(ctx, 30*time.Second, func() (bool, error) {
		c, err := s.u.playersOn(ctx, s.servers(path))
		return c >= gen.openConns(), err
	}); err != nil {
		lp.problem(s.log, "game servers did not report every player connected: %v", err)
	}
	sleep(ctx, cfg.Settle)
	pr.RSSIdle = hop.rss()
	if connected > 0 {
		pr.IdleBytesPerConn = float64(pr.RSSIdle-pr.RSSBase) / float64(connected)
	}
	if path == PathUsher && connected > 0 {
		// The same after a full collection: what the players hold, without the GC's headroom
		// and the connect storm's garbage.
		if _, err := s.u.collect(ctx); err == nil {
			pr.RSSIdleLive = hop.rss()
			pr.IdleLiveBytesPerConn = float64(pr.RSSIdleLive-pr.RSSBase) / float64(connected)
		}
	}
	if path == PathUsher {
		m, _ := scrape(ctx, s.u.addrs.Admin, "go_goroutines", "usher_proxy_sessions")
		pr.Goroutines = &GoroutineCounts{Base: gBase, Idle: m["go_goroutines"], Sessions: m["usher_proxy_sessions"]}
		if connected > 0 {
			pr.Goroutines.PerConn = (pr.Goroutines.Idle - gBase) / float64(connected)
		}
	}
	lp.connected = connected
	return lp, ctx.Err()
}

// disconnectPath closes every player of lp with a close handshake, waits for the hop and the
// game servers to let go of them, and stops its generator.
func (s *stack) disconnectPath(ctx context.Context, lp *livePath) error {
	pr, path, gen, connected := &lp.pr, lp.path, lp.gen, lp.connected
	defer gen.stop()
	if connected > 0 {
		pr.LoadBytesPerConn = float64(pr.RSSLoad-pr.RSSBase) / float64(connected)
	}

	// Disconnect everyone with a close handshake and wait for the hop and the game servers to
	// let go of them.
	t0 := time.Now()
	gen.closeAll(10 * time.Second)
	st := gen.collect()
	pr.Unexpected, pr.ProtocolErrors, pr.Misrouted, pr.CloseTimeouts = st.Unexpected, st.ProtocolErrors, st.Misrouted, st.CloseTimeouts
	if pr.Misrouted > 0 {
		lp.problem(s.log, "%d messages arrived on a connection they were not for", pr.Misrouted)
	}
	for code, k := range st.CloseCodes {
		if pr.CloseCodes == nil {
			pr.CloseCodes = map[string]uint64{}
		}
		pr.CloseCodes[strconv.Itoa(code)] = k
	}
	if err := waitUntil(ctx, 30*time.Second, func() (bool, error) {
		if path == PathUsher {
			m, err := scrape(ctx, s.u.addrs.Admin, "usher_proxy_sessions")
			if err != nil || m["usher_proxy_sessions"] > 0 {
				return false, err
			}
		}
		c, err := s.u.playersOn(ctx, s.servers(path))
		return c == 0, err
	}); err != nil {
		lp.problem(s.log, "players still connected after the disconnect: %v", err)
	}
	pr.DisconnectSecs = time.Since(t0).Seconds()
	if path == PathUsher {
		// Right after the disconnect: fasthttp's idle workers linger for 10 s (the soak waits
		// for them; here the figure is only informative).
		m, _ := scrape(ctx, s.u.addrs.Admin, "go_goroutines")
		pr.Goroutines.After = m["go_goroutines"]
	}
	if pr.Unexpected > 0 {
		lp.problem(s.log, "%d unexpected closes (close codes %v)", pr.Unexpected, pr.CloseCodes)
	}
	return ctx.Err()
}

// measure runs do n times on workers goroutines and reads the hop's CPU around it.
func (s *stack) measure(ctx context.Context, hop procGroup, n, workers int, do func(i int) error) *Phase {
	c0 := hop.cpu()
	ok, hist, errs, wall := parallel(ctx, n, workers, do)
	cpu := (hop.cpu() - c0).Seconds()
	p := &Phase{Count: n, OK: ok, Errors: errs, Seconds: wall.Seconds(), CPUSeconds: cpu, Latency: hist.summary()}
	if wall > 0 {
		p.PerSecond = float64(ok) / wall.Seconds()
	}
	if cpu > 0 {
		p.PerCPUSecond = float64(ok) / cpu
	}
	return p
}

// millis is d in milliseconds, to 0.01 ms.
func millis(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 1e2 }

// schedule lays out a load window of n paths that starts being loaded at now: the measured
// window begins at start and is slots slots of slot each (one slot, the whole window, for one
// path). Interleaved, the warm-up is whole rounds of turns (at least warmup per path) that begin
// at now, so every path warms up in a turn of its own just as it is measured, and each path's
// first send lands at the start of its first turn.
func schedule(now int64, warmup, turn, window time.Duration, n int) (start int64, slot time.Duration, slots int) {
	if n < 2 || turn <= 0 {
		return now + int64(warmup), window, 1
	}
	rounds := int64((warmup + turn - 1) / turn)
	return now + rounds*int64(n)*int64(turn), turn, n * int((window+turn-1)/turn)
}

// load runs one measured window of traffic over the connected paths and returns each path's
// result, in the order of lps. One path has the window to itself, after cfg.Warmup of the same
// load. Several paths take turns (--interleave): the window is cut into slots of
// cfg.Interleave, dealt to the paths in turn, each path's players sending only in its slots,
// until each path had window of them; the warm-up takes turns too (see schedule). Slow drifts of a shared
// machine (other work, its own background) then fall on every path alike, where windows a
// minute apart each met their own. Every CPU reading is taken at the slot boundaries and
// charged to the slot's path.
func (s *stack) load(ctx context.Context, lps []*livePath, mode loadMode, rate float64, window time.Duration) []*LoadResult {
	cfg := s.cfg
	n := len(lps)
	clock := lps[0].gen
	start, slot, slots := schedule(clock.now(), cfg.Warmup, cfg.Interleave, window, n)
	end := start + int64(slots)*int64(slot)
	turnsOf := func(i int) slotting { return slotting{base: start, length: int64(slot), of: n, at: i} }
	for i, lp := range lps {
		lp.gen.setLoad(mode, rate, start, end, turnsOf(i))
	}
	sleepUntil(ctx, clock, start)

	type charge struct{ hop, gs, self time.Duration }
	var (
		usher   *livePath
		at      int // usher's place in lps
		self    = procGroup{os.Getpid()}
		charges = make([]charge, n)
	)
	for i, lp := range lps {
		if lp.path == PathUsher {
			usher, at = lp, i
		}
	}
	// mallocs reads Usher's heap allocations and garbage collections so far.
	mallocs := func() (float64, float64, bool) {
		if usher == nil {
			return 0, 0, false
		}
		m, err := scrape(ctx, s.u.addrs.Admin, "go_memstats_mallocs_total", "go_gc_duration_seconds_count")
		v, ok := m["go_memstats_mallocs_total"]
		gc, gcOK := m["go_gc_duration_seconds_count"]
		return v, gc, err == nil && ok && gcOK
	}
	// A scrape allocates in Usher too: measure what one costs and take it off.
	m0, _, ok0 := mallocs()
	m1, _, ok1 := mallocs()
	scrapeCost := m1 - m0
	span := time.Duration(end - clock.now())
	apiDone := make(chan *APILoad, 1)
	if cfg.APIRate > 0 && usher != nil {
		go func() { apiDone <- s.apiLoad(ctx, clock, turnsOf(at), cfg.APIRate, time.Duration(slots/n)*slot) }()
	} else {
		apiDone <- nil
	}
	profDone := make(chan struct{})
	if cfg.Pprof && usher != nil && s.round == 0 && (s.profile != nil || mode == modePaced && rate == cfg.Rate) {
		name := "usher-cpu.pprof"
		if s.profile != nil {
			name = "usher-cpu-" + s.profile.Name + ".pprof"
		}
		go func() {
			defer close(profDone)
			s.cpuProfile(ctx, span, name)
		}()
	} else {
		close(profDone)
	}

	// Slot by slot: read the CPU of the slot's path at its start and end, and each hop's memory
	// at the middle of its middle slot.
	// Usher's allocations are counted over its turns only (a scrape's own cost taken off each):
	// between them it still serves its game servers' heartbeats.
	var (
		allocs   float64
		allocsOK = ok0 && ok1
		seen     = make([]histogram, n) // each path's latencies at the end of its last turn
		turns    = make([][]Turn, n)
	)
	for k := 0; k < slots && ctx.Err() == nil; k++ {
		lp, c := lps[k%n], &charges[k%n]
		t0 := start + int64(k)*int64(slot)
		sleepUntil(ctx, clock, t0)
		var ma, gca float64
		if lp == usher && allocsOK {
			ma, gca, allocsOK = mallocs()
		}
		// A turn's run-queue waits (interleaved only: one path keeps no turns) are read outside
		// the CPU readings: reading every game server's threads costs the bench CPU.
		var hw, gw, sw time.Duration
		if n > 1 {
			hw, gw, sw = lp.hop.wait(), lp.gs.wait(), self.wait()
		}
		h0, g0, s0 := lp.hop.cpu(), lp.gs.cpu(), self.cpu()
		if k/n == slots/n/2 {
			sleepUntil(ctx, clock, t0+int64(slot)/2)
			if r := lp.hop.rss(); r > lp.pr.RSSLoad {
				lp.pr.RSSLoad = r
			}
		}
		sleepUntil(ctx, clock, t0+int64(slot))
		c.hop += lp.hop.cpu() - h0
		c.gs += lp.gs.cpu() - g0
		c.self += self.cpu() - s0
		var gcs *int
		if lp == usher && allocsOK {
			var mb, gcb float64
			mb, gcb, allocsOK = mallocs()
			allocs += max(mb-ma-scrapeCost, 0)
			if allocsOK {
				gcs = new(int(gcb - gca))
			}
		}
		if n > 1 {
			turn := Turn{HopRunQueueMS: millis(lp.hop.wait() - hw), GameServerRunQueueMS: millis(lp.gs.wait() - gw),
				GeneratorRunQueueMS: millis(self.wait() - sw), GCCycles: gcs}
			st := lp.gen.collect()
			h := st.hist
			h.sub(&seen[k%n])
			seen[k%n] = st.hist
			turn.Latency = h.summary()
			turns[k%n] = append(turns[k%n], turn)
		}
	}
	<-profDone
	api := <-apiDone

	for _, lp := range lps {
		lp.gen.idleAll()
	}
	// Drain: wait for the window's messages to come back (or 2 s).
	fanout := uint64(s.receivers())
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, lp := range lps {
			st := lp.gen.collect()
			done = done && st.RecvWin >= st.SentWin*fanout
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	active := time.Duration(slots/n) * slot // each path's share of the window
	results := make([]*LoadResult, n)
	for i, lp := range lps {
		st := lp.gen.collect()
		lp.pr.Lagged += st.Lagged
		lp.pr.Backlogged += st.Backlogged
		c := charges[i]
		expected := st.SentWin * fanout
		lr := &LoadResult{
			Mode: map[loadMode]string{modePaced: "paced", modeSaturate: "saturated"}[mode], WindowSeconds: active.Seconds(),
			Sent: st.SentWin, Expected: expected, Received: st.RecvWin, Lost: expected - min(st.RecvWin, expected),
			HopCPUSeconds: c.hop.Seconds(), GameServerCPUSeconds: c.gs.Seconds(), GeneratorCPUSeconds: c.self.Seconds(),
			Latency: st.hist.summary(),
		}
		if n > 1 {
			lr.SlotSeconds = slot.Seconds()
			lr.Turns = turns[i]
		}
		if mode == modePaced {
			lr.OfferedPerSecond = rate * float64(lp.gen.openConns())
		}
		if s.roomSize >= 2 {
			lr.RoomSize = s.roomSize
		}
		lr.RoundTripsPerSecond = float64(st.RecvWin) / active.Seconds()
		// Frames the hop handled per message received: a proxy relays one frame up per fanout
		// frames down (echo: one each way, 2); a game server writes one per delivery, 1.
		framesPerRecv := float64(fanout+1) / float64(fanout)
		if lp.path == PathDirect {
			framesPerRecv = 1
			lr.GameServerCPUSeconds = lr.HopCPUSeconds // the hop is the game servers
		}
		if lr.HopCPUSeconds > 0 {
			lr.FramesPerCPUSecond = framesPerRecv * float64(st.RecvWin) / lr.HopCPUSeconds
		}
		if st.RecvWin > 0 {
			total := lr.GameServerCPUSeconds + lr.GeneratorCPUSeconds
			if lp.path != PathDirect {
				total += lr.HopCPUSeconds
			}
			lr.CPUPerRoundTripUS = total * 1e6 / float64(st.RecvWin)
			if lp == usher && allocsOK {
				a := allocs / (framesPerRecv * float64(st.RecvWin))
				a = math.Round(a*1e4) / 1e4
				lr.AllocsPerFrame = &a
			}
		}
		if lp == usher {
			lr.API = api
		}
		results[i] = lr
	}
	return results
}

// apiLoad asks Usher for tokens at rate per second over d of sending time in the slots of sl
// (the usher path's turns; all of them when its window is not interleaved), at most apiInFlight
// at a time, and says how it went. Requests are due at fixed times on clock; one that would
// start after d is not sent.
func (s *stack) apiLoad(ctx context.Context, clock *generator, sl slotting, rate float64, d time.Duration) *APILoad {
	var (
		next  atomic.Int64
		mu    sync.Mutex
		hist  histogram
		n, ec int
		wg    sync.WaitGroup
	)
	period := time.Duration(float64(time.Second) / rate)
	for range apiInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				a := time.Duration(next.Add(1)-1) * period
				if a >= d {
					return
				}
				sleepUntil(ctx, clock, sl.abs(int64(a)))
				t0 := time.Now()
				_, err := s.u.api.token(ctx)
				took := time.Since(t0)
				mu.Lock()
				n++
				if err != nil {
					ec++
				} else {
					hist.record(int64(took))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.u.api.close()
	l := hist.summary()
	return &APILoad{Rate: rate, Requests: n, Errors: ec, P50MS: round3(l.P50 / 1000), P99MS: round3(l.P99 / 1000)}
}

// apiInFlight bounds the token requests of --api-rate in flight at once.
const apiInFlight = 32

// cpuProfile saves a CPU profile of Usher over d to the report directory, as file name.
func (s *stack) cpuProfile(ctx context.Context, d time.Duration, name string) {
	u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.u.addrs.Control, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		s.log.Warn("pprof", "err", err)
		return
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		s.log.Warn("pprof", "err", err)
		return
	}
	path := filepath.Join(s.out, name)
	f, err := os.Create(path)
	if err != nil {
		s.log.Warn("pprof", "err", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err == nil {
		s.log.Info("saved Usher CPU profile", "file", path)
	}
}

// sleepUntil sleeps until the generator's clock reads t, or ctx ends.
func sleepUntil(ctx context.Context, g *generator, t int64) {
	sleep(ctx, time.Duration(t-g.now()))
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitUntil polls f every 50 ms until it reports true, for at most limit.
func waitUntil(ctx context.Context, limit time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := f()
		if ok && err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("condition not met")
			}
			return fmt.Errorf("after %s: %w", limit, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sleep(ctx, 50*time.Millisecond)
	}
}
