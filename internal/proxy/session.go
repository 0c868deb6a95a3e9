package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/contract"
)

// eventKind is why a leg stopped.
type eventKind uint8

const (
	evClosed      eventKind = iota // the peer sent a close frame
	evGone                         // the connection ended or broke without a close frame
	evTimeout                      // nothing arrived for PingInterval+PongWait
	evTooBig                       // message larger than MaxMessageBytes
	evProtocol                     // protocol violation
	evBadData                      // invalid UTF-8
	evFlood                        // more frames than MaxMessagesPerSecond
	evWriteFailed                  // a write to the leg failed (or timed out: a slow reader)
	evShutdown                     // Shutdown
	evMoved                        // Kick: the player joined another room
	evRemoved                      // Remove: an operator closed the room or disconnected the player
)

// event describes how a session ends.
type event struct {
	kind    eventKind
	code    int    // evClosed: the peer's code; violations: the code to send back
	text    string // evClosed: the peer's reason; violations: the close reason
	timeout bool   // evWriteFailed: the write timed out
	err     error  // the underlying error, for the log
}

// readEvent classifies the error a leg's reader stopped with.
func readEvent(err error) event {
	switch e := err.(type) {
	case *closeReceived:
		return event{kind: evClosed, code: e.code, text: e.text}
	case *frameError:
		ev := event{kind: evProtocol, code: e.code, text: e.text, err: err}
		switch e.code {
		case closeTooBig:
			ev.kind = evTooBig
		case closePolicy:
			ev.kind = evFlood
		case closeInvalidData:
			ev.kind = evBadData
		}
		return ev
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return event{kind: evTimeout, err: err}
	}
	return event{kind: evGone, err: err}
}

// writeEvent classifies a failed write.
func writeEvent(err error) event {
	return event{kind: evWriteFailed, timeout: errors.Is(err, os.ErrDeadlineExceeded), err: err}
}

// reason is the usher_proxy_closes_total label for a session that ended with ev on the leg of
// side from (ignored for evShutdown).
func reason(from side, ev event) string {
	switch ev.kind {
	case evShutdown:
		return "shutdown"
	case evMoved:
		return "moved"
	case evRemoved:
		return "removed"
	}
	client := from == sideClient
	pick := func(c, s string) string {
		if client {
			return c
		}
		return s
	}
	switch ev.kind {
	case evClosed:
		return pick("client_closed", "server_closed")
	case evTimeout:
		return pick("client_timeout", "server_timeout")
	case evTooBig:
		return pick("message_too_big", "server_error")
	case evProtocol:
		return pick("protocol", "server_error")
	case evBadData:
		return pick("invalid_utf8", "server_error")
	case evFlood:
		return "policy"
	case evWriteFailed:
		if ev.timeout {
			return pick("slow_client", "slow_server")
		}
	}
	return pick("client_gone", "server_gone")
}

// closeFor returns the close frame the leg of side to gets when the session ends with ev on
// the other leg (or with evShutdown).
//
// The game server learns from the code whether the player may come back (see
// contract.DisconnectReason): the player's own close is forwarded (1000: they left), a
// player whose connection broke is CloseLost, and a drain is 1012 to both legs, so the
// player reconnects through another replica and the game server keeps the seat.
func closeFor(to side, ev event) (int, string) {
	switch {
	case ev.kind == evShutdown:
		return contract.CloseServiceRestart, "usher restarting: reconnect"
	case ev.kind == evMoved && to == sideClient:
		return CloseMoved, "joined another room"
	case ev.kind == evMoved:
		return closeGoingAway, "player joined another room"
	case ev.kind == evRemoved && to == sideClient:
		return ev.code, ev.text
	case ev.kind == evRemoved:
		return closeGoingAway, "player removed by an operator"
	case ev.kind == evClosed && to == sideServer:
		// The codes that mean "may come back" are Usher's to send, not the player's.
		switch code := forwardCode(ev.code); code {
		case contract.CloseLost, contract.CloseServiceRestart:
			return closeNormal, ev.text
		default:
			return code, ev.text
		}
	case ev.kind == evClosed:
		return forwardCode(ev.code), ev.text
	case to == sideServer && (ev.kind == evGone || ev.kind == evTimeout || ev.kind == evWriteFailed):
		return contract.CloseLost, "connection lost"
	case to == sideServer:
		return closeGoingAway, "client gone"
	case ev.kind == evTooBig || ev.kind == evProtocol || ev.kind == evBadData:
		return closeInternalError, "game server error"
	default:
		// Not 1014 (bad gateway): gorilla-derived clients reject it as a protocol error.
		return closeInternalError, "game server gone"
	}
}

