// Package app wires Usher together: configuration in, a running service out. Tests start the
// whole thing on 127.0.0.1:0 with New and Run, exactly as `usher dev` does.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/internal/admin"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/clientip"
	"github.com/usher-gg/usher/internal/config"
	agonesfleet "github.com/usher-gg/usher/internal/fleet/agones"
	"github.com/usher-gg/usher/internal/fleet/local"
	"github.com/usher-gg/usher/internal/godotpack"
	"github.com/usher-gg/usher/internal/httpapi"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
	"github.com/usher-gg/usher/internal/origin"
	"github.com/usher-gg/usher/internal/portal"
	"github.com/usher-gg/usher/internal/proxy"
	"github.com/usher-gg/usher/internal/redis"
	"github.com/usher-gg/usher/internal/ticket"
	"github.com/usher-gg/usher/internal/version"
)

// Fleet is a fleet backend as the app runs it.
type Fleet interface {
	match.Fleet
	// Run runs the backend until ctx is done, then stops what it started.
	Run(ctx context.Context) error
}

// App is a configured Usher with its listeners open.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	API      *httpapi.Server
	Fleet    Fleet              // the backend in use
	Local    *local.Fleet       // the local fleet, in dev mode
	Agones   *agonesfleet.Fleet // the Agones fleet, in serve mode
	ready    func() bool        // the backend is ready to serve (nil: always)
	retry    match.Retry        // the allocation retry policy
	Tickets  ticket.Store
	memTix   *ticket.MemoryStore // Tickets when in memory (its sweeper runs with the app)
	Redis    *redis.Client       // the shared store, when --redis-url is set
	Proxy    *proxy.Proxy
	Tokens   *auth.Tokens

	// AdminPage is the admin listener's handler: the page, its API, /metrics and /healthz.
	AdminPage *admin.Handler
	// AdminToken is the admin page's token: the configured one, or one made for this run
	// (usher dev without one; then AdminTokenMade is true and the caller shows it).
	AdminToken     string
	AdminTokenMade bool

	publicLn net.Listener
	adminLn  net.Listener
	admin    *http.Server
}

// Option changes how New builds an App.
type Option func(*options)

type options struct {
	clock clock.WithTicker
}

// WithClock makes every part of the App (tokens, tickets, matchmaking and its retries,
// the fleet) tell time by clk instead of the real clock.
func WithClock(clk clock.WithTicker) Option { return func(o *options) { o.clock = clk } }

