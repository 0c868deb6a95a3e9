package exampleserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usher-gg/usher/contract"
)

// Environment variables the example server reads besides the bridge protocol's own
// (contract.EnvPort and the others).
const (
	// EnvEmptyTimeout is how long an allocated room may stay without players before the
	// server shuts down, as a Go duration ("30s").
	EnvEmptyTimeout = "USHER_EXAMPLE_EMPTY_TIMEOUT"
	// EnvHeartbeat is the interval between heartbeats to the bridge, as a Go duration ("2s").
	EnvHeartbeat = "USHER_EXAMPLE_HEARTBEAT"
	// EnvSlowTimeout is how long a player's send queue may stay full before the player is
	// dropped as too slow (a Go duration).
	EnvSlowTimeout = "USHER_EXAMPLE_SLOW_TIMEOUT"
	// EnvLogFormat selects the log format of Main: "json", or text when unset.
	EnvLogFormat = "USHER_LOG_FORMAT"
	// EnvEcho turns on echo mode ("1" or "true"): each message goes back to its sender only.
	// For benchmarks (cmd/usher-bench); unset, the server relays to the other players.
	EnvEcho = "USHER_EXAMPLE_ECHO"
)

// Defaults for the Config fields left at zero.
const (
	DefaultHeartbeatInterval       = 2 * time.Second
	DefaultEmptyTimeout            = 30 * time.Second
	DefaultMaxMessageBytes   int64 = 64 << 10
	// DefaultSendQueue holds more than two full bursts Usher lets one player send (twice
	// --max-message-rate, 400 at the default 200/s), so that bursts never fill it.
	DefaultSendQueue   = 1024
	DefaultSlowTimeout = 2 * time.Second
)

// Config configures the example game server. Zero values of the optional fields take the
// documented defaults.
type Config struct {
	// Host is the address to listen on; empty means all interfaces.
	Host string
	// Port is the TCP port for players' WebSockets (1-65535).
	Port int
	// BridgeURL is the bridge's base URL, e.g. http://127.0.0.1:9359.
	BridgeURL string
	// Game and Server name the game and this game server; they only label logs.
	Game   string
	Server string
	// HeartbeatInterval is the time between heartbeats (default 2s).
	HeartbeatInterval time.Duration
	// EmptyTimeout is how long an allocated room may have no connected player before the
	// server shuts down, counted from the allocation or from the last player leaving
	// (default 30s).
	EmptyTimeout time.Duration
	// MaxMessageBytes bounds one message from a player (default 64 KiB); a bigger one closes
	// that player's connection with 1009.
	MaxMessageBytes int64
	// SendQueue is how many messages may wait for one player (default 1024). A message for
	// a player whose queue is full makes its sender wait (the relay pushes back on the
	// sender, not on the bystanders); a queue still full after SlowTimeout means that
	// player is too slow: it is disconnected with 1008 "too slow".
	SendQueue int
	// SlowTimeout is how long a full send queue may stay full (default 2s).
	SlowTimeout time.Duration
	// Echo sends each message back to its sender instead of to the other players, written by
	// the reading goroutine into a reused buffer: the echo path benchmarks measure latency on.
	Echo bool
}

// ConfigFromEnv reads the configuration a game server is started with (see
// docs/game-servers.md). getenv is usually os.Getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Host:      getenv(contract.EnvHost),
		BridgeURL: getenv(contract.EnvBridgeURL),
		Game:      getenv(contract.EnvGame),
		Server:    getenv(contract.EnvServer),
	}
	var errs []error
	switch s := strings.TrimSpace(getenv(contract.EnvPort)); s {
	case "":
		errs = append(errs, fmt.Errorf("%s is not set", contract.EnvPort))
	default:
		p, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a port number", contract.EnvPort, s))
		}
		cfg.Port = p
	}
	if cfg.BridgeURL == "" {
		errs = append(errs, fmt.Errorf("%s is not set", contract.EnvBridgeURL))
	}
	switch s := strings.TrimSpace(getenv(EnvEcho)); strings.ToLower(s) {
	case "", "0", "false":
	case "1", "true":
		cfg.Echo = true
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want 1 or 0", EnvEcho, s))
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{
		{EnvEmptyTimeout, &cfg.EmptyTimeout},
		{EnvHeartbeat, &cfg.HeartbeatInterval},
		{EnvSlowTimeout, &cfg.SlowTimeout},
	} {
		s := strings.TrimSpace(getenv(d.env))
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive Go duration such as 30s", d.env, s))
			continue
		}
		*d.dst = v
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("example server config: %w", err)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every invalid field. Zero optional fields are valid (they take defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 1-65535", c.Port))
	}
	if _, err := contract.NewClient(c.BridgeURL, nil); err != nil {
		errs = append(errs, err)
	}
	if c.HeartbeatInterval < 0 {
		errs = append(errs, fmt.Errorf("heartbeat interval %v: must not be negative", c.HeartbeatInterval))
	}
	if c.EmptyTimeout < 0 {
		errs = append(errs, fmt.Errorf("empty timeout %v: must not be negative", c.EmptyTimeout))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("max message bytes %d: must not be negative", c.MaxMessageBytes))
	}
	if c.SendQueue < 0 {
		errs = append(errs, fmt.Errorf("send queue %d: must not be negative", c.SendQueue))
	}
	if c.SlowTimeout < 0 {
		errs = append(errs, fmt.Errorf("slow timeout %v: must not be negative", c.SlowTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("example server config: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.EmptyTimeout == 0 {
		c.EmptyTimeout = DefaultEmptyTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.SendQueue == 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.SlowTimeout == 0 {
		c.SlowTimeout = DefaultSlowTimeout
	}
	return c
}