// Session states: an upgrade is pending until fasthttp hands over the connection; a pending
// session whose handshake timer fires first is abandoned.
const (
	statePending int32 = iota
	stateRunning
	stateAbandoned
)

// session relays one player to one game server.
type session struct {
	p       *Proxy
	up      *Upstream
	client  leg
	server  *leg
	bucket  bucket
	state   atomic.Int32
	hsTimer *time.Timer
	detach  bool // the server keeps hijacked connections: serve may return early
	started time.Time
	ending  atomic.Bool // set once, by finish; readers then drop data
	ev      *evSession  // set when an event loop relays the session (RelayEventLoop)

	c2sMsgs, c2sBytes, s2cMsgs, s2cBytes atomic.Uint64 // not yet added to the metrics

	mu        sync.Mutex
	finished  bool
	endedBy   event
	endedOn   side
	why       string
	keepalive *time.Timer
	timers    []*time.Timer // grace timers
}

func (p *Proxy) newSession(up *Upstream) *session {
	return &session{
		p:      p,
		up:     up,
		server: &up.leg,
	}
}

// logger is the session's logger, with who and where as attributes. It is made when a line is
// written (a debug line at the start, one at the end), not kept: a kept slog.Logger with four
// attributes cost about 1 KB per player (the handlers' pre-formatted attributes), a tenth of
// Usher's memory per connected player.
func (s *session) logger() *slog.Logger {
	t := s.up.target
	return s.p.log.With("player", t.Player, "room", t.Room, "game", t.Game, "gameserver", t.Server)
}

// logStarted writes the session's debug line at its start, making a logger only when debug
// lines are written at all.
func (s *session) logStarted() {
	if s.p.log.Enabled(context.Background(), slog.LevelDebug) {
		s.logger().Debug("session started")
	}
}

// abandon gives up a pending upgrade: the upgrader failed, or the handshake timed out.
func (s *session) abandon() {
	if !s.state.CompareAndSwap(statePending, stateAbandoned) {
		return
	}
	_ = s.up.Close()
	s.p.release(nil)
}

// serve is the FastHTTPHandler: it runs on the goroutine fasthttp hijacked the connection on.
// Unless the server keeps hijacked connections (fasthttp.Server.KeepHijackedConns), fasthttp
// closes the connection when serve returns, so the session runs on this goroutine.
func (s *session) serve(ws *websocket.Conn) {
	if !s.state.CompareAndSwap(statePending, stateRunning) {
		// Abandoned: the handshake took too long and the game server connection is gone.
		if u, ok := ws.NetConn().(interface{ UnsafeConn() net.Conn }); ok {
			_ = u.UnsafeConn().Close()
		}
		return
	}
	s.hsTimer.Stop()
	s.hsTimer = nil
	err := s.client.attach(s.p, ws)
	if s.p.cfg.Relay == RelayEventLoop && s.runOnLoop(err) {
		return
	}
	if s.detach {
		// fasthttp keeps hijacked connections open after this handler returns: returning at
		// once lets it release the request's context and read buffer (~6.5 KB a session).
		go s.relay(err)
		return
	}
	s.relay(err)
}

// relay runs the session until both legs are done. err is the error attach returned.
func (s *session) relay(err error) {
	p := s.p
	s.started = time.Now()
	now := p.clock.Now()
	if p.cfg.MaxMessagesPerSecond > 0 {
		s.bucket = newBucket(p.cfg.MaxMessagesPerSecond, now)
		s.client.limit = &s.bucket
	}
	s.client.start(now)
	s.server.start(now)
	closing := p.activate(s)
	s.logStarted()

	s.mu.Lock()
	s.keepalive = time.AfterFunc(p.cfg.PingInterval, s.ping)
	s.mu.Unlock()
	if err != nil { // the player is gone, or broke the protocol before the relay started
		s.stop(&s.client, err)
		s.pump(s.server, &s.client, &s.s2cMsgs, &s.s2cBytes)
		s.end()
		return
	}
	if closing {
		s.finish(nil, event{kind: evShutdown})
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		s.pump(s.server, &s.client, &s.s2cMsgs, &s.s2cBytes)
	}()
	s.pump(&s.client, s.server, &s.c2sMsgs, &s.c2sBytes)
	<-done
	s.end()
}

