package exampleserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/usher-gg/usher/contract"
)

// ServeHTTP accepts a player's WebSocket on any path. The player is named by the usher_*
// query parameters Usher's proxy adds, or by the X-Usher-* headers.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	param := func(query, header string) string {
		if v := q.Get(query); v != "" {
			return v
		}
		return r.Header.Get(header)
	}
	player := param(contract.QueryPlayer, contract.HeaderPlayer)
	if !validPlayerID(player) {
		http.Error(w, "missing or invalid "+contract.QueryPlayer, http.StatusBadRequest)
		return
	}
	name := param(contract.QueryName, contract.HeaderName)
	room := param(contract.QueryRoom, contract.HeaderRoom)
	if !s.enter() {
		http.Error(w, "server stopping", http.StatusServiceUnavailable)
		return
	}
	defer s.conns.Done()
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // the Upgrader has answered
	}
	s.serveConn(ws, player, name, room)
}

// serveConn runs one player's connection: join, relay until it ends, leave.
func (s *server) serveConn(ws *websocket.Conn, player, name, room string) {
	log := s.log.With("player", player)
	ws.SetReadLimit(s.cfg.MaxMessageBytes)
	c := &conn{ws: ws, player: player, limit: s.cfg.SendQueue, wake: make(chan struct{}, 1), space: make(chan struct{}, 1), writerDone: make(chan struct{})}
	if code, text, ok := s.join(c, name, room, log); !ok {
		closeNow(ws, code, text)
		return
	}
	go c.writeLoop(log)
	var err error
	if s.cfg.Echo {
		err = s.echoLoop(c, log)
	} else {
		err = s.readLoop(c, log)
	}
	// A player closed by this server (too slow, too big, stopping) left; otherwise the close
	// code Usher sent says whether they may come back (contract.DisconnectReason).
	reason := contract.ReasonLeft
	if !c.closing() && !errors.Is(err, websocket.ErrReadLimit) {
		reason = contract.DisconnectReason(closeCodeOf(err))
	}
	c.close(0, "") // the read side is over: stop the writer (no close frame left to send)
	<-c.writerDone
	_ = ws.Close()
	s.leave(c, reason, log)
}

// closeCodeOf is the close code a read ended with: the peer's, or contract.CloseAbnormal
// (1006) when the connection ended without a close frame.
func closeCodeOf(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return contract.CloseAbnormal
}

// join reports the player to the bridge and registers the connection, replacing an older
// one of the same player. It queues the welcome before any other player can relay to c.
func (s *server) join(c *conn, name, room string, log *slog.Logger) (code int, text string, ok bool) {
	unlock := s.locks.lock(c.player)
	defer unlock()
	if s.isStopping() {
		return websocket.CloseGoingAway, "server stopping", false
	}
	ctx, cancel := context.WithTimeout(s.ctx, bridgeTimeout)
	defer cancel()
	if err := s.bridge.PlayerConnected(ctx, c.player); err != nil {
		switch {
		case errors.Is(err, contract.ErrRoomFull):
			log.Info("player refused: room full")
			return CloseRoomFull, "room full", false
		case errors.Is(err, contract.ErrBadState):
			log.Warn("player refused: not accepting players", "err", err)
			return websocket.ClosePolicyViolation, "not accepting players", false
		default:
			log.Error("reporting a connection failed", "err", err)
			return websocket.CloseTryAgainLater, "bridge unavailable", false
		}
	}
	if room == "" {
		room = s.roomCode(ctx)
	}

	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		s.reportLeft(c.player, contract.ReasonLeft, log)
		return websocket.CloseGoingAway, "server stopping", false
	}
	old := s.players[c.player]
	s.players[c.player] = c
	ids := s.sortedIDsLocked()
	welcome, _ := json.Marshal(Welcome{Type: "welcome", Player: c.player, Room: room, Players: ids})
	c.push(message{typ: websocket.TextMessage, data: welcome})
	s.changedLocked()
	s.mu.Unlock()

	if old != nil {
		old.close(CloseReplaced, "replaced")
		log.Info("older connection replaced")
	}
	log.Info("player connected", "name", name, "room", room, "players", len(ids))
	return 0, "", true
}

