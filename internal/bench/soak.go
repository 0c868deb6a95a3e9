package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// SoakResult is the opt-in soak (--soak): connect/disconnect cycles, then a long hold.
type SoakResult struct {
	Connections int           `json:"connections"`
	Cycles      *CyclesResult `json:"cycles,omitempty"`
	Hold        *HoldResult   `json:"hold,omitempty"`
}

// Cycle is one connect-all / disconnect-all cycle.
type Cycle struct {
	Connected           int     `json:"connected"`
	ConnectsPerSecond   float64 `json:"connects_per_second"`
	ConnectP99MS        float64 `json:"connect_p99_ms"`
	RSSConnected        int64   `json:"rss_connected_bytes"`
	GoroutinesConnected float64 `json:"goroutines_connected"`
	// RSSIdle is RSS after everyone left and the goroutines settled, with whatever garbage the
	// collector has not reached yet and free memory not yet returned to the OS: how much
	// depends on where the collector's cycle stood (shown, not judged).
	RSSIdle int64 `json:"rss_idle_bytes"`
	// RSSSettled is RSS after that, once full collections (enough to empty sync.Pools) have
	// returned free memory to the OS (through the bench's control listener): what Usher
	// still holds. HeapLive is the live part of its heap then.
	RSSSettled     int64   `json:"rss_settled_bytes"`
	HeapLive       int64   `json:"heap_live_bytes,omitempty"`
	GoroutinesIdle float64 `json:"goroutines_idle"`
	Unexpected     uint64  `json:"unexpected_closes"`
}

// CyclesResult sums the cycles up: growth is the largest value of cycles 2… over cycle 1's, and
// the goroutine baseline is the count after cycle 1 (which warms the pools).
type CyclesResult struct {
	Cycles                []Cycle `json:"cycles"`
	GoroutinesBefore      float64 `json:"goroutines_before"` // before cycle 1
	GoroutinesBase        float64 `json:"goroutines_base"`   // after cycle 1
	GoroutinesEnd         float64 `json:"goroutines_end"`
	RSSConnectedGrowthPct float64 `json:"rss_connected_growth_pct"`
	RSSIdleGrowthPct      float64 `json:"rss_idle_growth_pct"`
	RSSSettledGrowthPct   float64 `json:"rss_settled_growth_pct"`
	HeapLiveGrowthPct     float64 `json:"heap_live_growth_pct"`
}

// HoldResult is the long hold of every player.
type HoldResult struct {
	Seconds           float64           `json:"seconds"`
	Connected         int               `json:"connected"`
	Held              int               `json:"held"` // still open at the end
	Unexpected        uint64            `json:"unexpected_closes"`
	CloseCodes        map[string]uint64 `json:"close_codes,omitempty"`
	RSSStart          int64             `json:"rss_start_bytes"`
	RSSMax            int64             `json:"rss_max_bytes"`
	RSSEnd            int64             `json:"rss_end_bytes"`
	CPUSeconds        float64           `json:"usher_cpu_seconds"`
	MessagesPerSecond float64           `json:"round_trips_per_second"`
	Lost              uint64            `json:"lost"`
	Latency           Latency           `json:"latency"`
}