// New builds every part from cfg and opens both listeners (so ":0" addresses are known
// before Run). Close the App with Run's context, or Close if Run is never called.
func New(cfg config.Config, log *slog.Logger, opts ...Option) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{clock: clock.RealClock{}}
	for _, opt := range opts {
		opt(&o)
	}
	clk := o.clock
	// Warnings and errors are also kept for the admin page's "recent errors".
	recent := admin.NewRecent(50)
	log = slog.New(recent.Handler(log.Handler()))
	a := &App{cfg: cfg, log: log, Registry: prometheus.NewRegistry(), AdminToken: cfg.AdminToken}
	if a.AdminToken == "" { // usher dev: config.Validate made usher serve refuse this
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		a.AdminToken, a.AdminTokenMade = hex.EncodeToString(b), true
	}
	defer func() {
		if err != nil {
			a.closeRedis()
		}
	}()
	// One allocation retry policy for the match service and the fleet.
	a.retry = match.NewRetry(cfg.AllocationWait, clk)
	a.Metrics = metrics.New(a.Registry)

	keys, err := loadKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	a.Tokens, err = auth.New(auth.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.TokenTTL, VerifyCacheSize: cfg.TokenCacheSize}, keys, clk)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	// A hold outlives the seats and tickets it is about: keep it as long as a token lives.
	var shared match.Shared
	var limits httpapi.Limiter
	if cfg.RedisURL != "" {
		if a.Redis, err = redis.Open(redis.Options{URL: cfg.RedisURL, Password: cfg.RedisPassword}); err != nil {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
		if a.Tickets, err = a.Redis.Tickets(redis.TicketConfig{TTL: cfg.TicketTTL}, clk); err != nil {
			return nil, fmt.Errorf("tickets: %w", err)
		}
		shared = match.Shared{Holds: a.Redis.Holds(cfg.TokenTTL), Codes: a.Redis.Codes(match.CodeClaimTTL)}
		limits = a.Redis.Limiter()
	} else {
		if a.memTix, err = ticket.NewMemoryStore(ticket.MemoryConfig{TTL: cfg.TicketTTL}, clk); err != nil {
			return nil, fmt.Errorf("tickets: %w", err)
		}
		a.Tickets = a.memTix
		shared = match.Shared{Holds: match.NewMemoryHolds(cfg.TokenTTL, clk), Codes: match.NewMemoryCodes(match.CodeClaimTTL, clk)}
	}
	origins, err := origin.New(cfg.AllowedOrigins, cfg.AllowNoOrigin)
	if err != nil {
		return nil, err
	}
	ips, err := clientip.New(cfg.TrustedProxies, cfg.ClientIPHeader)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies / --client-ip-header: %w", err)
	}

	var site map[string]portal.File // usher dev: the portal, and the games' web builds
	if cfg.Mode == config.ModeDev {
		site = portal.Files()
	}
	var games []match.Game
	for _, g := range cfg.Games {
		mg := match.Game{ID: g.ID, Name: g.Name, Description: g.Description, MaxPlayers: g.MaxPlayers, WebClient: g.WebClient}
		if site != nil && g.WebBuild != "" {
			if err := a.addWebBuild(site, g); err != nil {
				log.Warn("the game's web build is not served", "game", g.ID, "err", err)
			} else if mg.WebClient == "" {
				mg.WebClient = portal.WebBuildPath(g.ID)
			}
		}
		games = append(games, mg)
	}
	if a.Fleet, err = a.newFleet(clk); err != nil {
		return nil, err
	}

	pcfg := proxy.Config{MaxMessageBytes: cfg.MaxMessageBytes, PingInterval: cfg.PingInterval, MaxMessagesPerSecond: cfg.MaxMessageRate, Relay: cfg.Relay, Loops: cfg.RelayLoops}
	pcfg.SetDefaults()
	if err := pcfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	a.Proxy = proxy.New(pcfg, a.Metrics, log.With("component", "proxy"))

	svc := match.NewService(games, a.Fleet, a.Tickets, shared, a.retry, a.Metrics, log.With("component", "match"))
	// A player holds one room: their session in a room they leave for another ends (4003).
	svc.OnMove(func(player string, from match.Hold) { a.Proxy.Kick(player, from.Room) })
	apiCfg := httpapi.Config{TokenRate: cfg.TokenRate, JoinRate: cfg.JoinRate, CreateRate: cfg.CreateRate}
	apiCfg.Portal = site // local play needs nothing else; a cluster serves the portal with nginx
	a.API = httpapi.New(apiCfg, httpapi.Deps{
		Tokens: a.Tokens, Match: svc, Tickets: a.Tickets, Proxy: a.Proxy, Origins: origins, ClientIP: ips,
		Metrics: a.Metrics, Log: log.With("component", "api"), Ready: a.readiness, Limiter: limits,
	})

	deps := admin.Deps{Games: games, Rooms: a.Fleet, Sessions: a.Proxy, Gatherer: a.Registry, Recent: recent,
		Clock: clk, Log: log.With("component", "admin")}
	if a.Local != nil {
		deps.Ender = a.Local
	}
	a.AdminPage, err = admin.New(admin.Config{Token: a.AdminToken, MetricsToken: cfg.MetricsToken}, deps,
		promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry}))
	if err != nil {
		return nil, err
	}
	// No WriteTimeout: the page's event stream is long-lived and sets a deadline per write.
	a.admin = &http.Server{Handler: a.AdminPage, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		IdleTimeout: 60 * time.Second}

	if a.publicLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	if a.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
		a.publicLn.Close()
		return nil, fmt.Errorf("--admin-listen: %w", err)
	}
	return a, nil
}

// newFleet builds the backend of the configured mode.
func (a *App) newFleet(clk clock.WithTicker) (Fleet, error) {
	switch a.cfg.Mode {
	case config.ModeDev:
		var games []local.Game
		for _, g := range a.cfg.Games {
			env := make([]string, 0, len(g.Env))
			for k, v := range g.Env {
				env = append(env, k+"="+v)
			}
			games = append(games, local.Game{
				ID: g.ID, MaxPlayers: g.MaxPlayers, Command: g.Command, Env: env, Dir: g.Dir,
				Buffer: g.Buffer, MaxServers: g.MaxServers,
			})
		}
		f, err := local.New(local.Config{Games: games, SeatTimeout: a.cfg.TicketTTL + a.cfg.SeatGrace,
			ReconnectGrace: a.cfg.ReconnectGrace, Conformance: a.cfg.BridgeConformance},
			a.Metrics, clk, a.log.With("component", "fleet"))
		if err != nil {
			return nil, fmt.Errorf("local fleet: %w", err)
		}
		a.Local = f
		return f, nil
	case config.ModeServe:
		restCfg, err := clientcmd.BuildConfigFromFlags("", a.cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes config: %w", err)
		}
		restCfg.UserAgent = "usher/" + version.Version
		client, err := agones.NewClient(restCfg)
		if err != nil {
			return nil, err
		}
		var games []agonesfleet.Game
		for _, g := range a.cfg.Games {
			games = append(games, agonesfleet.Game{
				ID: g.ID, MaxPlayers: g.MaxPlayers, Namespace: g.Agones.Namespace, Fleet: g.Agones.Fleet,
				PortName: g.Agones.PortName, Dial: agonesfleet.Dial(g.Agones.Dial),
			})
		}
		f, err := agonesfleet.New(agonesfleet.Config{Games: games, Retry: a.retry}, client, a.Metrics, clk, a.log.With("component", "fleet"))
		if err != nil {
			return nil, fmt.Errorf("agones fleet: %w", err)
		}
		a.Agones = f
		a.ready = func() bool { return f.Synced() }
		return f, nil
	}
	return nil, fmt.Errorf("unknown mode %q", a.cfg.Mode)
}

