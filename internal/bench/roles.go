package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/app"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/exampleserver"
	"github.com/usher-gg/usher/internal/logging"
)

// The bench runs Usher and the example game servers as processes of their own, so their CPU
// and memory can be read from /proc apart from the load generator's. It re-executes its own
// binary for them, with the role in the environment (a test binary does the same from
// TestMain).
const (
	envRole     = "USHER_BENCH_ROLE"     // "usher" or "example-server"
	envReady    = "USHER_BENCH_READY"    // usher: file to write its addresses to
	envPprof    = "USHER_BENCH_PPROF"    // usher: "1" serves net/http/pprof on the control listener
	envRegistry = "USHER_BENCH_REGISTRY" // example-server: directory to register in

	roleUsher   = "usher"
	roleExample = "example-server"
)

// RunRole runs this process as a helper of the bench when USHER_BENCH_ROLE names one, and
// returns its exit code with ok true; otherwise it returns ok false at once. Call it first
// thing in main (and in TestMain of tests that run the bench).
func RunRole() (code int, ok bool) {
	switch os.Getenv(envRole) {
	case roleUsher:
		return runUsher(os.Args[1:]), true
	case roleExample:
		return runExample(), true
	}
	return 0, false
}

// usherAddrs is what the usher role writes once its listeners are open.
type usherAddrs struct {
	Public  string `json:"public"`
	Admin   string `json:"admin"`
	Control string `json:"control"` // the bench's own loopback listener: /gc, and pprof if asked
	PID     int    `json:"pid"`
}

// runUsher is `usher dev` with the real wiring (config.Parse, logging, app.New, Run), plus the
// address file the bench waits for and an optional pprof listener.
func runUsher(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "usher:", err)
		return 1
	}
	cfg, err := config.Parse(config.ModeDev, args, self, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "usher:", err)
		return 2
	}
	log, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "usher:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	addrs := usherAddrs{Public: a.PublicAddr(), Admin: a.AdminAddr(), PID: os.Getpid()}
	// A listener of the bench's own, never part of Usher: /gc lets the bench take memory
	// baselines without the garbage of earlier phases, pprof profiles a window.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Error("bench control listener", "err", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, _ *http.Request) {
		// Two full collections: the first moves what sync.Pools hold into their victim
		// caches, the second frees it (with one, how much the pools kept depended on when the
		// collector last ran: a soak's after-GC RSS moved by 9 MB between cycles). Then the
		// free memory goes back to the OS, and what is left is what Usher holds.
		runtime.GC()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(gcAnswer{HeapLive: int64(m.HeapAlloc)})
	})
	if os.Getenv(envPprof) == "1" {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	go func() { _ = http.Serve(ln, mux) }()
	addrs.Control = ln.Addr().String()
	if path := os.Getenv(envReady); path != "" {
		if err := writeJSONFile(path, addrs); err != nil {
			log.Error("ready file", "err", err)
			return 1
		}
	}
	if err := a.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

// registration is what an example server started by the bench's Usher writes, so the bench
// can reach it directly (and through nginx) and read its CPU and memory.
type registration struct {
	Name   string `json:"name"`
	PID    int    `json:"pid"`
	Port   int    `json:"port"`
	Bridge string `json:"bridge"`
}

// runExample is the example game server (`usher example-server`), registered with the bench,
// logging to a file of its own rather than through Usher's log.
func runExample() int {
	dir := os.Getenv(envRegistry)
	name := os.Getenv(contract.EnvServer)
	if dir != "" && name != "" {
		if f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			os.Stderr = f
		}
		port, _ := strconv.Atoi(os.Getenv(contract.EnvPort))
		reg := registration{Name: name, PID: os.Getpid(), Port: port, Bridge: os.Getenv(contract.EnvBridgeURL)}
		if err := writeJSONFile(filepath.Join(dir, name+".json"), reg); err != nil {
			fmt.Fprintln(os.Stderr, "register:", err)
			return 1
		}
	}
	return exampleserver.Main()
}

// writeJSONFile writes v to path atomically (a reader never sees half a file).
func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
