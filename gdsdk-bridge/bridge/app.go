package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	agsdk "github.com/usher-gg/usher/agones/sdk"
	"github.com/usher-gg/usher/contract"
)

// drainTimeout bounds how long in-flight bridge requests may take once the bridge stops.
const drainTimeout = 2 * time.Second

// App is the whole sidecar: the bridge protocol listener and the backend's loops.
type App struct {
	cfg     Config
	log     *slog.Logger
	clk     Clock
	backend *Backend
	ln      net.Listener
	srv     *http.Server
}

// NewApp validates cfg and binds the listener, so a bad address fails at start and tests
// can listen on port 0 and read Addr.
func NewApp(cfg Config, clk Clock, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backend := NewBackend(cfg, agsdk.New(cfg.SDKURL, nil), clk, log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           contract.NewHandler(backend),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: GET /allocation long-polls for up to contract.MaxWait.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &App{cfg: cfg, log: log, clk: clk, backend: backend, ln: ln, srv: srv}, nil
}

// Addr is the address the bridge listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Run serves until ctx ends, or until a signal arrives on sigs and then the GameServer
// reaches Shutdown (or TerminateTimeout passes): on SIGTERM the game may still call
// /shutdown and report players leaving, so the bridge keeps serving. A second interrupt
// (Ctrl-C) stops it at once. Run returns nil on every orderly stop.
func (a *App) Run(ctx context.Context, sigs <-chan os.Signal) error {
	loops, stopLoops := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.backend.Run(loops)
	}()
	defer func() {
		stopLoops()
		wg.Wait()
	}()

	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(a.ln) }()
	a.log.Info("gdsdk-bridge serving", "addr", a.Addr(), "sdk", a.cfg.SDKURL)

	stop := func() error {
		dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		if err := a.srv.Shutdown(dctx); err != nil {
			_ = a.srv.Close() // long polls still waiting: cut them
		}
		return nil
	}

	select {
	case <-ctx.Done():
		return stop()
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case sig := <-sigs:
		a.log.Info("signal received: serving until the GameServer is Shutdown", "signal", sig.String(),
			"terminate_timeout", a.cfg.TerminateTimeout)
	}
	timeout := a.clk.After(a.cfg.TerminateTimeout)
	for {
		select {
		case <-a.backend.Terminal():
			a.log.Info("gameserver is Shutdown: exiting")
		case <-timeout:
			a.log.Warn("gameserver not Shutdown within the terminate timeout: exiting", "terminate_timeout", a.cfg.TerminateTimeout)
		case sig := <-sigs:
			// Some inits deliver SIGTERM twice; only an interrupt (a second Ctrl-C) cuts the wait short.
			if sig != os.Interrupt {
				a.log.Info("signal received again: still waiting for Shutdown", "signal", sig.String())
				continue
			}
			a.log.Warn("interrupted again: exiting now", "signal", sig.String())
		case <-ctx.Done():
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
		}
		return stop()
	}
}