// pump reads src and writes every message to dst until src is done. On Unix the common
// messages go through the relayer's fast path, which stays inside one RawConn.Read call for
// as long as they keep coming; the others, and every message elsewhere, through readMessage.
func (s *session) pump(src, dst *leg, msgs, bytes *atomic.Uint64) {
	var fast *relayer
	if src.rc != nil {
		fast = &relayer{s: s, src: src, dst: dst, msgs: msgs, bytes: bytes}
		fast.fn = fast.step // bound once: a method value allocates
	}
	for {
		if fast != nil {
			if err := src.rc.Read(fast.fn); err != nil {
				s.stop(src, err)
				return
			}
			if fast.err != nil {
				s.stop(src, fast.err)
				return
			}
			// A message the fast path does not take: read it the blocking way.
		}
		op, data, off, err := src.readMessage()
		if err != nil {
			s.stop(src, err)
			return
		}
		s.forward(dst, op, data, off, msgs, bytes)
	}
}

// relayer is a pump's fast path: see step.
type relayer struct {
	s           *session
	src, dst    *leg
	msgs, bytes *atomic.Uint64
	fn          func(uintptr) bool // step
	err         error              // why src stopped; nil when a message needs readMessage
}

// forward writes one message read from a leg to dst, unless the session is ending.
func (s *session) forward(dst *leg, op byte, data []byte, off int, msgs, bytes *atomic.Uint64) {
	if s.ending.Load() {
		return // dst is closing: drop, and keep reading until src's close
	}
	if err := dst.writeMessage(op, data, off, s.p.clock.Now()); err != nil {
		s.finish(dst, writeEvent(err))
		return
	}
	msgs.Add(1)
	bytes.Add(uint64(len(data) - off))
}

// stop ends src after its reader stopped with err.
func (s *session) stop(src *leg, err error) {
	ev := readEvent(err)
	first := s.finish(src, ev)
	grace := s.p.cfg.CloseGrace
	switch ev.kind {
	case evClosed:
		if first {
			_ = src.writeClose(ev.code, "", s.closeTimeout()) // echo the code
		}
		// The close handshake is complete. On the player's leg Usher is the server, which
		// closes the TCP connection first (RFC 6455 section 7.1.1); on the game server's leg it
		// waits for the server to do so.
		if src.side == sideClient {
			src.closeNow()
		} else {
			src.linger(grace)
		}
	case evTooBig, evProtocol, evBadData, evFlood:
		_ = src.writeClose(ev.code, ev.text, s.closeTimeout())
		src.linger(grace)
	default:
		src.closeNow()
	}
}

func (s *session) closeTimeout() time.Duration { return min(s.p.cfg.WriteTimeout, s.p.cfg.CloseGrace) }

// finish starts the end of the session because of ev on leg from (nil for Shutdown): it sends
// the other leg (both for Shutdown) its close frame and drops it if it has not answered within
// CloseGrace. Only the first call does anything; it reports whether it was the first.
func (s *session) finish(from *leg, ev event) bool {
	s.mu.Lock()
	if s.ending.Load() {
		s.mu.Unlock()
		return false
	}
	s.ending.Store(true)
	s.endedBy = ev
	var fromSide side
	if from != nil {
		fromSide = from.side
	}
	s.endedOn = fromSide
	s.why = reason(fromSide, ev)
	s.mu.Unlock()

	for _, to := range [2]*leg{&s.client, s.server} {
		if to == from {
			continue
		}
		code, text := closeFor(to.side, ev)
		_ = to.writeClose(code, text, s.closeTimeout())
		t := time.AfterFunc(s.p.cfg.CloseGrace, to.closeNow)
		s.mu.Lock()
		s.timers = append(s.timers, t)
		s.mu.Unlock()
	}
	if ev.kind == evWriteFailed {
		from.closeNow() // its write side is broken; this also stops its reader
	}
	return true
}

