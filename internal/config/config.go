// Package config holds Usher's settings: command-line flags (also read from USHER_* environment
// variables) and the games catalog (a YAML file), with defaults and validation.
package config

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"gopkg.in/yaml.v3"

	"github.com/usher-gg/usher/internal/clientip"
	"github.com/usher-gg/usher/internal/redis"
)

// Mode is how Usher runs its game servers.
type Mode string

const (
	// ModeDev runs game servers as processes on this machine (`usher dev`).
	ModeDev Mode = "dev"
	// ModeServe allocates game servers from Agones Fleets in a Kubernetes cluster (`usher serve`).
	ModeServe Mode = "serve"
)

// Config is everything Usher needs to run. Fields map one to one to flags; see Flags.
type Config struct {
	Mode Mode

	// Agones (serve mode)
	Kubeconfig string // empty: in-cluster config
	Namespace  string // default namespace of the games' Fleets

	Listen      string // public API (token, join, connect, games, health)
	AdminListen string // admin page and /metrics; never expose publicly
	ConfigFile  string // games catalog (YAML); empty: the built-in example game
	Games       []Game

	TokenTTL        time.Duration
	TokenCacheSize  int // verified tokens remembered, so a repeat skips the signature check; -1 = off
	TicketTTL       time.Duration
	SeatGrace       time.Duration // added to TicketTTL before an unused seat is released
	JWTKeyFile      string        // PEM file with Ed25519 PKCS#8 keys; empty in dev: a key made at start
	JWTKeyPEM       string        // the same PEM, from the USHER_JWT_KEY environment variable (never a flag)
	Issuer          string
	Audience        string
	MaxMessageBytes int64
	PingInterval    time.Duration
	MaxMessageRate  int    // messages per second per client connection; 0 = unlimited
	Relay           string // relay engine: "" (the platform's default), "eventloop" or "goroutines"
	RelayLoops      int    // event loops; 0 = GOMAXPROCS-1, at least 1

	TokenRate      int // requests per minute per client IP on /request_token
	JoinRate       int // requests per minute per client IP, and per player, on /join
	CreateRate     int // rooms created per minute per client IP (joins that ask for a new room)
	TrustedProxies []string
	ClientIPHeader string // the one header believed from TrustedProxies: X-Forwarded-For or a single-IP header
	AllowedOrigins []string
	AllowNoOrigin  bool

	// RedisURL (redis:// or rediss://) makes tickets, rate limits, player holds and room-code
	// claims shared through Redis, so replicas are interchangeable; empty keeps them in memory.
	RedisURL      string
	RedisPassword string // from USHER_REDIS_PASSWORD (never a flag); replaces the URL's
	// ReconnectGrace is how long a player whose connection ended abnormally keeps their seat.
	ReconnectGrace    time.Duration
	BridgeConformance bool // dev: report game servers that break the bridge contract

	AllocationWait  time.Duration // how long a join waits for a game server to become ready
	DrainDelay      time.Duration // after SIGTERM: /readyz fails for this long before the listener closes
	DrainWindow     time.Duration // then: live sessions are closed with 1012 evenly over this long
	ShutdownTimeout time.Duration // from the listener closing: how long proxied sessions and servers get to finish

	LogFormat string // text or json
	LogLevel  string // debug, info, warn, error

	// AdminToken guards the admin page (HTTP Basic with any user name and the token as
	// password, or Authorization: Bearer). From --admin-token-file or USHER_ADMIN_TOKEN (never a
	// flag). usher serve refuses to start without one; usher dev makes one for the run.
	AdminToken     string
	AdminTokenFile string
	// MetricsToken, when set, is the Bearer token (or Basic password) /metrics requires; empty
	// leaves /metrics open on the admin listener. From --metrics-token-file or USHER_METRICS_TOKEN.
	MetricsToken     string
	MetricsTokenFile string
}

