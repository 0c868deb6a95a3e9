package agones

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/usher-gg/usher/internal/match"
)

// Dial says how Usher reaches a game's servers.
type Dial string

const (
	// DialAddress dials status.address (the node's best address) and the host port of the
	// named port: for portPolicy Dynamic (or Static) servers.
	DialAddress Dial = "address"
	// DialPod dials the pod IP (the PodIP entry of status.addresses) and the named port:
	// for portPolicy None servers, which Agones reports with their containerPort. It keeps
	// game pods free of host ports, so they fit the restricted Pod Security Standard.
	DialPod Dial = "pod"
)

// Defaults applied by New to the zero fields of a Config and its Games.
const (
	DefaultNamespace       = "default"
	DefaultAllocateTimeout = 10 * time.Second
	// DefaultWait bounds the retries of one join when Config.Retry sets no Wait (usher
	// serve sets it from --allocation-wait).
	DefaultWait = 3 * time.Second
	// DefaultCoalesce is Config.Coalesce's default.
	DefaultCoalesce = 10 * time.Millisecond
)

// Game is one game Usher allocates from an Agones Fleet.
type Game struct {
	// ID is the game id players ask for.
	ID string
	// MaxPlayers is the number of seats in a room. The seats are the Fleet template's
	// players List, whose capacity should equal it; rooms report that capacity.
	MaxPlayers int
	// Namespace of the Fleet and its GameServers. Default "default".
	Namespace string
	// Fleet is the Fleet's name (the agones.dev/fleet label). Default: the game id.
	Fleet string
	// PortName names the GameServer port that accepts WebSockets (spec.ports[].name;
	// "<name>-tcp" with protocol TCPUDP). Required.
	PortName string
	// Dial is DialAddress (default) or DialPod.
	Dial Dial
}

// Config configures the Agones fleet. Zero fields take the documented defaults.
type Config struct {
	Games []Game
	// AllocateTimeout bounds each allocation request. Default 10s.
	AllocateTimeout time.Duration
	// Retry is the retry policy for Contention and busy rooms (match.Retry; usher serve
	// passes the one the match service uses). A zero Backoff takes match.DefaultBackoff, a
	// zero Wait DefaultWait, a nil Clock the fleet's clock. Errors are not retried.
	Retry match.Retry
	// Coalesce is how long a room's join queue (or a game's quick-match queue) gathers
	// players before its first allocation, so that players who join at the same moment
	// go out in one. Default 10ms, small beside Agones' 500 ms batches; negative: none.
	Coalesce time.Duration
	// Resync is the informers' resync period; 0 (the default) disables resyncs, which
	// Usher does not need: every change reaches it through the watch.
	Resync time.Duration
}

// withDefaults returns c with its zero fields, and those of its games, set to defaults.
func (c Config) withDefaults() Config {
	if c.AllocateTimeout == 0 {
		c.AllocateTimeout = DefaultAllocateTimeout
	}
	if c.Retry.Backoff == (wait.Backoff{}) {
		c.Retry.Backoff = match.DefaultBackoff()
	}
	if c.Retry.Wait == 0 {
		c.Retry.Wait = DefaultWait
	}
	if c.Coalesce == 0 {
		c.Coalesce = DefaultCoalesce
	}
	games := make([]Game, len(c.Games))
	for i, g := range c.Games {
		if g.Namespace == "" {
			g.Namespace = DefaultNamespace
		}
		if g.Fleet == "" {
			g.Fleet = g.ID
		}
		if g.Dial == "" {
			g.Dial = DialAddress
		}
		games[i] = g
	}
	c.Games = games
	return c
}

// Validate reports every problem with c (after defaults).
func (c Config) Validate() error {
	var errs []error
	if len(c.Games) == 0 {
		errs = append(errs, errors.New("no games"))
	}
	ids := map[string]bool{}
	fleets := map[string]string{}
	for i, g := range c.Games {
		where := fmt.Sprintf("games[%d] %q", i, g.ID)
		switch {
		case g.ID == "":
			errs = append(errs, fmt.Errorf("games[%d]: empty id", i))
		case ids[g.ID]:
			errs = append(errs, fmt.Errorf("%s: duplicate id", where))
		}
		ids[g.ID] = true
		if g.MaxPlayers < 1 || g.MaxPlayers > 1000 {
			errs = append(errs, fmt.Errorf("%s: max players %d, want 1 to 1000 (an Agones List holds at most 1000 values)", where, g.MaxPlayers))
		}
		for _, msg := range validation.IsDNS1123Label(g.Namespace) {
			errs = append(errs, fmt.Errorf("%s: namespace %q: %s", where, g.Namespace, msg))
		}
		for _, msg := range validation.IsValidLabelValue(g.Fleet) {
			errs = append(errs, fmt.Errorf("%s: fleet %q: %s", where, g.Fleet, msg))
		}
		key := g.Namespace + "/" + g.Fleet
		if other, ok := fleets[key]; ok {
			errs = append(errs, fmt.Errorf("%s: fleet %s is also game %q's", where, key, other))
		}
		fleets[key] = g.ID
		if g.PortName == "" {
			errs = append(errs, fmt.Errorf("%s: empty port name", where))
		}
		if g.Dial != DialAddress && g.Dial != DialPod {
			errs = append(errs, fmt.Errorf("%s: dial %q, want %q or %q", where, g.Dial, DialAddress, DialPod))
		}
	}
	if c.AllocateTimeout < 0 {
		errs = append(errs, fmt.Errorf("allocate timeout %v: negative", c.AllocateTimeout))
	}
	if c.Retry.Backoff.Duration < 0 || c.Retry.Wait < 0 {
		errs = append(errs, fmt.Errorf("retry backoff %v, wait %v: negative", c.Retry.Backoff.Duration, c.Retry.Wait))
	}
	if c.Resync < 0 {
		errs = append(errs, fmt.Errorf("resync %v: negative", c.Resync))
	}
	return errors.Join(errs...)
}
