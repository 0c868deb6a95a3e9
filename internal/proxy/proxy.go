// Package proxy relays WebSocket sessions between players and game servers.
//
// A session has two legs: the player's connection, which Usher accepts (Upgrade, Usher is the
// WebSocket server), and the game server's, which Usher dials (Dial, Usher is the WebSocket
// client). The handshakes use fasthttp/websocket's FastHTTPUpgrader (player) and a small client
// handshake (game server); after them the relay speaks RFC 6455 framing itself, because the hot
// path must not allocate per message and an idle session must not hold I/O buffers. A
// single-frame message that fits the read buffer is unmasked, checked and re-framed in place;
// larger or fragmented messages are assembled in pooled buffers.
//
// Two engines relay the frames (Config.Relay). RelayEventLoop (Linux, the default there) hands
// both sockets to one of a few event loops (loop_linux.go, evsession_linux.go): a goroutine that
// owns an epoll instance and reads, writes, times and closes the sockets of many sessions, with
// no goroutine per session. RelayGoroutines (session.go, leg.go) reads each leg on a goroutine
// of its own and writes every complete message to the other leg; on Unix a leg's reader stays
// inside one syscall.RawConn.Read call while messages keep coming (see relayer.step). Both keep
// the same limits, close codes and close handshakes, and pass the same tests.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/usher-gg/usher/internal/metrics"
)

// Defaults applied by Config.SetDefaults.
const (
	DefaultMaxMessageBytes  = 64 << 10
	DefaultPingInterval     = 20 * time.Second
	DefaultPongWait         = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultDialTimeout      = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultCloseGrace       = 2 * time.Second
	DefaultReadBufferSize   = 4 << 10
	DefaultWriteBufferSize  = 4 << 10
	// RelayEventLoop runs every session on a few event loops (Config.Loops), each owning an epoll
	// instance and the sockets of many sessions: no goroutine per session once both handshakes
	// are done. Linux only; the default there.
	RelayEventLoop = "eventloop"
	// RelayGoroutines runs two goroutines per session, each reading one leg and writing the
	// other. It works everywhere and is the default where RelayEventLoop is not available.
	RelayGoroutines = "goroutines"
	// DefaultMaxMessagesPerSecond is the recommended client message rate. SetDefaults does not
	// apply it, because a zero MaxMessagesPerSecond means unlimited (--max-message-rate=0).
	DefaultMaxMessagesPerSecond = 200
)

// Config tunes the relay. The zero value of every field but MaxMessagesPerSecond means "use the
// default" (see SetDefaults).
type Config struct {
	// MaxMessageBytes is the largest message relayed, counted across fragments. A larger
	// message gets close 1009 to the side that sent it. Default 64 KiB.
	MaxMessageBytes int64
	// PingInterval is how often both legs are pinged. A leg that sends nothing (not even a
	// pong) for PingInterval+PongWait is dead. Default 20s.
	PingInterval time.Duration
	// PongWait is how long past PingInterval a leg may stay silent. Default 10s.
	PongWait time.Duration
	// WriteTimeout bounds every write; a peer that does not read for that long is closed.
	// Default 10s.
	WriteTimeout time.Duration
	// DialTimeout bounds Dial: the TCP connection and the WebSocket handshake. Default 5s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the client upgrade: the time from Upgrade to the hijacked
	// connection reaching the relay. An upgrade that never completes releases its game server
	// connection after it. Default 10s.
	HandshakeTimeout time.Duration
	// MaxMessagesPerSecond limits the frames a client may send per second (messages, each
	// fragment, pings and pongs; not its close frame), with a burst of twice that; more gets
	// close 1008. 0 means unlimited; use DefaultMaxMessagesPerSecond (200) unless configured
	// otherwise.
	MaxMessagesPerSecond int
	// CloseGrace is how long a leg gets to answer a close frame (and to close its side of the
	// TCP connection) before Usher drops it. Default 2s.
	CloseGrace time.Duration
	// ReadBufferSize is the size of the pooled buffers a leg reads into while bytes are in
	// flight; a single-frame message up to this size (minus its header) is relayed in place
	// without copying. At least 256. Default 4 KiB.
	ReadBufferSize int
	// WriteBufferSize is the smallest pooled buffer larger or fragmented messages are assembled
	// in (classes grow by 4× up to MaxMessageBytes). At least 256. Default 4 KiB.
	WriteBufferSize int
	// Relay is the relay engine: RelayEventLoop (default on Linux) or RelayGoroutines.
	Relay string
	// Loops is the number of event loops (RelayEventLoop). 0 means DefaultLoops(): one fewer
	// than GOMAXPROCS, at least one.
	Loops int
}