// Game is one entry of the games catalog.
type Game struct {
	ID          string            `yaml:"id"`
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	MaxPlayers  int               `yaml:"max_players"`
	WebClient   string            `yaml:"web_client"`  // the game's browser client, relative to the portal (or a URL); the portal opens it after a join
	WebBuild    string            `yaml:"web_build"`   // dev: a Godot 4 project directory usher dev serves as a web build at /play/<id>/
	Command     []string          `yaml:"command"`     // local mode: argv of a game server process
	Env         map[string]string `yaml:"env"`         // local mode: extra environment
	Dir         string            `yaml:"dir"`         // local mode: working directory
	Buffer      int               `yaml:"buffer"`      // local mode: ready servers to keep warm
	MaxServers  int               `yaml:"max_servers"` // local mode: cap on processes for this game
	Agones      AgonesGame        `yaml:"agones"`      // serve mode: where the game's servers are
}

// AgonesGame says where a game's servers live in the cluster and how Usher dials them.
type AgonesGame struct {
	Namespace string `yaml:"namespace"` // default: --namespace
	Fleet     string `yaml:"fleet"`     // default: the game id
	PortName  string `yaml:"port_name"` // the GameServer port Usher dials (default "default", Agones' own default name)
	// Dial is "pod" (the pod IP and container port; portPolicy None; works under the restricted
	// Pod Security Standard) or "address" (the node address and host port; portPolicy Dynamic).
	Dial string `yaml:"dial"`
}

// Dial modes of AgonesGame.
const (
	DialPod     = "pod"
	DialAddress = "address"
)

// Catalog is the YAML file given with --config.
type Catalog struct {
	Games []Game `yaml:"games"`
}

// Defaults for games in the catalog that leave a field out.
const (
	DefaultMaxPlayers = 4
	DefaultBuffer     = 2
	DefaultMaxServers = 32
)

// ExampleGame is the game `usher dev` serves when no catalog is given: the example server,
// started from the running binary's own `example-server` subcommand.
func ExampleGame(self string) Game {
	return Game{
		ID:          "example",
		Name:        "Example",
		Description: "The example game server: a lobby that relays every message to the other players.",
		MaxPlayers:  DefaultMaxPlayers,
		WebClient:   "example.html",
		Command:     []string{self, "example-server"},
		Buffer:      DefaultBuffer,
		MaxServers:  DefaultMaxServers,
	}
}

// Default returns the defaults of a mode.
func Default(mode Mode) Config {
	c := Config{
		Mode:            mode,
		Namespace:       "default",
		Listen:          "127.0.0.1:8080",
		AdminListen:     "127.0.0.1:8081",
		TokenTTL:        30 * time.Minute,
		TokenCacheSize:  65536,
		TicketTTL:       15 * time.Second,
		SeatGrace:       5 * time.Second,
		Issuer:          "usher",
		Audience:        "usher-players",
		MaxMessageBytes: 64 << 10,
		PingInterval:    20 * time.Second,
		MaxMessageRate:  200,
		TokenRate:       30,
		JoinRate:        60,
		CreateRate:      10,
		ClientIPHeader:  clientip.XForwardedFor,
		AllowedOrigins:  []string{"http://localhost:*", "http://127.0.0.1:*"},
		AllowNoOrigin:   true,
		ReconnectGrace:  30 * time.Second,
		AllocationWait:  3 * time.Second,
		DrainDelay:      0,
		ShutdownTimeout: 10 * time.Second,
		LogFormat:       "text",
		LogLevel:        "info",
	}
	if mode == ModeServe {
		// In a cluster: listen on every interface, give load balancers time to see /readyz
		// fail before the listener closes, and log JSON.
		c.Listen, c.AdminListen = ":8080", ":8081"
		c.AllowedOrigins = nil
		c.DrainDelay = 5 * time.Second
		c.DrainWindow = 5 * time.Second
		c.ShutdownTimeout = 20 * time.Second
		c.LogFormat = "json"
	}
	return c
}

