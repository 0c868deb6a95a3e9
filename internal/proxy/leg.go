package proxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"
)

// side tells which end of a session a leg is.
type side uint8

const (
	// sideClient is the player's connection: Usher is the WebSocket server, so frames read
	// must be masked and frames written are not.
	sideClient side = iota
	// sideServer is the game server's connection: Usher is the WebSocket client, so frames read
	// must not be masked and frames written are.
	sideServer
)

func (s side) String() string {
	if s == sideClient {
		return "client"
	}
	return "server"
}

// errWriteClosed is returned for writes after a close frame was sent or a write failed.
var errWriteClosed = errors.New("websocket: write side closed")

// leg is one WebSocket connection of a session. Its reading half belongs to one goroutine;
// writes (data from the other leg's reader, pongs, pings and close frames) are serialised by wmu,
// one Write call per frame.
type leg struct {
	p    *Proxy
	side side
	nc   net.Conn        // the TCP connection itself
	rc   syscall.RawConn // waits for readability without a buffer; nil if the conn has none

	// Reading state, owned by the reading goroutine.
	in       *buffer // pooled input buffer; nil while idle
	r, w     int     // unread bytes are in.b[r:w]
	msg      *buffer // pooled buffer assembling a fragmented or large message
	msgLen   int     // payload bytes assembled so far (after msgHeadroom)
	ps       parser  // the frames' message state (the one RFC 6455 parser)
	limit    *bucket // frames the peer may send (player leg only)
	extended int64   // coarse time the read deadline was last moved
	readFn   func(fd uintptr) bool
	rn       int   // result of readFn
	rerr     error // result of readFn

	wmu       sync.Mutex
	wclosed   bool  // a close frame was sent, or a write failed
	wdeadline int64 // write deadline set on nc (coarse ns)
	ctl       [maxHeaderSize + maxControlPayload]byte
}

func (l *leg) init(p *Proxy, s side, nc net.Conn, canWait bool) {
	l.p, l.side, l.nc = p, s, nc
	l.ps = parser{max: p.cfg.MaxMessageBytes}
	if sc, ok := nc.(syscall.Conn); ok && canWait && readIdleSupported {
		if rc, err := sc.SyscallConn(); err == nil {
			l.rc = rc
			l.readFn = l.readIdleFn
		}
	}
}

// start arms the read deadline.
func (l *leg) start(now int64) {
	l.extended = now
	_ = l.nc.SetReadDeadline(l.p.clock.at(now + l.p.idle))
}

// touch moves the read deadline after a frame arrived (at most once per slack).
func (l *leg) touch(now int64) {
	if now-l.extended < l.p.slack {
		return
	}
	l.extended = now
	_ = l.nc.SetReadDeadline(l.p.clock.at(now + l.p.idle))
}