// SetDefaults fills zero fields with their defaults. It leaves MaxMessagesPerSecond alone:
// zero there means unlimited.
func (c *Config) SetDefaults() {
	setDefault(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&c.PingInterval, DefaultPingInterval)
	setDefault(&c.PongWait, DefaultPongWait)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.DialTimeout, DefaultDialTimeout)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.CloseGrace, DefaultCloseGrace)
	setDefault(&c.ReadBufferSize, DefaultReadBufferSize)
	setDefault(&c.WriteBufferSize, DefaultWriteBufferSize)
	if c.Relay == "" {
		c.Relay = RelayGoroutines
		if eventLoopSupported {
			c.Relay = RelayEventLoop
		}
	}
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports the first field out of range. Call it after SetDefaults.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.MaxMessageBytes >= 1 && c.MaxMessageBytes <= 1<<30, "MaxMessageBytes must be 1 to 1 GiB, got %d", c.MaxMessageBytes)
	check(c.PingInterval > 0, "PingInterval must be positive, got %s", c.PingInterval)
	check(c.PongWait > 0, "PongWait must be positive, got %s", c.PongWait)
	check(c.WriteTimeout > 0, "WriteTimeout must be positive, got %s", c.WriteTimeout)
	check(c.DialTimeout > 0, "DialTimeout must be positive, got %s", c.DialTimeout)
	check(c.HandshakeTimeout > 0, "HandshakeTimeout must be positive, got %s", c.HandshakeTimeout)
	check(c.CloseGrace > 0, "CloseGrace must be positive, got %s", c.CloseGrace)
	check(c.MaxMessagesPerSecond >= 0 && c.MaxMessagesPerSecond <= 1_000_000,
		"MaxMessagesPerSecond must be 0 (unlimited) to 1000000, got %d", c.MaxMessagesPerSecond)
	check(c.ReadBufferSize >= minBufferSize && c.ReadBufferSize <= 1<<20, "ReadBufferSize must be %d to 1 MiB, got %d", minBufferSize, c.ReadBufferSize)
	check(c.WriteBufferSize >= minBufferSize && c.WriteBufferSize <= 1<<20, "WriteBufferSize must be %d to 1 MiB, got %d", minBufferSize, c.WriteBufferSize)
	check(c.Loops >= 0 && c.Loops <= 1024, "Loops must be 0 (default) to 1024, got %d", c.Loops)
	switch c.Relay {
	case RelayGoroutines:
	case RelayEventLoop:
		check(eventLoopSupported, "Relay %q is not available on this system (Linux only)", c.Relay)
	default:
		errs = append(errs, fmt.Errorf("Relay must be %q or %q, got %q", RelayEventLoop, RelayGoroutines, c.Relay))
	}
	return errors.Join(errs...)
}

// minBufferSize holds the largest frame header plus the largest control frame payload.
const minBufferSize = 256

// Target names the game server a player is relayed to. Addr is the host:port of its WebSocket
// listener; the other fields are passed to it (Player, Name, Room) or only logged.
type Target struct {
	Addr   string
	Player string
	Name   string
	Room   string
	Game   string
	Server string
}

// clone copies the strings: Fiber hands out strings that alias request memory it reuses.
func (t Target) clone() Target {
	return Target{
		Addr: strings.Clone(t.Addr), Player: strings.Clone(t.Player), Name: strings.Clone(t.Name),
		Room: strings.Clone(t.Room), Game: strings.Clone(t.Game), Server: strings.Clone(t.Server),
	}
}

// ErrShuttingDown is returned by Dial and Upgrade once Shutdown has begun.
var ErrShuttingDown = errors.New("proxy: shutting down")

// Proxy dials game servers, upgrades players and relays their sessions. Create it with New.
type Proxy struct {
	cfg      Config
	m        *metrics.Metrics
	log      *slog.Logger
	upgrader websocket.FastHTTPUpgrader
	clock    clock
	inPool   *bufPool // ReadBufferSize: what legs read into
	msgPool  *bufPool // WriteBufferSize ×4 … MaxMessageBytes+headroom: assembled messages
	outPool  *bufPool // event loop: write backlogs, up to maxBacklog
	loops    loopSet  // event loops (RelayEventLoop)
	// maxBacklog bounds an event-loop leg's write backlog: what one read relays, or one
	// assembled message, plus room for control frames.
	maxBacklog int
	idle       int64 // PingInterval+PongWait in ns: read deadline after the last frame
	slack      int64 // deadlines are moved at most once per slack (ns)

	// Metric children resolved once, so the hot path does no label lookups.
	msgsC2S, msgsS2C, bytesC2S, bytesS2C prometheus.Counter

	mu       sync.Mutex
	sessions map[*session]struct{}
	pending  int // upgrades handed to fasthttp whose connection has not reached us yet
	closing  bool
	drained  chan struct{} // closed when closing and no session is left
}

