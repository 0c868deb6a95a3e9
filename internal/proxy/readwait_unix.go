//go:build unix

package proxy

import (
	"io"
	"net"
	"syscall"
)

// readIdleSupported: on Unix a leg waits for readability through syscall.RawConn and only then
// takes a buffer, so idle connections hold none.
const readIdleSupported = true

// readIdleFn is the syscall.RawConn.Read callback of an idle leg. It takes an input buffer,
// reads, and on EAGAIN gives the buffer back and asks the runtime to wait for readability.
func (l *leg) readIdleFn(fd uintptr) bool {
	if l.in == nil {
		l.in = l.p.inPool.get(l.p.cfg.ReadBufferSize)
	}
	for {
		n, err := syscall.Read(int(fd), l.in.b)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			l.p.inPool.put(l.in)
			l.in = nil
			return false
		}
		l.rn, l.rerr = n, err
		return true
	}
}

// step is the syscall.RawConn.Read callback of a leg's fast path (see relayer). Each call reads
// the socket, relays every whole message the buffer then holds, and reads again until the
// socket is empty (EAGAIN), when it asks the runtime to wait for readability. It does not stop
// at a short read: the runtime's poller merges the reports of data and of the peer's close that
// arrive before the goroutine runs, and a read returns the data and only the next one the end
// of the stream, so a wait after a short read could wait for a report already consumed (a
// vanished player went unnoticed until the read timeout). A message the fast path does not take
// — fragmented, or larger than the input buffer — ends the call with x.err nil; the caller
// reads it with readMessage.
func (x *relayer) step(fd uintptr) bool {
	l := x.src
	if l.msg != nil { // the previous message came through readMessage and has been relayed
		l.p.msgPool.put(l.msg)
		l.msg = nil
	}
	need := 0 // bytes the frame at l.r needs in the buffer; 0: parse it
	for {
		for need == 0 && l.r < l.w {
			h, n, err := parseHeader(l.in.b[l.r:l.w], l.side)
			switch {
			case err != nil:
				x.err = err
				return true
			case n > 0:
				need = n
				continue
			}
			isData := h.op < opClose
			if isData {
				if err := l.ps.check(h); err != nil {
					x.err = err
					return true
				}
				if !l.fitsInPlace(h) {
					return true // the blocking reader takes it
				}
			}
			if total := h.hlen + int(h.plen); l.w-l.r < total {
				need = total
				continue
			}
			if err := l.admit(h); err != nil {
				x.err = err
				return true
			}
			if !isData {
				if err := l.takeControl(h); err != nil {
					x.err = err
					return true
				}
				continue
			}
			data, off, err := l.takeData(h)
			if err != nil {
				x.err = err
				return true
			}
			x.s.forward(x.dst, h.op, data, off, x.msgs, x.bytes)
		}
		if l.r == l.w {
			l.r, l.w = 0, 0
		}
		if l.in == nil {
			l.in = l.p.inPool.get(l.p.cfg.ReadBufferSize)
		}
		if need > len(l.in.b)-l.r { // make room for the rest of the frame
			l.w = copy(l.in.b, l.in.b[l.r:l.w])
			l.r = 0
		}
		n, err := syscall.Read(int(fd), l.in.b[l.w:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if l.r == l.w {
				l.p.inPool.put(l.in)
				l.in = nil
			}
			return false
		case err != nil:
			x.err = &net.OpError{Op: "read", Net: "tcp", Source: l.nc.LocalAddr(), Addr: l.nc.RemoteAddr(), Err: err}
			return true
		case n == 0:
			x.err = io.EOF
			return true
		}
		l.w += n
		need = 0
	}
}