// fill reads more bytes into l.in, making room for need unread bytes from l.r. With nothing
// buffered it gives the input buffer back and waits for data without one.
func (l *leg) fill(need int) error {
	if l.r == l.w {
		l.r, l.w = 0, 0
		if l.rc != nil {
			if l.in != nil {
				l.p.inPool.put(l.in)
				l.in = nil
			}
			return l.readIdle()
		}
	}
	if l.in == nil {
		l.in = l.p.inPool.get(l.p.cfg.ReadBufferSize)
	}
	if len(l.in.b)-l.r < need {
		l.w = copy(l.in.b, l.in.b[l.r:l.w])
		l.r = 0
	}
	n, err := l.nc.Read(l.in.b[l.w:])
	l.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readIdle waits until the socket is readable, then reads into a fresh input buffer.
func (l *leg) readIdle() error {
	if err := l.rc.Read(l.readFn); err != nil {
		return err
	}
	if l.rerr != nil {
		err := l.rerr
		l.rerr = nil
		return &net.OpError{Op: "read", Net: "tcp", Source: l.nc.LocalAddr(), Addr: l.nc.RemoteAddr(), Err: err}
	}
	if l.rn <= 0 {
		return io.EOF
	}
	l.w = l.rn
	return nil
}

// ensure makes n unread bytes available in l.in (n ≤ ReadBufferSize).
func (l *leg) ensure(n int) error {
	for l.w-l.r < n {
		if err := l.fill(n); err != nil {
			return err
		}
	}
	return nil
}

// readHeader parses and validates the next frame header without consuming it.
func (l *leg) readHeader() (h frameHeader, err error) {
	need := 2
	for {
		if err = l.ensure(need); err != nil {
			return h, err
		}
		if h, need, err = parseHeader(l.in.b[l.r:l.w], l.side); err != nil || need == 0 {
			return h, err
		}
	}
}

// admit accounts for a frame about to be consumed: it moves the read deadline and spends a
// token of the player's rate limit (close frames are free).
func (l *leg) admit(h frameHeader) error {
	now := l.p.clock.Now()
	l.touch(now)
	if l.limit != nil && h.op != opClose && !l.limit.take(now) {
		return errFlood
	}
	return nil
}

// takeControl consumes the buffered control frame h: it answers a ping, skips a pong, and
// returns a close frame as a *closeReceived (or a violation).
func (l *leg) takeControl(h frameHeader) error {
	start := l.r + h.hlen
	payload := l.in.b[start : start+int(h.plen)]
	l.r = start + int(h.plen)
	if h.masked {
		maskBytes(payload, h.key)
	}
	switch h.op {
	case opPing:
		// A failed pong shows up on the next write or as a read timeout.
		_ = l.writeControl(opPong, payload, l.p.cfg.WriteTimeout)
	case opClose:
		return parseClose(payload)
	}
	return nil
}

// takeData consumes the buffered single-frame message h (the whole frame is in l.in): it is
// unmasked in place and its header's room takes the outgoing header. The payload is data[off:].
func (l *leg) takeData(h frameHeader) (data []byte, off int, err error) {
	frameLen := h.hlen + int(h.plen)
	off = l.r + h.hlen
	data = l.in.b[:l.r+frameLen]
	l.r += frameLen
	if h.masked {
		maskBytes(data[off:], h.key)
	}
	if err := l.ps.single(h, data[off:]); err != nil {
		return nil, 0, err
	}
	return data, off, nil
}

// fitsInPlace reports whether data frame h (which passed the parser's check) is a whole message
// that fits the input buffer, so it is relayed in place.
func (l *leg) fitsInPlace(h frameHeader) bool {
	return h.fin && h.op != opContinuation && h.hlen+int(h.plen) <= len(l.in.b)
}

// readMessage returns the next data message, answering pings and skipping pongs on the way.
// The payload is data[off:]; data[:off] is free room for the outgoing header. data stays valid
// until the next call. A close frame from the peer comes back as a *closeReceived error, a
// violation as a *frameError, anything else is a network error.
func (l *leg) readMessage() (op byte, data []byte, off int, err error) {
	if l.msg != nil {
		l.p.msgPool.put(l.msg)
		l.msg = nil
	}
	for {
		h, err := l.readHeader()
		if err != nil {
			return 0, nil, 0, err
		}
		if err := l.admit(h); err != nil {
			return 0, nil, 0, err
		}
		if h.op >= opClose {
			if err := l.ensure(h.hlen + int(h.plen)); err != nil {
				return 0, nil, 0, err
			}
			if err := l.takeControl(h); err != nil {
				return 0, nil, 0, err
			}
			continue
		}

		if err := l.ps.check(h); err != nil {
			return 0, nil, 0, err
		}
		if l.fitsInPlace(h) {
			// The common case: the whole message is one frame that fits the input buffer.
			if err := l.ensure(h.hlen + int(h.plen)); err != nil {
				return 0, nil, 0, err
			}
			data, off, err := l.takeData(h)
			return h.op, data, off, err
		}
		if h.op != opContinuation {
			l.msgLen = 0
		}
		l.ps.begin(h)
		if err := l.appendFrame(h); err != nil {
			return 0, nil, 0, err
		}
		op, done, err := l.ps.end()
		if err != nil {
			return 0, nil, 0, err
		}
		if !done {
			continue
		}
		data = l.msg.b[:msgHeadroom+l.msgLen]
		return op, data, msgHeadroom, nil
	}
}

// appendFrame consumes a data frame whose header is at l.r (begun in the parser), appending its
// unmasked payload to l.msg and giving it to the parser. Bytes not yet buffered are read straight into l.msg.
func (l *leg) appendFrame(h frameHeader) error {
	n := int(h.plen)
	need := msgHeadroom + l.msgLen + n
	if l.msg == nil || len(l.msg.b) < need {
		nb := l.p.msgPool.get(need)
		if l.msg != nil {
			copy(nb.b, l.msg.b[:msgHeadroom+l.msgLen])
			l.p.msgPool.put(l.msg)
		}
		l.msg = nb
	}
	dst := l.msg.b[msgHeadroom+l.msgLen : need]
	l.r += h.hlen
	k := copy(dst, l.in.b[l.r:l.w])
	l.r += k
	for k < n {
		m, err := l.nc.Read(dst[k:])
		k += m
		if err != nil && k < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	if h.masked {
		maskBytes(dst, h.key)
	}
	l.msgLen += n
	return l.ps.data(dst)
}

// writeMessage sends data[off:] as one final frame. data[:off] must have room for the header:
// readMessage guarantees it.
func (l *leg) writeMessage(op byte, data []byte, off int, now int64) error {
	n := len(data) - off
	masked := l.side == sideServer
	start := off - headerLen(n, masked)
	if masked {
		var key [4]byte
		// The mask only has to be unpredictable to the player whose bytes it covers; the
		// runtime's per-thread ChaCha8 generator, seeded from the OS, is.
		k := rand.Uint32()
		key[0], key[1], key[2], key[3] = byte(k), byte(k>>8), byte(k>>16), byte(k>>24)
		putHeader(data[start:off], op, n, &key)
		maskBytes(data[off:], key)
	} else {
		putHeader(data[start:off], op, n, nil)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.wclosed {
		return errWriteClosed
	}
	timeout := int64(l.p.cfg.WriteTimeout)
	if d := l.wdeadline - now; d < timeout-l.p.slack || d > timeout {
		l.wdeadline = now + timeout
		if err := l.nc.SetWriteDeadline(l.p.clock.at(l.wdeadline)); err != nil {
			l.wclosed = true
			return err
		}
	}
	if _, err := l.nc.Write(data[start:]); err != nil {
		l.wclosed = true // a partial frame may be on the wire
		return err
	}
	return nil
}

// writeControl sends a control frame with the given timeout. After a close frame nothing more
// is written.
func (l *leg) writeControl(op byte, payload []byte, timeout time.Duration) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.wclosed {
		return errWriteClosed
	}
	n := len(payload)
	b := l.ctl[:headerLen(n, l.side == sideServer)+n]
	if l.side == sideServer {
		var key [4]byte
		k := rand.Uint32()
		key[0], key[1], key[2], key[3] = byte(k), byte(k>>8), byte(k>>16), byte(k>>24)
		putHeader(b, op, n, &key)
		copy(b[6:], payload)
		maskBytes(b[6:], key)
	} else {
		putHeader(b, op, n, nil)
		copy(b[2:], payload)
	}
	now := l.p.clock.Now()
	l.wdeadline = now + int64(timeout)
	if err := l.nc.SetWriteDeadline(l.p.clock.at(l.wdeadline)); err != nil {
		l.wclosed = true
		return err
	}
	_, err := l.nc.Write(b)
	if err != nil || op == opClose {
		l.wclosed = true
	}
	return err
}

// writeClose sends a close frame (an empty one for closeNoStatus).
func (l *leg) writeClose(code int, reason string, timeout time.Duration) error {
	var buf [maxControlPayload]byte
	return l.writeControl(opClose, closePayload(&buf, code, reason), timeout)
}

// closeNow closes the TCP connection.
func (l *leg) closeNow() { _ = l.nc.Close() }

// linger ends a leg whose close frame has been sent: it half-closes the connection, so the
// peer reads the close frame and then the end of the stream, and discards what the peer still
// sends until it closes its side too, for at most grace. Closing with unread bytes would reset
// the connection, and a reset can destroy the close frame before the peer has read it.
func (l *leg) linger(grace time.Duration) {
	if cw, ok := l.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = l.nc.SetReadDeadline(time.Now().Add(grace))
	buf := l.in
	if buf == nil {
		buf = l.p.inPool.get(l.p.cfg.ReadBufferSize)
	}
	l.in, l.r, l.w = nil, 0, 0
	for {
		if _, err := l.nc.Read(buf.b); err != nil {
			break
		}
	}
	l.p.inPool.put(buf)
	l.closeNow()
}

// releaseBuffers gives pooled buffers back; the reading goroutine must be done.
func (l *leg) releaseBuffers() {
	l.p.inPool.put(l.in)
	l.p.msgPool.put(l.msg)
	l.in, l.msg, l.r, l.w = nil, nil, 0, 0
}