// readiness says why Usher cannot serve joins now ("" when it can), for /readyz: the fleet
// backend is not ready, or Redis does not answer.
func (a *App) readiness(ctx context.Context) string {
	if a.ready != nil && !a.ready() {
		return "the game server watch has not synced yet"
	}
	if a.Redis != nil {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := a.Redis.Ping(ctx); err != nil {
			return "Redis does not answer"
		}
	}
	return ""
}

// PublicAddr is the public API's address (useful with port 0).
func (a *App) PublicAddr() string { return a.publicLn.Addr().String() }

// AdminAddr is the admin listener's address.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// AdminURL is the admin page's address with the token in its fragment (which browsers never
// send): opening it signs in. For printing on the terminal of `usher dev`, never for a log.
func (a *App) AdminURL() string {
	host, port, _ := net.SplitHostPort(a.AdminAddr())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/#token=" + a.AdminToken
}

// Close releases the listeners of an App whose Run was never called.
func (a *App) Close() {
	a.publicLn.Close()
	a.adminLn.Close()
	a.closeRedis()
}

func (a *App) closeRedis() {
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
}

// Run serves until ctx is done, then shuts down gracefully: /readyz fails, the drain delay
// passes, listeners close, proxied sessions get a 1012 close spread over the drain window
// (players reconnect through another replica), and the game servers stop.
func (a *App) Run(ctx context.Context) error {
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	g, gctx := errgroup.WithContext(bg)
	g.Go(func() error { return a.Fleet.Run(gctx) })
	if a.memTix != nil {
		g.Go(func() error { return a.memTix.Run(gctx) })
	}
	g.Go(func() error { return a.AdminPage.Run(gctx) })
	g.Go(func() error {
		if err := a.API.App().Listener(a.publicLn); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("public listener: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := a.admin.Serve(a.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin listener: %w", err)
		}
		return nil
	})
	a.log.Info("usher is up", "listen", a.PublicAddr(), "admin", a.AdminAddr(), "games", len(a.cfg.Games))

	select {
	case <-ctx.Done():
	case <-gctx.Done(): // a part failed: shut the rest down and report it
	}
	a.shutdown()
	stopBg()
	err := g.Wait()
	a.closeRedis()
	return err
}

func (a *App) shutdown() {
	a.log.Info("shutting down", "drain_delay", a.cfg.DrainDelay)
	a.API.SetDraining()
	time.Sleep(a.cfg.DrainDelay)
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	// Stop accepting first, so that players told to reconnect (1012) reach another replica,
	// then close the sessions over the drain window while the listener drains.
	if err := a.publicLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		a.log.Warn("public listener close", "err", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.API.App().ShutdownWithContext(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			a.log.Warn("public listener shutdown", "err", err)
		}
	}()
	if err := a.Proxy.Drain(ctx, a.cfg.DrainWindow); err != nil {
		a.log.Warn("proxy shutdown", "err", err)
	}
	<-done
	a.AdminPage.Close() // end the page's event streams, or Shutdown would wait for them
	if err := a.admin.Shutdown(ctx); err != nil {
		a.log.Warn("admin listener shutdown", "err", err)
	}
}

// loadKeys reads the JWT keys from --jwt-key-file, or makes one for this run.
func loadKeys(cfg config.Config, log *slog.Logger) ([]auth.Key, error) {
	if cfg.JWTKeyPEM != "" {
		keys, err := auth.ParseKeys([]byte(cfg.JWTKeyPEM))
		if err != nil {
			return nil, fmt.Errorf("USHER_JWT_KEY: %w", err)
		}
		return keys, nil
	}
	if cfg.JWTKeyFile == "" {
		k, err := auth.GenerateKey()
		if err != nil {
			return nil, err
		}
		log.Info("no --jwt-key-file: signing tokens with a key made for this run (tokens end with it)", "kid", k.ID)
		return []auth.Key{k}, nil
	}
	b, err := os.ReadFile(cfg.JWTKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--jwt-key-file: %w", err)
	}
	keys, err := auth.ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("--jwt-key-file %s: %w", cfg.JWTKeyFile, err)
	}
	return keys, nil
}

// addWebBuild serves game's Godot project as a web build, with the pinned Godot web engine from
// the user cache (hack/godot-web.sh puts it there; USHER_GODOT_WEB names another directory).
func (a *App) addWebBuild(site map[string]portal.File, g config.Game) error {
	dir, err := godotpack.DefaultEngineDir()
	if err != nil {
		return err
	}
	if err := portal.AddWebBuild(site, g.ID, g.WebBuild, dir); err != nil {
		if errors.Is(err, godotpack.ErrNoEngine) {
			return fmt.Errorf("%w; fetch it with hack/godot-web.sh", err)
		}
		return err
	}
	a.log.Info("serving the game's web build", "game", g.ID, "url", portal.WebBuildPath(g.ID), "project", g.WebBuild)
	return nil
}