// abort drops both connections now (Shutdown's deadline passed).
func (s *session) abort() {
	s.mu.Lock()
	if !s.ending.Load() {
		s.ending.Store(true)
		s.endedBy = event{kind: evShutdown}
		s.why = "shutdown"
	}
	s.mu.Unlock()
	s.client.closeNow()
	s.server.closeNow()
}

// ping is the keepalive timer: it pings both legs every PingInterval and publishes the
// session's counters.
func (s *session) ping() {
	if s.ending.Load() {
		return
	}
	for _, l := range [2]*leg{&s.client, s.server} {
		if err := l.writeControl(opPing, nil, s.p.cfg.WriteTimeout); err != nil && !errors.Is(err, errWriteClosed) {
			s.finish(l, writeEvent(err))
		}
	}
	s.flush()
	s.mu.Lock()
	if !s.finished && !s.ending.Load() {
		s.keepalive.Reset(s.p.cfg.PingInterval)
	}
	s.mu.Unlock()
}

// flush adds the session's counters to the metrics.
func (s *session) flush() {
	p := s.p
	if n := s.c2sMsgs.Swap(0); n > 0 {
		p.msgsC2S.Add(float64(n))
		p.bytesC2S.Add(float64(s.c2sBytes.Swap(0)))
	}
	if n := s.s2cMsgs.Swap(0); n > 0 {
		p.msgsS2C.Add(float64(n))
		p.bytesS2C.Add(float64(s.s2cBytes.Swap(0)))
	}
}

// end runs once both readers are done: it closes both connections, frees the buffers and
// records the session.
func (s *session) end() {
	s.mu.Lock()
	s.finished = true
	s.keepalive.Stop()
	for _, t := range s.timers {
		t.Stop()
	}
	ev, on, why := s.endedBy, s.endedOn, s.why
	s.mu.Unlock()
	s.client.closeNow()
	s.server.closeNow()
	s.client.releaseBuffers()
	s.server.releaseBuffers()
	s.done(ev, on, why)
}

// done records a finished session (both engines): counters, metrics, the log line, and
// forgets it.
func (s *session) done(ev event, on side, why string) {
	s.flush()
	p := s.p
	d := time.Since(s.started)
	p.m.ProxySessions.Dec()
	p.m.ProxyCloses.WithLabelValues(why).Inc()
	p.m.SessionDuration.Observe(d.Seconds())
	attrs := []any{"reason", why, "duration", d.Round(time.Millisecond)}
	if ev.kind == evClosed {
		attrs = append(attrs, "side", on.String(), "code", ev.code)
	}
	if ev.err != nil && ev.kind != evGone {
		attrs = append(attrs, "err", ev.err)
	}
	s.logger().Info("session ended", attrs...)
	p.release(s)
}

// attach takes over the player's connection from the library's handshake. fasthttp wraps the
// hijacked connection to return bytes it had already buffered first; those are read with an
// expired deadline (buffered bytes come back at once, an empty buffer times out without
// touching the socket), after which the leg uses the TCP connection directly.
func (l *leg) attach(p *Proxy, ws *websocket.Conn) error {
	nc := ws.NetConn()
	u, ok := nc.(interface{ UnsafeConn() net.Conn })
	if !ok {
		l.init(p, sideClient, nc, false) // unknown wrapper: read through it, holding a buffer
		return nil
	}
	raw := u.UnsafeConn()
	l.init(p, sideClient, raw, true)
	_ = raw.SetReadDeadline(time.Unix(1, 0))
	l.in = p.inPool.get(p.cfg.ReadBufferSize)
	var err error
	for l.w < len(l.in.b) {
		var n int
		n, err = nc.Read(l.in.b[l.w:])
		l.w += n
		if err != nil || n == 0 {
			break
		}
	}
	_ = raw.SetReadDeadline(time.Time{})
	switch {
	case l.w == len(l.in.b):
		return errEarlyData // the client did not wait for the handshake to complete
	case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case l.w == 0:
		p.inPool.put(l.in)
		l.in = nil
	}
	return nil
}
