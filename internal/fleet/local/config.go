package local

import (
	"errors"
	"fmt"
	"time"
)

// Defaults applied by New to the zero fields of a Config.
const (
	DefaultSeatTimeout      = 20 * time.Second
	DefaultHeartbeatTimeout = 10 * time.Second
	DefaultStartTimeout     = 30 * time.Second
	DefaultStopTimeout      = 5 * time.Second
	DefaultRestartBackoff   = time.Second

	// maxRestartBackoff caps the doubling of RestartBackoff while a game keeps failing.
	maxRestartBackoff = 30 * time.Second
)

// Game is one game the local fleet runs servers for: the local counterpart of an Agones Fleet.
type Game struct {
	// ID is the game id players ask for; it also names the game's servers ("<id>-<n>").
	ID string
	// MaxPlayers is the number of seats in a room.
	MaxPlayers int
	// Command is the argv of a game server. The process gets os.Environ() plus Env plus
	// USHER_PORT, USHER_HOST=127.0.0.1, USHER_BRIDGE_URL, USHER_GAME and USHER_SERVER.
	Command []string
	// Env holds extra "KEY=value" entries for the process.
	Env []string
	// Dir is the working directory of the process ("" is Usher's own).
	Dir string
	// Buffer is the warm buffer: how many Starting or Ready (unallocated) servers to keep,
	// like a Fleet's buffer. At least 1, since rooms are only made on Ready servers.
	Buffer int
	// MaxServers caps the processes of this game, allocated or not; 0 means no cap.
	MaxServers int
}

// Config configures a local fleet. Zero durations take the documented defaults.
type Config struct {
	Games []Game
	// SeatTimeout is how long a reserved seat waits for its player to connect before it is
	// released. The caller passes the ticket TTL plus some grace. Default 20s.
	SeatTimeout time.Duration
	// ReconnectGrace is how long the seat of a player whose connection broke (the game
	// server reports them disconnected with contract.ReasonLost) is kept for them to come
	// back. 0 means none: a lost player's seat is freed at once, like a player who left.
	ReconnectGrace time.Duration
	// HeartbeatTimeout: a Ready or Allocated server that sends no heartbeat for this long is
	// Unhealthy; it is killed and replaced. Default 10s.
	HeartbeatTimeout time.Duration
	// StartTimeout: a server not Ready this long after it was started is killed and
	// replaced. Default 30s.
	StartTimeout time.Duration
	// StopTimeout is how long a process gets between SIGTERM and SIGKILL, and how long a
	// server that called /shutdown gets to exit on its own. Default 5s.
	StopTimeout time.Duration
	// RestartBackoff is the first delay before replacing a server of a game whose servers
	// fail before they are Ready; it doubles up to 30s and is reset by the next Ready.
	// Default 1s.
	RestartBackoff time.Duration
	// Conformance turns the conformance recorder on: every break of the game-server contract
	// (docs/game-servers.md) is logged as a warning and kept for Fleet.Violations.
	Conformance bool
}

// withDefaults returns c with its zero durations set to the defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SeatTimeout, DefaultSeatTimeout)
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.StartTimeout, DefaultStartTimeout)
	def(&c.StopTimeout, DefaultStopTimeout)
	def(&c.RestartBackoff, DefaultRestartBackoff)
	return c
}

// Validate reports every problem with c (zero durations are allowed: they take defaults).
func (c Config) Validate() error {
	var errs []error
	if len(c.Games) == 0 {
		errs = append(errs, errors.New("no games"))
	}
	seen := make(map[string]bool, len(c.Games))
	for i, g := range c.Games {
		where := fmt.Sprintf("games[%d] %q", i, g.ID)
		switch {
		case g.ID == "":
			errs = append(errs, fmt.Errorf("games[%d]: empty id", i))
		case seen[g.ID]:
			errs = append(errs, fmt.Errorf("%s: duplicate id", where))
		}
		seen[g.ID] = true
		if g.MaxPlayers < 1 {
			errs = append(errs, fmt.Errorf("%s: max players %d, want at least 1", where, g.MaxPlayers))
		}
		if len(g.Command) == 0 || g.Command[0] == "" {
			errs = append(errs, fmt.Errorf("%s: empty command", where))
		}
		if g.Buffer < 1 {
			errs = append(errs, fmt.Errorf("%s: buffer %d, want at least 1", where, g.Buffer))
		}
		if g.MaxServers < 0 || (g.MaxServers > 0 && g.MaxServers < g.Buffer) {
			errs = append(errs, fmt.Errorf("%s: max servers %d, want 0 (no cap) or at least the buffer (%d)", where, g.MaxServers, g.Buffer))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"seat timeout", c.SeatTimeout},
		{"reconnect grace", c.ReconnectGrace},
		{"heartbeat timeout", c.HeartbeatTimeout},
		{"start timeout", c.StartTimeout},
		{"stop timeout", c.StopTimeout},
		{"restart backoff", c.RestartBackoff},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}
