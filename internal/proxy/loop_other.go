//go:build !linux

package proxy

// eventLoopSupported: RelayEventLoop needs epoll (Linux).
const eventLoopSupported = false

// Without epoll there are no event loops; these keep the rest of the package engine-agnostic.
type (
	loopSet   struct{}
	loop      struct{}
	evSession struct{}
)

func (*loopSet) acquire(*Proxy)       {}
func (*loopSet) release()             {}
func (*loopSet) each(func(*loop))     {}
func (*loop) shutdownAll()            {}
func (*loop) abortAll()               {}
func (*session) runOnLoop(error) bool { return false }
func (*evSession) endWith(event)      {}

const loopBufferSize = 16 << 10

// DefaultLoops is the number of event loops when Config.Loops is 0 (none without epoll).
func DefaultLoops() int { return 0 }