// New returns a Proxy that records into m (required) and logs to log (nil: discard). It
// applies SetDefaults to cfg and panics if cfg is then invalid: validate configuration
// (Config.Validate) before calling New.
func New(cfg Config, m *metrics.Metrics, log *slog.Logger) *Proxy {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("proxy.New: invalid config: %v", err))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	idle := cfg.PingInterval + cfg.PongWait
	// Deadlines come from a coarse clock (resolution res) and are moved at most once per
	// slack, so a timeout fires up to slack early: at most a tenth of the shortest timeout,
	// and at most 1s.
	shortest := min(idle, cfg.WriteTimeout)
	res := min(max(shortest/20, time.Millisecond), 100*time.Millisecond)
	slack := min(max(shortest/10, res), time.Second)
	p := &Proxy{
		cfg: cfg,
		m:   m,
		log: log,
		upgrader: websocket.FastHTTPUpgrader{
			// The caller checked Origin against its allow-list before Dial.
			CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
			// The library's connection is used only for the handshake; the relay reads and
			// writes the socket itself, so keep the buffers it allocates minimal.
			ReadBufferSize:  1,
			WriteBufferSize: 1,
			// No compression: EnableCompression stays false.
		},
		clock:    clock{base: time.Now(), res: res},
		inPool:   newBufPool(cfg.ReadBufferSize, cfg.ReadBufferSize),
		msgPool:  newBufPool(cfg.WriteBufferSize, int(cfg.MaxMessageBytes)+msgHeadroom),
		idle:     int64(idle),
		slack:    int64(slack),
		msgsC2S:  m.ProxyMessages.WithLabelValues(dirC2S),
		msgsS2C:  m.ProxyMessages.WithLabelValues(dirS2C),
		bytesC2S: m.ProxyBytes.WithLabelValues(dirC2S),
		bytesS2C: m.ProxyBytes.WithLabelValues(dirS2C),
		sessions: make(map[*session]struct{}),
	}
	p.maxBacklog = max(int(cfg.MaxMessageBytes)+msgHeadroom, cfg.ReadBufferSize, loopBufferSize) + 4<<10
	p.outPool = newBufPool(cfg.WriteBufferSize, p.maxBacklog)
	return p
}

const (
	dirC2S = "client_to_server"
	dirS2C = "server_to_client"
)

// Upgrade upgrades the player's connection with fasthttp/websocket's FastHTTPUpgrader
// (CheckOrigin accepts every request, the caller checks Origin; no compression is negotiated)
// and relays it to up until both legs are done. It returns as soon as the upgrade is arranged:
// fasthttp hijacks the connection after the handler returns, so the handler must return
// promptly and leave the response alone.
//
// The relay runs on the goroutine fasthttp hijacks the connection on, which keeps the
// request's context and read buffer alive for the whole session. If the Fiber app sets
// app.Server().KeepHijackedConns = true, the relay moves to a goroutine of its own and fasthttp
// frees them (about 6.5 KB per session).
//
// If the upgrade fails, the upgrader has already answered the client with an HTTP error;
// Upgrade then closes up and returns the error. Once Shutdown has begun it answers 503, closes
// up and returns ErrShuttingDown. Either way up is consumed.
func (p *Proxy) Upgrade(c *fiber.Ctx, up *Upstream) error {
	if up == nil {
		return errors.New("upgrade: nil upstream")
	}
	if !up.used.CompareAndSwap(false, true) {
		return errors.New("upgrade: upstream already used")
	}
	if err := p.reserve(); err != nil {
		_ = up.Close()
		c.Set(fiber.HeaderRetryAfter, "1")
		_ = c.Status(fiber.StatusServiceUnavailable).SendString("server shutting down")
		return err
	}
	s := p.newSession(up)
	s.detach = c.App().Server().KeepHijackedConns
	// If fasthttp never hands the connection over (the client vanished before the 101 was
	// written), the timer gives the game server connection back.
	s.hsTimer = time.AfterFunc(p.cfg.HandshakeTimeout, s.abandon)
	if err := p.upgrader.Upgrade(c.Context(), s.serve); err != nil {
		s.hsTimer.Stop()
		s.abandon()
		return fmt.Errorf("upgrade client: %w", err)
	}
	return nil
}

// Shutdown is Drain with no spread: every session is closed at once.
func (p *Proxy) Shutdown(ctx context.Context) error { return p.Drain(ctx, 0) }

