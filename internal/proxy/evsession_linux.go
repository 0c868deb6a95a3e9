package proxy

import (
	"io"
	"math/rand/v2"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// evSession is a session relayed by an event loop. Everything in it belongs to the loop's
// goroutine.
type evSession struct {
	s       *session
	lp      *loop
	legs    [2]evLeg // client, server
	bucket  bucket
	idx     int  // in lp.sessions
	slot    int  // in lp.wheel
	slotIdx int  // in lp.wheel[slot]
	ending  bool // set once, by finish: data is dropped from then on

	c2sMsgs, c2sBytes, s2cMsgs, s2cBytes uint64 // not yet added to the metrics
}

// Reading states of a leg.
const (
	rdOpen    uint8 = iota // relaying what the peer sends
	rdStopped              // the reader is done (its close is pending): nothing is read
	rdLinger               // the close frame is out and the write side shut: discard until EOF
)

// What a leg does once its write backlog is out.
const (
	afterNone uint8 = iota
	afterClose
	afterLinger
)

// evLeg is one connection of an evSession: a non-blocking socket the loop reads when epoll
// says it is readable, and writes directly; what the socket does not take at once waits in a
// pooled backlog until epoll says it is writable.
type evLeg struct {
	es   *evSession
	peer *evLeg
	fd   int
	side side
	rd   uint8 // rdOpen, rdStopped, rdLinger
	// paused: the peer has a write backlog, so this leg is not read until it drains (bytes wait
	// in the socket, and TCP flow control slows the sender).
	paused bool
	closed bool
	after  uint8 // afterNone, afterClose, afterLinger

	// Reading.
	in       *buffer // a partial frame carried to the next read; nil when none
	r, w     int     // in.b[r:w]
	msg      *buffer // a fragmented or large message being assembled after msgHeadroom
	msgLen   int
	ps       parser      // the frames' message state (the one RFC 6455 parser)
	fh       frameHeader // the large frame whose payload is being copied into msg
	fleft    int         // its payload bytes still to come
	fpos     int         // its payload bytes already copied (for the mask's phase)
	lastRead int64       // loop time of the last frame
	limit    *bucket     // frames the peer may send (player leg only)

	// Writing.
	out        *buffer // bytes the socket did not take yet: out.b[outR:outW]
	outR, outW int
	outSince   int64 // loop time the backlog began
	wclosed    bool  // a close frame was sent, or a write failed
	deadline   int64 // close the connection at this loop time; 0: none
}

// runOnLoop hands s to an event loop: it duplicates both sockets for the loop and closes the
// connections the handshakes used. It returns false, leaving s untouched, when no loop or no
// file descriptor is available; s then runs on goroutines. attachErr is attach's error.
func (s *session) runOnLoop(attachErr error) bool {
	if s.client.rc == nil || s.server.rc == nil {
		return false
	}
	p := s.p
	lp := p.loops.pick()
	if lp == nil {
		return false
	}
	cfd, err := dupConn(s.client.nc)
	if err != nil {
		lp.load.Add(-1)
		return false
	}
	sfd, err := dupConn(s.server.nc)
	if err != nil {
		_ = unix.Close(cfd)
		lp.load.Add(-1)
		return false
	}
	_ = s.client.nc.Close()
	_ = s.server.nc.Close()
	s.up.once.Do(func() {}) // the session owns the game server's connection now

	es := &evSession{s: s, lp: lp}
	c, sv := &es.legs[0], &es.legs[1]
	*c = evLeg{es: es, peer: sv, fd: cfd, side: sideClient, in: s.client.in, r: s.client.r, w: s.client.w, ps: s.client.ps}
	*sv = evLeg{es: es, peer: c, fd: sfd, side: sideServer, in: s.server.in, r: s.server.r, w: s.server.w, ps: s.server.ps}
	s.client.in, s.server.in = nil, nil
	s.ev = es
	lp.post(func() { lp.add(es, attachErr) })
	return true
}

// add starts relaying es (a task).
func (lp *loop) add(es *evSession, attachErr error) {
	p, s, now := lp.p, es.s, lp.now
	es.idx = len(lp.sessions)
	lp.sessions = append(lp.sessions, es)
	lp.joinWheel(es)
	if p.cfg.MaxMessagesPerSecond > 0 {
		es.bucket = newBucket(p.cfg.MaxMessagesPerSecond, now)
		es.legs[0].limit = &es.bucket
	}
	s.started = time.Now()
	closing := p.activate(s)
	s.logStarted()
	var regErr [2]error
	for i := range es.legs {
		l := &es.legs[i]
		l.lastRead = now
		regErr[i] = lp.register(l)
	}
	for i := range es.legs {
		if regErr[i] != nil {
			es.legs[i].stop(regErr[i])
		}
	}
	switch {
	case attachErr != nil: // the player is gone, or broke the protocol before the relay started
		es.legs[0].stop(attachErr)
	case closing:
		es.finish(nil, event{kind: evShutdown})
	}
	// Bytes the handshakes read past their end are the start of each stream.
	for i := range es.legs {
		if l := &es.legs[i]; l.in != nil && l.rd == rdOpen && !l.closed {
			l.relayBuffered()
		}
	}
}

// end releases the buffers and records the session (once both legs are closed).
func (es *evSession) end() {
	for i := range es.legs {
		l := &es.legs[i]
		p := es.lp.p
		p.inPool.put(l.in)
		p.msgPool.put(l.msg)
		p.outPool.put(l.out)
		l.in, l.msg, l.out = nil, nil, nil
	}
	es.flush()
	s := es.s
	s.done(s.endedBy, s.endedOn, s.why)
}

// flush adds the session's counters to the metrics.
func (es *evSession) flush() {
	p := es.lp.p
	if es.c2sMsgs > 0 {
		p.msgsC2S.Add(float64(es.c2sMsgs))
		p.bytesC2S.Add(float64(es.c2sBytes))
		es.c2sMsgs, es.c2sBytes = 0, 0
	}
	if es.s2cMsgs > 0 {
		p.msgsS2C.Add(float64(es.s2cMsgs))
		p.bytesS2C.Add(float64(es.s2cBytes))
		es.s2cMsgs, es.s2cBytes = 0, 0
	}
}

// ping sends both legs a ping (every PingInterval, from the loop's wheel) and publishes the
// counters.
func (es *evSession) ping() {
	for i := range es.legs {
		l := &es.legs[i]
		if l.closed || l.wclosed {
			continue
		}
		if err := l.writeControl(opPing, nil); err != nil {
			es.finish(l, writeEvent(err))
		}
	}
	es.flush()
}

// finish starts the end of the session because of ev on leg from (nil for Shutdown): the other
// leg (both for Shutdown) gets its close frame and CloseGrace to answer it. Only the first call
// does anything; it reports whether it was the first.
func (es *evSession) finish(from *evLeg, ev event) bool {
	if es.ending {
		return false
	}
	es.ending = true
	s := es.s
	var fromSide side
	if from != nil {
		fromSide = from.side
	}
	s.endedBy, s.endedOn, s.why = ev, fromSide, reason(fromSide, ev)
	grace := es.lp.now + int64(es.lp.p.cfg.CloseGrace)
	for i := range es.legs {
		to := &es.legs[i]
		if to == from || to.closed {
			continue
		}
		code, text := closeFor(to.side, ev)
		_ = to.writeClose(code, text)
		to.setDeadline(grace)
		to.resume() // it reads (and drops) until the close frame that answers
	}
	if ev.kind == evWriteFailed {
		from.closeNow() // its write side is broken
	}
	return true
}

// endWith ends the session because of ev (Proxy.Kick, Proxy.Remove, Proxy.Drain), on its loop.
func (es *evSession) endWith(ev event) {
	es.lp.post(func() { es.finish(nil, ev) })
}

// abort drops both connections now.
func (es *evSession) abort() {
	if !es.ending {
		es.ending = true
		es.s.endedBy, es.s.why = event{kind: evShutdown}, "shutdown"
	}
	es.legs[0].closeNow()
	es.legs[1].closeNow()
}

// handle reacts to the epoll events ev.
func (l *evLeg) handle(ev uint32) {
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && l.backlogged() {
		l.flush()
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 && !l.closed {
		// With the peer's close in the same report, a short read does not mean the end: the
		// end of the stream is only seen by the read after the data.
		l.onReadable(ev&(unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0)
	}
}

func (l *evLeg) backlogged() bool { return l.outW > l.outR }

// resume reads a paused leg again, once the current event is handled.
func (l *evLeg) resume() {
	if l.paused {
		l.paused = false
		l.es.lp.pending = append(l.es.lp.pending, l)
	}
}

// onReadable reads the socket until it is empty, relaying every whole frame. A read that does
// not fill the buffer empties the socket of data, so it is the last (epoll reports any byte that
// arrives after it) — unless untilEnd: the peer closed its side (or may have: a leg resumed
// after a pause may have missed the report), and the data and the close can have arrived
// before the read, in one report. A read returns the data and only the next one the end of the
// stream, so then it reads until EAGAIN or the end.
func (l *evLeg) onReadable(untilEnd bool) {
	lp := l.es.lp
	for {
		switch {
		case l.closed || l.rd == rdStopped:
			return
		case l.rd == rdLinger:
			l.discard()
			return
		case !l.es.ending && l.peer.backlogged():
			l.paused = true
			return
		}
		b, r, w := lp.buf, 0, 0
		if l.in != nil {
			b, r, w = l.in.b, l.r, l.w
		}
		room := len(b) - w
		n, err := readFD(l.fd, b[w:])
		switch {
		case err == unix.EAGAIN:
			return
		case err != nil:
			l.stop(opError("read", err))
			return
		case n == 0:
			l.stop(io.EOF)
			return
		}
		w += n
		r, err = l.consume(b, r, w)
		if err != nil {
			l.stop(err)
			return
		}
		if l.closed || l.rd != rdOpen {
			return
		}
		l.keep(b, r, w)
		if n < room && !untilEnd {
			return
		}
	}
}

// relayBuffered relays the bytes already in l.in (those the handshake read past its end).
func (l *evLeg) relayBuffered() {
	r, err := l.consume(l.in.b, l.r, l.w)
	if err != nil {
		l.stop(err)
		return
	}
	if !l.closed && l.rd == rdOpen {
		l.keep(l.in.b, r, l.w)
	}
}

// keep carries the partial frame b[r:w] to the next read in l.in (it always fits: a frame that
// does not fit ReadBufferSize is assembled in l.msg as it arrives).
func (l *evLeg) keep(b []byte, r, w int) {
	pool := l.es.lp.p.inPool
	switch {
	case r == w:
		pool.put(l.in)
		l.in, l.r, l.w = nil, 0, 0
	case l.in == nil:
		l.in = pool.get(l.es.lp.p.cfg.ReadBufferSize)
		l.r, l.w = 0, copy(l.in.b, b[r:w])
	default: // b is l.in.b
		l.r, l.w = 0, copy(b, b[r:w])
	}
}

// discard reads and drops what a lingering leg's peer still sends, closing at its end.
func (l *evLeg) discard() {
	for {
		n, err := readFD(l.fd, l.es.lp.buf)
		if err == unix.EAGAIN {
			return
		}
		if err != nil || n == 0 {
			l.closeNow()
			return
		}
	}
}

// consume relays every whole frame in b[r:w] and returns where the first incomplete one
// starts. A single-frame message that fits ReadBufferSize is unmasked, checked, re-framed in
// the room of its own header and written from b; larger or fragmented messages are assembled in
// l.msg as their bytes arrive. Pings are answered, pongs skipped; a close frame comes back as a
// *closeReceived error, a violation as a *frameError.
func (l *evLeg) consume(b []byte, r, w int) (int, error) {
	r, err := l.consumeFrames(b, r, w)
	l.es.lp.flushOut()
	return r, err
}

// consumeFrames is consume without the final write of what it relayed (see loop.out).
func (l *evLeg) consumeFrames(b []byte, r, w int) (int, error) {
	p := l.es.lp.p
	for r < w {
		if l.fleft > 0 { // the payload of a large frame
			k := min(l.fleft, w-r)
			dst := l.msg.b[msgHeadroom+l.msgLen : msgHeadroom+l.msgLen+k]
			copy(dst, b[r:r+k])
			if l.fh.masked {
				maskBytesAt(dst, l.fh.key, l.fpos)
			}
			r += k
			l.fpos += k
			l.msgLen += k
			l.fleft -= k
			if err := l.ps.data(dst); err != nil {
				return r, err
			}
			if l.fleft == 0 {
				if err := l.endFrame(); err != nil {
					return r, err
				}
			}
			continue
		}
		h, need, err := parseHeader(b[r:w], l.side)
		if err != nil {
			return r, err
		}
		if need > 0 {
			return r, nil
		}
		total := h.hlen + int(h.plen)
		if h.op >= opClose {
			if w-r < total {
				return r, nil
			}
			if err := l.admit(h); err != nil {
				return r, err
			}
			payload := b[r+h.hlen : r+total]
			r += total
			if h.masked {
				maskBytes(payload, h.key)
			}
			switch h.op {
			case opPing:
				_ = l.writeControl(opPong, payload) // a failed pong shows up as a timeout
			case opClose:
				return r, parseClose(payload)
			}
			continue
		}
		if err := l.ps.check(h); err != nil {
			return r, err
		}
		if h.op != opContinuation {
			if h.fin && total <= p.cfg.ReadBufferSize {
				// The common case: a whole message in one frame that fits the input buffer.
				if w-r < total {
					return r, nil
				}
				if err := l.admit(h); err != nil {
					return r, err
				}
				off := r + h.hlen
				r += total
				if h.masked {
					maskBytes(b[off:r], h.key)
				}
				if err := l.ps.single(h, b[off:r]); err != nil {
					return r, err
				}
				l.forward(h.op, b[:r], off, true)
				continue
			}
			l.msgLen = 0
		}
		if err := l.admit(h); err != nil {
			return r, err
		}
		l.ps.begin(h)
		need = msgHeadroom + l.msgLen + int(h.plen)
		if l.msg == nil || len(l.msg.b) < need {
			nb := p.msgPool.get(need)
			if l.msg != nil {
				copy(nb.b, l.msg.b[:msgHeadroom+l.msgLen])
				p.msgPool.put(l.msg)
			}
			l.msg = nb
		}
		l.fh, l.fleft, l.fpos = h, int(h.plen), 0
		r += h.hlen
		if l.fleft == 0 {
			if err := l.endFrame(); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// endFrame ends a data frame assembled in l.msg; when it was the message's last, it relays the
// message and frees the buffer.
func (l *evLeg) endFrame() error {
	op, done, err := l.ps.end()
	if err != nil || !done {
		return err
	}
	l.es.lp.flushOut() // what came before it, first
	l.forward(op, l.msg.b[:msgHeadroom+l.msgLen], msgHeadroom, false)
	l.es.lp.p.msgPool.put(l.msg)
	l.msg, l.msgLen = nil, 0
	return nil
}

// admit accounts for a frame about to be consumed: it is the leg's sign of life, and spends a
// token of the player's rate limit (close frames are free).
func (l *evLeg) admit(h frameHeader) error {
	now := l.es.lp.now
	l.lastRead = now
	if l.limit != nil && h.op != opClose && !l.limit.take(now) {
		return errFlood
	}
	return nil
}

// forward writes the message data[off:] to the peer, unless the session is ending. Its frame
// header is written in place, in the room the message's own header left (data[:off]). With
// coalesce, data is the read buffer the frame was read from, and the write may wait in the
// loop's pending output (loop.out) to go out with the next frames of the same read: the caller
// then flushes it before the buffer is read into again.
func (l *evLeg) forward(op byte, data []byte, off int, coalesce bool) {
	es := l.es
	if es.ending {
		return // the peer is closing: drop, and keep reading until this leg's close
	}
	dst := l.peer
	n := len(data) - off
	masked := dst.side == sideServer
	start := off - headerLen(n, masked)
	if masked {
		key := maskKey()
		putHeader(data[start:off], op, n, &key)
		maskBytes(data[off:], key)
	} else {
		putHeader(data[start:off], op, n, nil)
	}
	if l.side == sideClient {
		es.c2sMsgs++
		es.c2sBytes += uint64(n)
	} else {
		es.s2cMsgs++
		es.s2cBytes += uint64(n)
	}
	lp := es.lp
	if coalesce {
		if o := &lp.out; o.to == dst && o.w == start && &o.buf[0] == &data[0] {
			o.w = len(data) // the frame right after the pending ones: one write for all
			return
		}
		lp.flushOut()
		lp.out = pendingOut{to: dst, buf: data, r: start, w: len(data)}
		return
	}
	if err := dst.write(data[start:]); err != nil {
		es.finish(dst, writeEvent(err))
	}
}

// maskKey returns a frame's mask key. It only has to be unpredictable to the player whose bytes
// it covers; the runtime's per-thread ChaCha8 generator, seeded from the OS, is.
func maskKey() [4]byte {
	k := rand.Uint32()
	return [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
}

// maskBytesAt masks b, which starts at position pos of a payload masked with key.
func maskBytesAt(b []byte, key [4]byte, pos int) {
	if s := pos & 3; s != 0 {
		key = [4]byte{key[s], key[(s+1)&3], key[(s+2)&3], key[(s+3)&3]}
	}
	maskBytes(b, key)
}

// write sends b: directly when nothing is waiting, the rest into the backlog. After a close
// frame or a failed write it returns errWriteClosed.
func (l *evLeg) write(b []byte) error {
	if l.wclosed || l.closed {
		return errWriteClosed
	}
	if !l.backlogged() {
		n, err := writeFD(l.fd, b)
		switch {
		case err == unix.EAGAIN:
			n = 0
		case err != nil:
			l.wclosed = true
			return opError("write", err)
		}
		if n == len(b) {
			return nil
		}
		b = b[n:]
	}
	return l.queue(b)
}

// queue appends b to the write backlog. The backlog holds at most what one read relayed, or
// one assembled message, plus control frames: the peer is not read while it is not empty. One
// that outgrows that bound belongs to a peer that sends pings and reads nothing, and fails the
// write as a slow reader would.
func (l *evLeg) queue(b []byte) error {
	p := l.es.lp.p
	if !l.backlogged() {
		l.outR, l.outW = 0, 0
		l.outSince = l.es.lp.now
	}
	need := l.outW - l.outR + len(b)
	if need > p.maxBacklog {
		l.wclosed = true
		return errWriteTimeout
	}
	switch {
	case l.out == nil:
		l.out = p.outPool.get(need)
	case len(l.out.b)-l.outW < len(b):
		nb := l.out
		if len(nb.b) < need {
			nb = p.outPool.get(need)
		}
		n := copy(nb.b, l.out.b[l.outR:l.outW])
		if nb != l.out {
			p.outPool.put(l.out)
		}
		l.out, l.outR, l.outW = nb, 0, n
	}
	l.outW += copy(l.out.b[l.outW:], b)
	return nil
}

// flush writes the backlog when the socket is writable again, then does what waited for it:
// the leg's close, or reading its peer again.
func (l *evLeg) flush() {
	for l.backlogged() {
		n, err := writeFD(l.fd, l.out.b[l.outR:l.outW])
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			l.writeFailed(opError("write", err))
			return
		}
		l.outR += n
	}
	l.es.lp.p.outPool.put(l.out)
	l.out, l.outR, l.outW, l.outSince = nil, 0, 0, 0
	switch l.after {
	case afterClose:
		l.closeNow()
		return
	case afterLinger:
		l.linger()
	}
	l.peer.resume()
}

// writeFailed ends the session after a write to l failed or timed out.
func (l *evLeg) writeFailed(err error) {
	l.wclosed = true
	if l.out != nil {
		l.es.lp.p.outPool.put(l.out)
		l.out, l.outR, l.outW = nil, 0, 0
	}
	if !l.es.finish(l, writeEvent(err)) {
		l.closeNow()
	}
	l.peer.resume()
}

// writeControl sends a control frame. After a close frame nothing more is written.
func (l *evLeg) writeControl(op byte, payload []byte) error {
	if l.wclosed || l.closed {
		return errWriteClosed
	}
	var buf [maxHeaderSize + maxControlPayload]byte
	n := len(payload)
	var b []byte
	if l.side == sideServer {
		key := maskKey()
		b = buf[:6+n]
		putHeader(b, op, n, &key)
		copy(b[6:], payload)
		maskBytes(b[6:], key)
	} else {
		b = buf[:2+n]
		putHeader(b, op, n, nil)
		copy(b[2:], payload)
	}
	err := l.write(b)
	if op == opClose {
		l.wclosed = true
	}
	return err
}

// writeClose sends a close frame (an empty one for closeNoStatus).
func (l *evLeg) writeClose(code int, reason string) error {
	var buf [maxControlPayload]byte
	return l.writeControl(opClose, closePayload(&buf, code, reason))
}

// stop ends l's reading after it stopped with err (as session.stop does for the goroutine
// relay).
func (l *evLeg) stop(err error) {
	if l.rd != rdOpen || l.closed {
		return
	}
	l.rd = rdStopped
	es := l.es
	ev := readEvent(err)
	first := es.finish(l, ev)
	switch ev.kind {
	case evClosed:
		if first {
			_ = l.writeClose(ev.code, "") // echo the code
		}
		// The close handshake is complete. On the player's leg Usher is the server, which
		// closes the TCP connection first (RFC 6455 section 7.1.1); on the game server's leg it
		// waits for the server to do so.
		if l.side == sideClient {
			l.closeAfterFlush(afterClose)
		} else {
			l.closeAfterFlush(afterLinger)
		}
	case evTooBig, evProtocol, evBadData, evFlood:
		_ = l.writeClose(ev.code, ev.text)
		l.closeAfterFlush(afterLinger)
	default:
		l.closeNow()
	}
}

// closeAfterFlush closes or lingers (what) once the backlog is written, within the close
// timeout.
func (l *evLeg) closeAfterFlush(what uint8) {
	if l.closed {
		return
	}
	if l.backlogged() {
		l.after = what
		l.setDeadline(l.es.lp.now + int64(l.es.s.closeTimeout()))
		return
	}
	if what == afterClose {
		l.closeNow()
		return
	}
	l.linger()
}

// linger ends a leg whose close frame is out: it shuts the write side, so the peer reads the
// close frame and then the end of the stream, and discards what the peer still sends until it
// closes its side too, for at most CloseGrace. Closing with unread bytes would reset the
// connection, and a reset can destroy the close frame before the peer has read it.
func (l *evLeg) linger() {
	l.after = afterNone
	l.rd = rdLinger
	_ = unix.Shutdown(l.fd, unix.SHUT_WR)
	l.setDeadline(l.es.lp.now + int64(l.es.lp.p.cfg.CloseGrace))
	l.es.lp.p.inPool.put(l.in)
	l.in, l.r, l.w = nil, 0, 0
	l.discard() // bytes that are already there raise no new event
}

// setDeadline makes the loop close l at t, or earlier if it already would.
func (l *evLeg) setDeadline(t int64) {
	if l.deadline == 0 || t < l.deadline {
		l.deadline = t
	}
}

// closeNow closes the connection. The session ends when both legs are closed.
func (l *evLeg) closeNow() {
	if l.closed {
		return
	}
	lp := l.es.lp
	l.closed, l.wclosed, l.paused = true, true, false
	if l.fd < len(lp.legs) && lp.legs[l.fd] == l {
		lp.legs[l.fd] = nil
		// Closing alone would not take the socket out of the epoll instance while a process
		// being forked (a game server starting) still holds a copy of the descriptor.
		_ = unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
	}
	_ = unix.Close(l.fd)
	l.fd = -1
	if l.peer.closed {
		lp.ended = append(lp.ended, l.es)
	} else {
		l.peer.resume()
	}
}

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: err}
}

// readFD and writeFD are read(2) and write(2) on a non-blocking socket, retried on EINTR. They
// never block, so they skip the runtime's syscall bookkeeping (entersyscall/exitsyscall, which
// hands the P over in case the call blocks): one loop makes hundreds of thousands a second.
func readFD(fd int, b []byte) (int, error) { return rawIO(unix.SYS_READ, fd, b) }

func writeFD(fd int, b []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, b) }

func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}