// leave unregisters c and reports the player gone for reason, unless a newer connection
// replaced it.
func (s *server) leave(c *conn, reason string, log *slog.Logger) {
	unlock := s.locks.lock(c.player)
	defer unlock()
	s.mu.Lock()
	mine := s.players[c.player] == c
	if mine {
		delete(s.players, c.player)
		if len(s.players) == 0 {
			s.emptySince = time.Now()
		}
		s.changedLocked()
	}
	s.mu.Unlock()
	if mine {
		s.reportLeft(c.player, reason, log)
		log.Info("player disconnected", "reason", reason)
	}
}

// reportLeft tells the bridge the player is gone, for reason; it still tries while the
// server stops.
func (s *server) reportLeft(player, reason string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), leaveTimeout)
	defer cancel()
	if err := s.bridge.PlayerDisconnected(ctx, player, reason); err != nil {
		log.Warn("reporting a disconnection failed", "err", err)
	}
}

// readLoop relays each message of c to the other players until the connection ends, and
// returns the error it ended with.
func (s *server) readLoop(c *conn, log *slog.Logger) error {
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				log.Info("message too big", "max_bytes", s.cfg.MaxMessageBytes)
			} else {
				log.Debug("read ended", "err", err)
			}
			return err
		}
		if c.closing() {
			continue // draining until the peer answers our close
		}
		s.relay(c, message{typ: typ, data: data})
	}
}

// echoLoop sends each message of c back to c until the connection ends (echo mode). It writes
// the message itself, under c.wmu, from a buffer it reuses: no queue, no allocation per message.
// It returns the error the connection ended with.
func (s *server) echoLoop(c *conn, log *slog.Logger) error {
	buf := make([]byte, 0, 1024)
	for {
		typ, r, err := c.ws.NextReader()
		if err == nil {
			buf, err = readAll(r, buf[:0])
		}
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				log.Info("message too big", "max_bytes", s.cfg.MaxMessageBytes)
			} else {
				log.Debug("read ended", "err", err)
			}
			return err
		}
		if c.closing() {
			continue // draining until the peer answers our close
		}
		c.wmu.Lock()
		_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
		err = c.ws.WriteMessage(typ, buf)
		c.wmu.Unlock()
		if err != nil {
			log.Debug("write failed", "err", err)
			c.close(0, "")
			_ = c.ws.Close() // ends the writer's wait too
			return err
		}
	}
}

// readAll appends what r yields until EOF to b, growing it as needed.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// relay queues m for every other player. For a player whose queue is full the sender
// waits (this is the sender's reading goroutine, so the sender is slowed, as Usher's relay
// pushes back on it), up to SlowTimeout: a player whose queue stays full that long is too
// slow and is closed. So a burst never costs a bystander its connection, and one slow
// player holds the others up once, for SlowTimeout at most.
func (s *server) relay(from *conn, m message) {
	s.mu.RLock()
	from.peers = from.peers[:0]
	for _, to := range s.players {
		if to != from {
			from.peers = append(from.peers, to)
		}
	}
	s.mu.RUnlock()
	for i, to := range from.peers {
		from.peers[i] = nil
		if to.push(m) || to.waitPush(m, s.cfg.SlowTimeout) {
			continue
		}
		if to.close(websocket.ClosePolicyViolation, "too slow") {
			s.log.Warn("player too slow, disconnecting", "player", to.player, "queue", to.limit, "waited", s.cfg.SlowTimeout)
		}
	}
}

// message is one WebSocket data message. Its bytes are shared by every recipient, read only.
type message struct {
	typ  int
	data []byte
}