// Drain stops accepting sessions and closes every live session with 1012 "usher restarting"
// on both legs (contract.CloseServiceRestart: the player reconnects through another replica,
// and the game server keeps their seat), spread evenly over the window so that the players
// do not all come back at the same instant. It then waits until every relay has finished or
// ctx is done; when ctx ends first it drops the remaining connections and returns ctx's error.
func (p *Proxy) Drain(ctx context.Context, window time.Duration) error {
	p.mu.Lock()
	p.closing = true
	if len(p.sessions) == 0 && p.pending == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.drained == nil {
		p.drained = make(chan struct{})
	}
	drained := p.drained
	live := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		live = append(live, s)
	}
	p.mu.Unlock()

	start := time.Now()
	for i, s := range live {
		// Session i closes at i/n of the window.
		if due := start.Add(window * time.Duration(i) / time.Duration(len(live))); time.Until(due) > 0 {
			t := time.NewTimer(time.Until(due))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			break
		}
		s.endWith(event{kind: evShutdown})
	}
	// Sessions the loop skipped (ctx ended) or that started meanwhile end here too.
	p.loops.each((*loop).shutdownAll)
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	for s := range p.sessions {
		if s.ev == nil {
			s.abort()
		}
	}
	p.mu.Unlock()
	p.loops.each((*loop).abortAll)
	return fmt.Errorf("proxy shutdown: %w", ctx.Err())
}

// CloseMoved is the close code a player's session gets when the player joins another
// room (Kick): a player holds a seat in one room at most.
const CloseMoved = 4003

// Kick ends the sessions of player in room: the player gets close CloseMoved "joined
// another room" and the game server 1001 "player joined another room", as a player who
// leaves. It returns how many sessions it ended.
func (p *Proxy) Kick(player, room string) int {
	return p.end(func(t Target) bool { return t.Player == player && t.Room == room }, event{kind: evMoved})
}

// Close codes of Remove: an operator closed the player's room, or disconnected the player.
const (
	CloseRoomClosed  = 4006
	CloseRemoved     = 4005
	closeRemovedText = "disconnected by an operator"
	closeClosedText  = "room closed by an operator"
)

// Remove ends the sessions in room of game, of player only when player is not empty: the
// player gets close CloseRemoved "disconnected by an operator" (CloseRoomClosed "room closed
// by an operator" when player is empty) and the game server 1001 "player removed by an
// operator". It returns how many sessions it ended.
func (p *Proxy) Remove(game, room, player string) int {
	ev := event{kind: evRemoved, code: CloseRemoved, text: closeRemovedText}
	if player == "" {
		ev.code, ev.text = CloseRoomClosed, closeClosedText
	}
	return p.end(func(t Target) bool {
		return t.Game == game && t.Room == room && (player == "" || t.Player == player)
	}, ev)
}

// end ends the sessions whose target matches with ev.
func (p *Proxy) end(match func(Target) bool, ev event) int {
	p.mu.Lock()
	var ended []*session
	for s := range p.sessions {
		if match(s.up.target) {
			ended = append(ended, s)
		}
	}
	p.mu.Unlock()
	for _, s := range ended {
		s.endWith(ev)
	}
	return len(ended)
}

// SessionInfo describes a live session, for the admin page.
type SessionInfo struct {
	Player, Name, Game, Room, Server string
	Started                          time.Time
}

// List returns the live sessions, in no particular order.
func (p *Proxy) List() []SessionInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]SessionInfo, 0, len(p.sessions))
	for s := range p.sessions {
		t := s.up.target
		out = append(out, SessionInfo{Player: t.Player, Name: t.Name, Game: t.Game, Room: t.Room, Server: t.Server, Started: s.started})
	}
	return out
}

// endWith starts the end of s because of ev (Kick, Drain), on whichever engine relays it.
// Concurrently: a close frame may wait for a write in progress on a slow connection.
func (s *session) endWith(ev event) {
	if s.ev != nil {
		s.ev.endWith(ev)
	} else {
		go s.finish(nil, ev)
	}
}

// Sessions returns the number of sessions being relayed now.
func (p *Proxy) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// reserve counts an upgrade in progress, unless the proxy is shutting down.
func (p *Proxy) reserve() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return ErrShuttingDown
	}
	p.pending++
	p.mu.Unlock()
	p.clock.acquire()
	if p.cfg.Relay == RelayEventLoop {
		p.loops.acquire(p)
	}
	return nil
}

// activate turns a reserved upgrade into a live session. It reports whether Shutdown has begun.
func (p *Proxy) activate(s *session) (closing bool) {
	p.mu.Lock()
	p.pending--
	p.sessions[s] = struct{}{}
	closing = p.closing
	p.mu.Unlock()
	p.m.ProxySessions.Inc()
	return closing
}

// release forgets a reserved upgrade (s == nil) or a finished session.
func (p *Proxy) release(s *session) {
	p.mu.Lock()
	if s == nil {
		p.pending--
	} else {
		delete(p.sessions, s)
	}
	if p.drained != nil && len(p.sessions) == 0 && p.pending == 0 {
		close(p.drained)
		p.drained = nil
	}
	p.mu.Unlock()
	p.clock.release()
	if p.cfg.Relay == RelayEventLoop {
		p.loops.release()
	}
}

func (p *Proxy) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}
