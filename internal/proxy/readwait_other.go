//go:build !unix

package proxy

// readIdleSupported: elsewhere a leg blocks in Read holding its input buffer.
const readIdleSupported = false

func (l *leg) readIdleFn(uintptr) bool { return true }

// step is never called: legs have no RawConn here (readIdleSupported is false).
func (x *relayer) step(uintptr) bool { return true }