// conn is one player's connection: the reader is the HTTP handler's goroutine, the writer is
// writeLoop, fed by a bounded queue. In echo mode the reader writes too; wmu orders its writes
// with writeLoop's.
type conn struct {
	ws         *websocket.Conn
	player     string
	limit      int           // queue bound, counting the batch being written
	wake       chan struct{} // capacity 1: work for the writer
	space      chan struct{} // capacity 1: the writer made room in the queue
	writerDone chan struct{}
	peers      []*conn      // the relay's list of recipients; only this player's reader uses it
	inflight   atomic.Int32 // messages of the current batch not written yet
	wmu        sync.Mutex   // held around each data write

	mu        sync.Mutex
	queue     []message
	spare     []message // the previous batch, reused for the next queue
	closed    bool
	closeCode int // 0: stop without a close frame
	closeText string
}

// push queues m, and reports false when the queue is full. Messages to a closing connection
// are dropped.
func (c *conn) push(m message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return true
	}
	if len(c.queue)+int(c.inflight.Load()) >= c.limit {
		return false
	}
	c.queue = append(c.queue, m)
	c.signal()
	return true
}

// waitPush waits up to d for room in the queue to push m, and reports whether m was
// queued (or dropped because the connection is closing).
func (c *conn) waitPush(m message, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-c.space:
			if c.push(m) {
				return true
			}
		case <-c.writerDone:
			return true // the connection is gone: nothing to deliver
		case <-t.C:
			return c.push(m)
		}
	}
}

// close asks the writer to send a close frame with code (none when code is 0) and stop; the
// messages still queued are dropped. It reports whether this call started the close.
func (c *conn) close(code int, text string) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed, c.closeCode, c.closeText = true, code, text
	clear(c.queue)
	c.queue = c.queue[:0]
	c.mu.Unlock()
	c.signal()
	if code != 0 {
		// A write stuck on a peer that does not read gives up soon.
		_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(closeWait))
	}
	return true
}

func (c *conn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop(log *slog.Logger) {
	defer close(c.writerDone)
	for range c.wake {
		c.mu.Lock()
		batch := c.queue
		c.queue = c.spare[:0]
		c.spare = nil
		c.inflight.Store(int32(len(batch)))
		closed, code, text := c.closed, c.closeCode, c.closeText
		c.mu.Unlock()
		if closed {
			if code != 0 {
				closeFrame(c.ws, code, text)
			}
			return
		}
		for i, m := range batch {
			if c.closing() {
				break
			}
			c.wmu.Lock()
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			err := c.ws.WriteMessage(m.typ, m.data)
			c.wmu.Unlock()
			if err != nil {
				log.Debug("write failed", "err", err)
				c.close(0, "")
				_ = c.ws.Close() // ends the reader too
				return
			}
			batch[i] = message{}
			c.inflight.Add(-1)
			select { // a relay waiting for room may go on
			case c.space <- struct{}{}:
			default:
			}
		}
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		c.inflight.Store(0)
		c.mu.Unlock()
		if c.closing() {
			c.signal() // send the close frame on the next turn
		}
	}
}

// closeFrame sends a close frame and gives the peer closeWait to answer it; the reader sees
// the answer (or the deadline) and ends.
func closeFrame(ws *websocket.Conn, code int, text string) {
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(closeWait))
	_ = ws.NetConn().SetReadDeadline(time.Now().Add(closeWait))
}

// closeNow closes a connection that never joined: close frame, wait for the answer, close.
func closeNow(ws *websocket.Conn, code int, text string) {
	closeFrame(ws, code, text)
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	_ = ws.Close()
}

// validPlayerID applies the bridge's rule for player ids, so a bad id is refused before the
// upgrade: 1 to contract.MaxPlayerIDLen bytes of printable UTF-8.
func validPlayerID(s string) bool {
	if s == "" || len(s) > contract.MaxPlayerIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// playerLocks serializes the connect and disconnect of each player, so the bridge hears
// them in the order they happened even when a player reconnects at once.
type playerLocks struct {
	mu sync.Mutex
	m  map[string]*playerLock
}

type playerLock struct {
	mu   sync.Mutex
	refs int
}

func (l *playerLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	pl := l.m[id]
	if pl == nil {
		pl = &playerLock{}
		l.m[id] = pl
	}
	pl.refs++
	l.mu.Unlock()
	pl.mu.Lock()
	return func() {
		pl.mu.Unlock()
		l.mu.Lock()
		if pl.refs--; pl.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}
