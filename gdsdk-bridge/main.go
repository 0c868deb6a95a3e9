// Command gdsdk-bridge is the sidecar beside each game server in an Agones pod: it serves
// Usher's bridge protocol to the game server on localhost and drives the Agones SDK sidecar
// (docs/game-servers.md, "In Kubernetes: the gdsdk-bridge sidecar").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/usher-gg/usher/gdsdk-bridge/bridge"
)

func main() { os.Exit(run(os.Args[1:], os.Getenv, os.Stderr)) }

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := bridge.LoadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "gdsdk-bridge:", err)
		return 2
	}
	log, err := bridge.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(stderr, "gdsdk-bridge:", err)
		return 2
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)
	app, err := bridge.NewApp(cfg, bridge.SystemClock(), log)
	if err != nil {
		log.Error("gdsdk-bridge cannot start", "err", err)
		return 1
	}
	if err := app.Run(context.Background(), sigs); err != nil {
		log.Error("gdsdk-bridge failed", "err", err)
		return 1
	}
	return 0
}