// Flags registers every setting of c's mode on fs, with c's current values as defaults.
func (c *Config) Flags(fs *flag.FlagSet) {
	if c.Mode == ModeServe {
		fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig file (empty: the in-cluster service account)")
		fs.StringVar(&c.Namespace, "namespace", c.Namespace, "namespace of the games' Fleets when the catalog does not say")
	}
	fs.StringVar(&c.Listen, "listen", c.Listen, "public API address (host:port)")
	fs.StringVar(&c.AdminListen, "admin-listen", c.AdminListen, "admin page and /metrics address (host:port); keep it private")
	fs.StringVar(&c.ConfigFile, "config", c.ConfigFile, "games catalog (YAML); empty: the built-in example game")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "lifetime of player tokens")
	fs.IntVar(&c.TokenCacheSize, "token-cache-size", c.TokenCacheSize, "verified player tokens remembered so that a token seen again skips the signature check (1 to 1048576; -1 = off)")
	fs.DurationVar(&c.TicketTTL, "ticket-ttl", c.TicketTTL, "lifetime of connection tickets (1s to 5m)")
	fs.DurationVar(&c.SeatGrace, "seat-grace", c.SeatGrace, "extra time after a ticket expires before its unused seat is released")
	fs.StringVar(&c.JWTKeyFile, "jwt-key-file", c.JWTKeyFile, "PEM file of Ed25519 PKCS#8 private keys; the first signs, all verify (empty: a key made at start)")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "JWT iss claim")
	fs.StringVar(&c.Audience, "audience", c.Audience, "JWT aud claim")
	fs.Int64Var(&c.MaxMessageBytes, "max-message-bytes", c.MaxMessageBytes, "largest WebSocket message relayed (bigger: close 1009)")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "WebSocket keepalive ping interval")
	fs.IntVar(&c.MaxMessageRate, "max-message-rate", c.MaxMessageRate, "messages per second a client may send (burst 2x; more: close 1008); 0 = unlimited")
	fs.IntVar(&c.RelayLoops, "relay-loops", c.RelayLoops, "event loops of the eventloop relay; 0 = one fewer than GOMAXPROCS (at least 1), leaving a CPU for the API")
	fs.StringVar(&c.Relay, "relay", c.Relay, "relay engine: eventloop (Linux: a few epoll loops, no goroutine per player) or goroutines (two per player); empty = eventloop on Linux, goroutines elsewhere")
	fs.IntVar(&c.TokenRate, "token-rate", c.TokenRate, "requests per minute per client IP on /request_token")
	fs.IntVar(&c.JoinRate, "join-rate", c.JoinRate, "requests per minute on /join, per client IP and per player")
	fs.IntVar(&c.CreateRate, "create-rate", c.CreateRate, "rooms a client IP may create per minute (joins that ask for a new room)")
	fs.Func("trusted-proxies", "comma-separated IPs or CIDRs whose --client-ip-header is believed", listSetter(&c.TrustedProxies))
	fs.StringVar(&c.ClientIPHeader, "client-ip-header", c.ClientIPHeader, "the one header believed from --trusted-proxies: X-Forwarded-For (right-most untrusted hop) or a header holding one IP, e.g. CF-Connecting-IP behind a Cloudflare Tunnel")
	fs.Func("allowed-origins", fmt.Sprintf("comma-separated Origins allowed for browsers (exact scheme://host:port; host:* allows any port) (default %q)",
		strings.Join(c.AllowedOrigins, ",")), listSetter(&c.AllowedOrigins))
	fs.BoolVar(&c.AllowNoOrigin, "allow-no-origin", c.AllowNoOrigin, "allow /connect without an Origin header (native clients), with a valid ticket")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis (or Valkey) shared by every replica: redis://host:port[/db] or rediss:// for TLS; password in the URL or USHER_REDIS_PASSWORD (empty: state in memory, one replica)")
	fs.DurationVar(&c.ReconnectGrace, "reconnect-grace", c.ReconnectGrace, "how long a player whose connection ended abnormally (network loss, Usher restarting) keeps their seat to rejoin (0 to 10m)")
	if c.Mode == ModeDev {
		fs.BoolVar(&c.BridgeConformance, "bridge-conformance", c.BridgeConformance, "report (warn) every game server that breaks the contract of docs/game-servers.md: missed heartbeats, players reported twice or without a seat, not exiting after shutdown")
	}
	fs.DurationVar(&c.AllocationWait, "allocation-wait", c.AllocationWait, "how long a join waits for a ready game server before answering no_capacity")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "after SIGTERM, how long /readyz fails before listeners close")
	fs.DurationVar(&c.DrainWindow, "drain-window", c.DrainWindow, "after the listeners close, live sessions are closed with 1012 (reconnect elsewhere) evenly over this long; shorter than --shutdown-timeout")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "after the drain delay, how long sessions and game servers get to finish")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", c.AdminTokenFile, "file holding the admin page's token (or USHER_ADMIN_TOKEN); required by usher serve, made for the run by usher dev")
	fs.StringVar(&c.MetricsTokenFile, "metrics-token-file", c.MetricsTokenFile, "file holding a token /metrics requires (Bearer, or the Basic password) (or USHER_METRICS_TOKEN); empty: /metrics is open on the admin listener")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
}

