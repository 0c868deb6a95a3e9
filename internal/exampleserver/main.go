package exampleserver

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Main runs the example server as a program: configuration from the environment, logs to
// stderr, stop on SIGINT or SIGTERM. It returns the exit code: 0 after a clean stop (signal,
// empty room, or the bridge's shutdown), 2 for a bad configuration, 1 for any other failure.
// Both cmd/example-server and `usher example-server` call it.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(os.Stderr, os.Getenv(EnvLogFormat))
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		log.Error("invalid configuration", "err", err)
		return 2
	}
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("example server failed", "err", err)
		return 1
	}
	return 0
}

// newLogger logs JSON when format is "json" (in a cluster), text otherwise (on a terminal).
func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
