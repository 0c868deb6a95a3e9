package bridge

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	agsdk "github.com/usher-gg/usher/agones/sdk"
)

// EnvPrefix prefixes the environment variable of every flag: --seat-timeout is
// GDSDK_BRIDGE_SEAT_TIMEOUT. A flag given on the command line wins over its variable.
const EnvPrefix = "GDSDK_BRIDGE_"

// Defaults of the Config fields.
const (
	DefaultListen = "127.0.0.1:9359"
	// DefaultHealthInterval is below Agones' default health periodSeconds (5 s), so a ping
	// lands in every period even if one is late.
	DefaultHealthInterval = 2 * time.Second
	// DefaultHeartbeatTimeout matches local mode: a game silent for 10 s is hung.
	DefaultHeartbeatTimeout = 10 * time.Second
	// DefaultStartGrace matches local mode's start timeout: a game that has not sent its
	// first heartbeat (or /ready) within 30 s of the bridge's start is not pinged for any more.
	DefaultStartGrace = 30 * time.Second
	// DefaultSeatTimeout is Usher's ticket TTL (15 s) plus a 5 s grace.
	DefaultSeatTimeout = 20 * time.Second
	// DefaultReconnectGrace matches Usher's --reconnect-grace: how long a lost player's seat
	// is kept for them to come back.
	DefaultReconnectGrace = 30 * time.Second
	// DefaultTerminateTimeout bounds how long the bridge serves after SIGTERM while waiting
	// for the GameServer to reach Shutdown.
	DefaultTerminateTimeout = 60 * time.Second
	// DefaultConnectWait is how long /players/connected waits for an allocation the SDK has
	// not shown yet: a player can reach the game a moment before the sidecar's watch.
	DefaultConnectWait = 2 * time.Second
	// DefaultSDKTimeout bounds each unary SDK call.
	DefaultSDKTimeout = 5 * time.Second
)

// agonesHealthPort is the Agones SDK sidecar's health port (/healthz, /gshealthz) in every
// game server pod; nothing else may bind it.
const agonesHealthPort = 8080

// Config is how the bridge runs. Zero values are not defaults: start from DefaultConfig.
type Config struct {
	// Listen is the loopback address the bridge protocol is served on (default 127.0.0.1:9359).
	// The game server finds it through USHER_BRIDGE_URL.
	Listen string
	// SDKURL is the Agones SDK gateway (default http://localhost:$AGONES_SDK_HTTP_PORT).
	SDKURL string
	// Game is the game id reported when the GameServer has no usher.dev/game label.
	Game string
	// HealthInterval is the time between SDK health pings (default 2s); keep it below the
	// GameServer's spec.health.periodSeconds.
	HealthInterval time.Duration
	// HeartbeatTimeout: health pings stop once the game's last heartbeat is this old (default 10s).
	HeartbeatTimeout time.Duration
	// StartGrace: before the game's first heartbeat, pings are sent for this long after the
	// bridge starts (default 30s), so a slow start is not killed.
	StartGrace time.Duration
	// SeatTimeout: a players list value that is not reported connected this long after it
	// appeared is removed (default 20s: ticket TTL plus grace).
	SeatTimeout time.Duration
	// ReconnectGrace: a player the game reports disconnected with reason "lost" keeps their
	// seat (the players list value) this long to come back (default 30s; 0: freed at once).
	ReconnectGrace time.Duration
	// TerminateTimeout: after SIGTERM, the bridge serves until the GameServer is Shutdown or
	// this long has passed (default 60s).
	TerminateTimeout time.Duration
	// ConnectWait: how long /players/connected waits for the SDK to show an allocation before
	// answering bad_state (default 2s).
	ConnectWait time.Duration
	// SDKTimeout bounds each unary SDK call (default 5s).
	SDKTimeout time.Duration
	// SeatCheckInterval is how often unused seats are looked for (default 1s).
	SeatCheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff of SDK retries (defaults 100ms and 5s).
	RetryMin, RetryMax time.Duration
	// LogFormat is json (default) or text; LogLevel debug, info (default), warn or error.
	LogFormat, LogLevel string
}