// listSetter parses a comma-separated list, replacing (not appending to) the default.
func listSetter(dst *[]string) func(string) error {
	return func(s string) error {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		*dst = out
		return nil
	}
}

// Parse reads the flags of mode from args and USHER_* environment variables (flag
// `admin-listen` is USHER_ADMIN_LISTEN; a flag given on the command line wins), then loads the
// catalog and validates. self is the running binary, used by the built-in example game.
func Parse(mode Mode, args []string, self string, output io.Writer) (Config, error) {
	c := Default(mode)
	fs := flag.NewFlagSet("usher "+string(mode), flag.ContinueOnError)
	fs.SetOutput(output)
	c.Flags(fs)
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("USHER")); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	// Keys are secrets: they come from a file or the environment, never from a flag that
	// would show in the process list.
	c.JWTKeyPEM = os.Getenv("USHER_JWT_KEY")
	var err error
	if c.AdminToken, err = secret(c.AdminTokenFile, "--admin-token-file", "USHER_ADMIN_TOKEN"); err != nil {
		return c, err
	}
	if c.MetricsToken, err = secret(c.MetricsTokenFile, "--metrics-token-file", "USHER_METRICS_TOKEN"); err != nil {
		return c, err
	}
	c.RedisPassword = os.Getenv("USHER_REDIS_PASSWORD")
	if err := c.LoadGames(self); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// secret reads a token from file (trailing white space trimmed) or from the environment