// runSoak runs the cycles and the hold on one Usher.
func runSoak(ctx context.Context, cfg Config, dir string, log *slog.Logger) (*SoakResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := cfg.SoakConnections
	rooms := echoServers(n)
	log.Info("soak starting", "connections", n, "cycles", cfg.SoakCycles, "hold", cfg.Soak, "rooms", rooms)
	u, err := startUsher(ctx, cfg, dir, rooms, 0, 0, log)
	if err != nil {
		return nil, err
	}
	defer u.stop()
	usher := procGroup{u.pid()}
	res := &SoakResult{Connections: n}

	players := make([]player, n)
	ok, _, errs, _ := parallel(ctx, n, cfg.HTTPConcurrency, func(i int) error {
		p, err := u.api.token(ctx)
		players[i] = p
		return err
	})
	if ok < n {
		return res, fmt.Errorf("tokens: %d of %d failed: %v", n-ok, n, errs)
	}
	goroutines := func() float64 {
		m, _ := scrape(ctx, u.addrs.Admin, "go_goroutines")
		return m["go_goroutines"]
	}
	// settled waits (at most 15 s, or soakPause when a test shortened it) for the goroutine
	// count to fall to floor: fasthttp keeps idle workers for 10 s after a burst.
	settleFor, step := 15*time.Second, time.Second
	if cfg.soakPause > 0 {
		settleFor, step = cfg.soakPause, cfg.soakPause/5
	}
	settled := func(floor float64) float64 {
		g := goroutines()
		for i := time.Duration(0); i < settleFor && g > floor && ctx.Err() == nil; i += step {
			sleep(ctx, step)
			g = goroutines()
		}
		return g
	}
	u.api.close()
	connectAll := func() (*generator, *Phase, error) {
		tickets := make([]string, n)
		ok, _, errs, _ := parallel(ctx, n, cfg.HTTPConcurrency, func(i int) error {
			t, _, err := u.api.join(ctx, players[i].token, benchGame, u.servers[i%len(u.servers)].Room)
			tickets[i] = t
			return err
		})
		u.api.close()
		if ok < n {
			return nil, nil, fmt.Errorf("joins: %d of %d failed: %v", n-ok, n, errs)
		}
		gen, err := newGenerator(cfg.GenWorkers, cfg.Size, 0)
		if err != nil {
			return nil, nil, err
		}
		var id atomic.Uint32
		s := &stack{cfg: cfg, u: u, log: log}
		ph := s.measure(ctx, usher, n, cfg.ConnectConcurrency, func(i int) error {
			src := net.IPv4(127, 0, 0, byte(1+i%cfg.SourceIPs))
			job := dialJob{addr: u.addrs.Public, uri: "/connect?ticket=" + url.QueryEscape(tickets[i])}
			fd, rest, err := dialWS(ctx, src, job, 15*time.Second)
			if err != nil {
				return err
			}
			return gen.add(fd, id.Add(1)-1, rest)
		})
		if err := waitUntil(ctx, 60*time.Second, func() (bool, error) {
			c, err := u.connectedPlayers(ctx)
			return c >= gen.openConns(), err
		}); err != nil {
			log.Warn("soak: game servers did not report every player", "err", err)
		}
		return gen, ph, nil
	}
	disconnectAll := func(gen *generator) {
		gen.closeAll(20 * time.Second)
		if err := waitUntil(ctx, 60*time.Second, func() (bool, error) {
			m, err := scrape(ctx, u.addrs.Admin, "usher_proxy_sessions")
			if err != nil || m["usher_proxy_sessions"] > 0 {
				return false, err
			}
			c, err := u.connectedPlayers(ctx)
			return c == 0, err
		}); err != nil {
			log.Warn("soak: players still connected", "err", err)
		}
		gen.stop()
	}

	pause := cmp.Or(cfg.soakPause, 11*time.Second)
	if cfg.SoakCycles > 0 {
		// Cycle 1 warms the pools (fasthttp workers, the game servers' keep-alive connections
		// to the bridge); the baseline is what is left after it.
		sleep(ctx, pause)
		cr := &CyclesResult{GoroutinesBefore: goroutines()}
		res.Cycles = cr
		for c := range cfg.SoakCycles {
			if ctx.Err() != nil {
				break
			}
			gen, ph, err := connectAll()
			if err != nil {
				return res, fmt.Errorf("cycle %d: %w", c+1, err)
			}
			sleep(ctx, 2*time.Second)
			cy := Cycle{Connected: ph.OK, ConnectsPerSecond: round3(ph.PerSecond), ConnectP99MS: round3(ph.Latency.P99 / 1000),
				RSSConnected: usher.rss(), GoroutinesConnected: goroutines()}
			disconnectAll(gen)
			cy.Unexpected = gen.collect().Unexpected
			// Every cycle gets the same settling time before the goroutines are counted (idle
			// keep-alive connections and fasthttp's idle workers go after about 10 s), so the
			// baseline and the later cycles compare like with like.
			sleep(ctx, pause)
			floor := cr.GoroutinesBase
			if c == 0 {
				floor = 0
			}
			cy.GoroutinesIdle = settled(floor)
			if c == 0 {
				cr.GoroutinesBase = cy.GoroutinesIdle
			}
			cy.RSSIdle = usher.rss()
			if live, err := u.collect(ctx); err == nil {
				cy.RSSSettled, cy.HeapLive = usher.rss(), live
			} else {
				log.Warn("soak: garbage collection", "err", err)
			}
			cr.Cycles = append(cr.Cycles, cy)
			log.Info("soak cycle", "cycle", c+1, "connected", cy.Connected, "connects_per_s", int(cy.ConnectsPerSecond),
				"rss_connected_mb", cy.RSSConnected>>20, "rss_idle_mb", cy.RSSIdle>>20, "rss_settled_mb", cy.RSSSettled>>20,
				"goroutines_idle", cy.GoroutinesIdle)
		}
		if len(cr.Cycles) > 0 {
			first := cr.Cycles[0]
			var maxC, maxI, maxS, maxH int64
			for _, cy := range cr.Cycles[1:] {
				maxC, maxI, maxS = max(maxC, cy.RSSConnected), max(maxI, cy.RSSIdle), max(maxS, cy.RSSSettled)
				maxH = max(maxH, cy.HeapLive)
			}
			if len(cr.Cycles) > 1 {
				cr.RSSConnectedGrowthPct = growthPct(maxC, first.RSSConnected)
				cr.RSSIdleGrowthPct = growthPct(maxI, first.RSSIdle)
				cr.RSSSettledGrowthPct = growthPct(maxS, first.RSSSettled)
				cr.HeapLiveGrowthPct = growthPct(maxH, first.HeapLive)
			}
			cr.GoroutinesEnd = cr.Cycles[len(cr.Cycles)-1].GoroutinesIdle
		}
	}

	if cfg.Soak > 0 && ctx.Err() == nil {
		gen, ph, err := connectAll()
		if err != nil {
			return res, fmt.Errorf("hold: %w", err)
		}
		h := &HoldResult{Connected: ph.OK, RSSStart: usher.rss()}
		res.Hold = h
		start := gen.now() + int64(time.Second)
		end := start + int64(cfg.Soak)
		if cfg.SoakRate > 0 {
			gen.setLoad(modePaced, cfg.SoakRate, start, end, slotting{})
		}
		c0 := usher.cpu()
		t0 := time.Now()
		for gen.now() < end && ctx.Err() == nil {
			sleep(ctx, min(5*time.Second, time.Duration(end-gen.now())))
			h.RSSMax = max(h.RSSMax, usher.rss())
		}
		h.Seconds = time.Since(t0).Seconds()
		h.CPUSeconds = (usher.cpu() - c0).Seconds()
		h.RSSEnd = usher.rss()
		gen.idleAll()
		sleep(ctx, time.Second)
		st := gen.collect()
		h.Held = gen.openConns()
		h.Unexpected = st.Unexpected
		for code, k := range st.CloseCodes {
			if h.CloseCodes == nil {
				h.CloseCodes = map[string]uint64{}
			}
			h.CloseCodes[strconv.Itoa(code)] = k
		}
		h.Lost = st.SentWin - min(st.RecvWin, st.SentWin)
		if h.Seconds > 0 {
			h.MessagesPerSecond = round3(float64(st.RecvWin) / h.Seconds)
		}
		h.Latency = st.hist.summary()
		log.Info("soak hold done", "held", h.Held, "unexpected", h.Unexpected, "rss_max_mb", h.RSSMax>>20)
		disconnectAll(gen)
	}
	if ctx.Err() != nil {
		return res, errors.Join(ctx.Err())
	}
	return res, nil
}

// growthPct is how much larger than base the largest later reading was, in percent (0
// without a base).
func growthPct(largest, base int64) float64 {
	if base <= 0 {
		return 0
	}
	return round3(100 * (float64(largest)/float64(base) - 1))
}