// DefaultConfig returns the defaults, with the SDK URL taken from getenv's AGONES_SDK_HTTP_PORT.
func DefaultConfig(getenv func(string) string) (Config, error) {
	u, err := agsdk.URLFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Listen:            DefaultListen,
		SDKURL:            u,
		HealthInterval:    DefaultHealthInterval,
		HeartbeatTimeout:  DefaultHeartbeatTimeout,
		StartGrace:        DefaultStartGrace,
		SeatTimeout:       DefaultSeatTimeout,
		ReconnectGrace:    DefaultReconnectGrace,
		TerminateTimeout:  DefaultTerminateTimeout,
		ConnectWait:       DefaultConnectWait,
		SDKTimeout:        DefaultSDKTimeout,
		SeatCheckInterval: time.Second,
		RetryMin:          100 * time.Millisecond,
		RetryMax:          5 * time.Second,
		LogFormat:         "json",
		LogLevel:          "info",
	}, nil
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	sdkPort := ""
	if u, err := url.Parse(c.SDKURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("sdk url %q: want http://host:port", c.SDKURL))
	} else {
		sdkPort = u.Port()
	}
	if err := validListen(c.Listen, sdkPort); err != nil {
		errs = append(errs, err)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"health interval", c.HealthInterval}, {"heartbeat timeout", c.HeartbeatTimeout},
		{"seat timeout", c.SeatTimeout}, {"terminate timeout", c.TerminateTimeout},
		{"sdk timeout", c.SDKTimeout}, {"seat check interval", c.SeatCheckInterval},
		{"retry min", c.RetryMin}, {"retry max", c.RetryMax},
	}
	for _, p := range positive {
		if p.d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", p.name, p.d))
		}
	}
	if c.ReconnectGrace < 0 {
		errs = append(errs, fmt.Errorf("reconnect grace %v: must not be negative", c.ReconnectGrace))
	}
	if c.StartGrace < 0 || c.ConnectWait < 0 {
		errs = append(errs, fmt.Errorf("start grace %v, connect wait %v: must not be negative", c.StartGrace, c.ConnectWait))
	}
	if c.HealthInterval > 0 && c.HeartbeatTimeout > 0 && c.HeartbeatTimeout <= c.HealthInterval {
		errs = append(errs, fmt.Errorf("heartbeat timeout %v: must be longer than the health interval %v",
			c.HeartbeatTimeout, c.HealthInterval))
	}
	if c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("retry max %v: below retry min %v", c.RetryMax, c.RetryMin))
	}
	if _, err := newLogger(io.Discard, c.LogFormat, c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validListen accepts a loopback host:port that is neither Agones' health port nor the SDK's.
func validListen(listen, sdkPort string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("listen %q: bad port", listen)
	}
	if p == agonesHealthPort {
		return fmt.Errorf("listen %q: port 8080 belongs to the Agones SDK sidecar's health server "+
			"(/healthz, /gshealthz) in every game server pod; use another port (default %s)", listen, DefaultListen)
	}
	if port == sdkPort {
		return fmt.Errorf("listen %q: port %s is the Agones SDK gateway's", listen, port)
	}
	// The bridge protocol has no authentication: only the game server, in the same pod,
	// may reach it.
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen %q: must be a loopback address (127.0.0.1, ::1 or localhost): "+
			"the bridge protocol is unauthenticated and only the game server in the pod may call it", listen)
	}
	return nil
}

// LoadConfig reads the flags in args, each defaulting to its GDSDK_BRIDGE_* variable from
// getenv, then to DefaultConfig. Usage goes to out; -h gives flag.ErrHelp.
func LoadConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	cfg, err := DefaultConfig(getenv)
	if err != nil {
		return Config{}, err
	}
	fs := flag.NewFlagSet("gdsdk-bridge", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "loopback `address` to serve the bridge protocol on (never port 8080)")
	fs.StringVar(&cfg.SDKURL, "sdk-url", cfg.SDKURL, "Agones SDK gateway `url` (default from AGONES_SDK_HTTP_PORT)")
	fs.StringVar(&cfg.Game, "game", cfg.Game, "game `id` to report when the GameServer has no usher.dev/game label")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", cfg.HealthInterval, "time between SDK health pings; below spec.health.periodSeconds")
	fs.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", cfg.HeartbeatTimeout, "stop health pings once the game's last heartbeat is this old")
	fs.DurationVar(&cfg.StartGrace, "start-grace", cfg.StartGrace, "before the game's first heartbeat, ping for this long after start")
	fs.DurationVar(&cfg.SeatTimeout, "seat-timeout", cfg.SeatTimeout, "remove a reserved seat whose player has not connected after this long")
	fs.DurationVar(&cfg.ReconnectGrace, "reconnect-grace", cfg.ReconnectGrace, "keep the seat of a player whose connection broke (reported with reason lost) this long for them to come back; match Usher's --reconnect-grace")
	fs.DurationVar(&cfg.TerminateTimeout, "terminate-timeout", cfg.TerminateTimeout, "after SIGTERM, serve until the GameServer is Shutdown or this long")
	fs.DurationVar(&cfg.ConnectWait, "connect-wait", cfg.ConnectWait, "how long a player connection waits for an allocation the SDK has not shown yet")
	fs.DurationVar(&cfg.SDKTimeout, "sdk-timeout", cfg.SDKTimeout, "timeout of each SDK call")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log `format`: json or text")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: gdsdk-bridge [flags]\n\nServes Usher's bridge protocol to the game server in this pod and drives the Agones SDK.\n"+
			"Every flag can also be set with %s<FLAG> (e.g. %sSEAT_TIMEOUT=30s).\n\n", EnvPrefix, EnvPrefix)
		fs.PrintDefaults()
	}
	// Variables first, so that flags given on the command line override them.
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return cfg, cfg.Validate()
}

// EnvName is the environment variable of a flag: seat-timeout → GDSDK_BRIDGE_SEAT_TIMEOUT.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// NewLogger returns the bridge's logger: JSON (in a cluster) or text, at level.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	return newLogger(w, format, level)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json", "":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