// variable env; giving both is an error.
func secret(file, flagName, env string) (string, error) {
	v := os.Getenv(env)
	if file == "" {
		return strings.TrimSpace(v), nil
	}
	if v != "" {
		return "", fmt.Errorf("give %s or %s, not both", flagName, env)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// MinTokenLength is the shortest admin or metrics token accepted.
const MinTokenLength = 16

// LoadGames fills c.Games from c.ConfigFile, or with the example game when there is none.
func (c *Config) LoadGames(self string) error {
	if c.ConfigFile == "" {
		c.Games = []Game{ExampleGame(self)}
		c.Games[0].Agones = AgonesGame{Namespace: c.Namespace, Fleet: "example", PortName: "default", Dial: DialPod}
		return nil
	}
	f, err := os.Open(c.ConfigFile)
	if err != nil {
		return fmt.Errorf("games catalog: %w", err)
	}
	defer f.Close()
	games, err := ParseCatalog(f, self, c.Namespace)
	if err != nil {
		return fmt.Errorf("games catalog %s: %w", c.ConfigFile, err)
	}
	c.Games = games
	return nil
}

// ParseCatalog decodes a games catalog strictly (unknown fields are errors) and fills in
// defaults (namespace: the given one). A game with id "example" and no command runs the
// built-in example server.
func ParseCatalog(r io.Reader, self, namespace string) ([]Game, error) {
	dec := yaml.NewDecoder(io.LimitReader(r, 1<<20))
	dec.KnownFields(true)
	var cat Catalog
	if err := dec.Decode(&cat); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	for i := range cat.Games {
		g := &cat.Games[i]
		if g.Name == "" {
			g.Name = g.ID
		}
		if g.MaxPlayers == 0 {
			g.MaxPlayers = DefaultMaxPlayers
		}
		if g.Buffer == 0 {
			g.Buffer = DefaultBuffer
		}
		if g.MaxServers == 0 {
			g.MaxServers = DefaultMaxServers
		}
		if len(g.Command) == 0 && g.ID == "example" {
			g.Command = []string{self, "example-server"}
		}
		if g.WebClient == "" && g.ID == "example" {
			g.WebClient = "example.html"
		}
		a := &g.Agones
		a.Namespace = cmp.Or(a.Namespace, namespace)
		a.Fleet = cmp.Or(a.Fleet, g.ID)
		a.PortName = cmp.Or(a.PortName, "default")
		a.Dial = cmp.Or(a.Dial, DialPod)
	}
	if len(cat.Games) == 0 {
		return nil, errors.New("no games: declare at least one under games:")
	}
	return cat.Games, nil
}

var gameIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func validateGames(mode Mode, games []Game) error {
	if len(games) == 0 {
		return errors.New("no games: declare at least one under games:")
	}
	seen := map[string]bool{}
	var errs []error
	for i, g := range games {
		where := fmt.Sprintf("games[%d] (%s)", i, g.ID)
		switch {
		case !gameIDPattern.MatchString(g.ID):
			errs = append(errs, fmt.Errorf("%s: id must be 1-40 lowercase letters, digits or inner dashes", where))
		case seen[g.ID]:
			errs = append(errs, fmt.Errorf("%s: duplicate id", where))
		}
		seen[g.ID] = true
		if g.MaxPlayers < 1 || g.MaxPlayers > 1000 {
			errs = append(errs, fmt.Errorf("%s: max_players must be 1 to 1000", where))
		}
		switch mode {
		case ModeDev:
			if len(g.Command) == 0 {
				errs = append(errs, fmt.Errorf("%s: command is required (the argv that starts a game server)", where))
			}
			if g.Buffer < 1 || g.Buffer > g.MaxServers {
				errs = append(errs, fmt.Errorf("%s: need 1 <= buffer <= max_servers", where))
			}
			if g.WebBuild != "" {
				if st, err := os.Stat(filepath.Join(g.WebBuild, "project.godot")); err != nil || !st.Mode().IsRegular() {
					errs = append(errs, fmt.Errorf("%s: web_build must be a Godot project directory (with a project.godot), got %q", where, g.WebBuild))
				}
			}
		case ModeServe:
			a := g.Agones
			if !dnsLabel.MatchString(a.Namespace) || !dnsLabel.MatchString(a.Fleet) {
				errs = append(errs, fmt.Errorf("%s: agones.namespace and agones.fleet must be DNS labels, got %q and %q", where, a.Namespace, a.Fleet))
			}
			if a.PortName == "" || len(a.PortName) > 63 {
				errs = append(errs, fmt.Errorf("%s: agones.port_name must name a GameServer port", where))
			}
			if a.Dial != DialPod && a.Dial != DialAddress {
				errs = append(errs, fmt.Errorf("%s: agones.dial must be %q or %q, got %q", where, DialPod, DialAddress, a.Dial))
			}
		}
		if len(g.WebClient) > 500 || strings.ContainsAny(g.WebClient, "\"'<> ") || strings.HasPrefix(strings.ToLower(g.WebClient), "javascript:") {
			errs = append(errs, fmt.Errorf("%s: web_client must be a path or http(s) URL of at most 500 characters", where))
		}
		if len(g.Name) > 100 || len(g.Description) > 1000 {
			errs = append(errs, fmt.Errorf("%s: name (100) or description (1000) too long", where))
		}
	}
	return errors.Join(errs...)
}

// Validate checks every setting and says what is wrong with each bad one.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Listen != "", "--listen is required")
	check(c.AdminListen != "", "--admin-listen is required")
	check(c.Listen != c.AdminListen || strings.HasSuffix(c.Listen, ":0"), "--listen and --admin-listen must differ")
	check(c.TokenTTL >= time.Minute && c.TokenTTL <= 24*time.Hour, "--token-ttl must be 1m to 24h, got %s", c.TokenTTL)
	check(c.TokenCacheSize == -1 || c.TokenCacheSize >= 1 && c.TokenCacheSize <= 1<<20,
		"--token-cache-size must be 1 to 1048576, or -1 for no cache, got %d", c.TokenCacheSize)
	check(c.TicketTTL >= time.Second && c.TicketTTL <= 5*time.Minute, "--ticket-ttl must be 1s to 5m, got %s", c.TicketTTL)
	check(c.SeatGrace >= 0 && c.SeatGrace <= time.Minute, "--seat-grace must be 0 to 1m, got %s", c.SeatGrace)
	check(c.Issuer != "" && c.Audience != "", "--issuer and --audience must be set")
	check(c.JWTKeyFile == "" || c.JWTKeyPEM == "", "give the JWT keys in --jwt-key-file or USHER_JWT_KEY, not both")
	// Replicas must share keys, and tokens must outlive a restart: a cluster never makes its own.
	check(c.Mode != ModeServe || c.JWTKeyFile != "" || c.JWTKeyPEM != "",
		"usher serve needs the JWT signing key: --jwt-key-file or USHER_JWT_KEY (make one with 'usher keygen')")
	// The admin page can close rooms and disconnect players: a cluster never runs it open.
	check(c.Mode != ModeServe || c.AdminToken != "",
		"usher serve needs the admin page's token: --admin-token-file or USHER_ADMIN_TOKEN (e.g. from 'openssl rand -hex 32')")
	check(c.AdminToken == "" || len(c.AdminToken) >= MinTokenLength, "the admin token must be at least %d characters", MinTokenLength)
	check(c.MetricsToken == "" || len(c.MetricsToken) >= MinTokenLength, "the metrics token must be at least %d characters", MinTokenLength)
	check(c.MaxMessageBytes >= 128 && c.MaxMessageBytes <= 16<<20, "--max-message-bytes must be 128 to 16777216, got %d", c.MaxMessageBytes)
	check(c.PingInterval >= time.Second && c.PingInterval <= 10*time.Minute, "--ping-interval must be 1s to 10m, got %s", c.PingInterval)
	check(c.MaxMessageRate >= 0, "--max-message-rate must be >= 0")
	check(c.RelayLoops >= 0 && c.RelayLoops <= 1024, "--relay-loops must be 0 (default) to 1024, got %d", c.RelayLoops)
	check(c.Relay == "" || c.Relay == "eventloop" || c.Relay == "goroutines",
		"--relay must be eventloop or goroutines (or empty for the platform's default), got %q", c.Relay)
	check(c.TokenRate >= 1, "--token-rate must be at least 1 per minute")
	check(c.JoinRate >= 1, "--join-rate must be at least 1 per minute")
	check(c.CreateRate >= 1, "--create-rate must be at least 1 per minute")
	if err := clientip.CheckHeader(c.ClientIPHeader); err != nil {
		errs = append(errs, fmt.Errorf("--client-ip-header: %w", err))
	}
	if c.RedisURL != "" {
		if err := redis.CheckURL(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("--redis-url: %w", err))
		}
	}
	check(c.ReconnectGrace >= 0 && c.ReconnectGrace <= 10*time.Minute, "--reconnect-grace must be 0 to 10m, got %s", c.ReconnectGrace)
	check(c.AllocationWait >= 0 && c.AllocationWait <= time.Minute, "--allocation-wait must be 0 to 1m")
	check(c.DrainDelay >= 0 && c.ShutdownTimeout >= 0, "--drain-delay and --shutdown-timeout must be >= 0")
	check(c.DrainWindow >= 0 && (c.DrainWindow == 0 || c.DrainWindow < c.ShutdownTimeout),
		"--drain-window must be 0, or between 0 and --shutdown-timeout (%s), got %s", c.ShutdownTimeout, c.DrainWindow)
	check(c.LogFormat == "text" || c.LogFormat == "json", "--log-format must be text or json, got %q", c.LogFormat)
	check(c.LogLevel == "debug" || c.LogLevel == "info" || c.LogLevel == "warn" || c.LogLevel == "error",
		"--log-level must be debug, info, warn or error, got %q", c.LogLevel)
	check(c.Mode == ModeDev || c.Mode == ModeServe, "unknown mode %q", c.Mode)
	if err := validateGames(c.Mode, c.Games); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
