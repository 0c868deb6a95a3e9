// Command usher-bench measures Usher's relay and API side by side with the direct path and
// nginx on loopback, and writes bench-report.md and bench-report.json. See docs/performance.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/usher-gg/usher/internal/bench"
)

func main() {
	if code, ok := bench.RunRole(); ok { // Usher or a game server, started by the bench itself
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("usher-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.Flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "usher-bench:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg, log)
	if rep != nil {
		if werr := bench.WriteReport(rep, cfg.Out); werr != nil {
			log.Error("write report", "err", werr)
			return 1
		}
		log.Info("report written", "dir", cfg.Out)
	}
	if err != nil {
		log.Error("bench", "err", err)
		return 1
	}
	return 0
}
