// Command usher is the matchmaker: `usher dev` runs the whole loop on this machine.
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

	"github.com/usher-gg/usher/internal/app"
	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/exampleserver"
	"github.com/usher-gg/usher/internal/logging"
	"github.com/usher-gg/usher/internal/play"
	"github.com/usher-gg/usher/internal/version"
)

const usage = `usage: usher <command> [flags]

commands:
  dev             run Usher with a local fleet of game servers (no Kubernetes); 'usher dev -h' lists flags
  serve           run Usher against Agones Fleets in a Kubernetes cluster; 'usher serve -h' lists flags
  play            join a room from the terminal: print what arrives, send what you type; 'usher play -h'
  keygen          print a new Ed25519 signing key (PEM) for --jwt-key-file
  example-server  run the example game server (started by the local fleet)
  version         print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "dev":
		return serve(config.ModeDev, args[1:], stderr)
	case "serve":
		return serve(config.ModeServe, args[1:], stderr)
	case "play":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return play.Main(ctx, args[1:], os.Stdin, stdout, stderr)
	case "example-server":
		return exampleserver.Main()
	case "keygen":
		k, err := auth.GenerateKey()
		if err == nil {
			var pem []byte
			if pem, err = auth.MarshalKey(k); err == nil {
				_, err = stdout.Write(pem)
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "usher keygen:", err)
			return 1
		}
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, version.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "usher: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// serve runs Usher in mode until SIGINT or SIGTERM.
func serve(mode config.Mode, args []string, stderr io.Writer) int {
	name := "usher " + string(mode) + ":"
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, name, err)
		return 1
	}
	cfg, err := config.Parse(mode, args, self, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, name, err)
		return 2
	}
	log, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(stderr, name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if a.AdminTokenMade {
		// Not a log line: logs never carry a token. The fragment signs the browser in.
		fmt.Fprintf(stderr, "\n  admin page: %s\n  (a token made for this run; set USHER_ADMIN_TOKEN or --admin-token-file to keep one)\n\n", a.AdminURL())
	}
	if err := a.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}
