//go:build unix

package proxy

import "syscall"

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
