package proxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// eventLoopSupported: RelayEventLoop is available (epoll).
const eventLoopSupported = true

// DefaultLoops is the number of event loops when Config.Loops is 0: one fewer than GOMAXPROCS,
// at least one. The spare P matters: while every P's thread is blocked in epoll_wait, the
// runtime's sysmon takes the Ps back after 20 µs and wakes other threads to run them, and that
// hand-off churn cost a quarter of the relay's CPU in measurements (see docs/performance.md);
// with one P idle the runtime leaves a blocked loop's P alone, and the spare P runs the API,
// the fleet and the garbage collector.
func DefaultLoops() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

// loopSet runs the event loops (Config.Loops) while sessions or upgrades exist: the first
// reserve starts them, the last release stops them, so an idle proxy runs no goroutine.
type loopSet struct {
	mu    sync.Mutex
	users int
	lps   []*loop
	err   error // why the loops could not start; sessions then run on goroutines
}

// acquire counts a user, starting the loops for the first one.
func (ls *loopSet) acquire(p *Proxy) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.users++
	if ls.users > 1 {
		return
	}
	n := p.cfg.Loops
	if n == 0 {
		n = DefaultLoops()
	}
	for range n {
		lp, err := newLoop(p)
		if err != nil {
			for _, lp := range ls.lps {
				lp.post(lp.stop)
			}
			ls.lps = nil
			if ls.err == nil {
				p.log.Warn("relay event loops unavailable; sessions run on goroutines", "err", err)
			}
			ls.err = err
			return
		}
		ls.lps = append(ls.lps, lp)
	}
	ls.err = nil
	// With as many loops as Ps (GOMAXPROCS=1), a loop holding its P would leave none to the
	// API: then loops always wait the usual way.
	raw := runtime.GOMAXPROCS(0) > n
	for _, lp := range ls.lps {
		lp.rawWait = raw
		go lp.run()
	}
}

// release forgets a user, stopping the loops after the last one.
func (ls *loopSet) release() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.users--
	if ls.users > 0 {
		return
	}
	for _, lp := range ls.lps {
		lp.post(lp.stop)
	}
	ls.lps = nil
}

// pick returns the loop with the fewest sessions, counting the new one, or nil when there is
// no loop.
func (ls *loopSet) pick() *loop {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var best *loop
	for _, lp := range ls.lps {
		if best == nil || lp.load.Load() < best.load.Load() {
			best = lp
		}
	}
	if best != nil {
		best.load.Add(1)
	}
	return best
}

// each posts fn to every loop.
func (ls *loopSet) each(fn func(*loop)) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, lp := range ls.lps {
		lp.post(func() { fn(lp) })
	}
}

// loop is one event loop: a goroutine that owns an epoll instance and both sockets of every
// session it was given, and does all of their reading, writing, timing and closing itself.
// Nothing of a session is touched by another goroutine once the loop has it, so the relay
// needs no lock and wakes no other goroutine per message. Other goroutines talk to a loop only
// through post.
type loop struct {
	p    *Proxy
	epfd int
	evfd int // eventfd that wakes the loop for posted tasks

	// Owned by the loop's goroutine.
	buf       []byte       // shared read buffer: a leg reads into it unless it holds a partial frame
	legs      []*evLeg     // by file descriptor
	sessions  []*evSession // evSession.idx is the position
	pending   []*evLeg     // legs to read again once the current event is handled
	ended     []*evSession // sessions whose legs are both closed, to be recorded
	now       int64        // clock time of the last wake-up (ns since the proxy's clock base)
	nextSweep int64
	tick      int64
	stopping  bool
	hot       bool // the last wait returned events: wait holding the P (see wait)
	rawWait   bool // a P is left for the rest of the program: a busy loop may hold its own

	// Keepalive pings go round a wheel of PingInterval: each session sits in one slot, at a
	// random phase, and a slot's sessions are pinged when the wheel passes it. Sessions that
	// connected together (a lobby) are so pinged spread over the interval, not in one burst
	// that would hold up the relay.
	wheel     [][]*evSession
	wheelTick int64
	wheelPos  int
	nextWheel int64

	// out is the relayed frames of the read being consumed that wait to be written to the
	// peer together: the frames of one read lie end to end in the read buffer, each re-framed in
	// place, so one write sends them all (a read that took several frames would otherwise cost
	// a write each — about one write in ten in rooms of 4, where a player's roommates' messages
	// often arrive together). flushOut writes it; consume does before it returns.
	out pendingOut

	load atomic.Int32 // sessions given to the loop and not yet ended (for pick)

	mu     sync.Mutex
	tasks  []func()
	woken  bool // an eventfd write is outstanding
	closed bool // epfd and evfd are closed: post drops tasks
}

func newLoop(p *Proxy) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(evfd)
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	slots := max(int(min(p.cfg.PingInterval/wheelResolution, maxWheelSlots)), 1)
	return &loop{
		p:         p,
		epfd:      epfd,
		evfd:      evfd,
		buf:       make([]byte, max(p.cfg.ReadBufferSize, loopBufferSize)),
		tick:      p.slack,
		wheel:     make([][]*evSession, slots),
		wheelTick: int64(p.cfg.PingInterval) / int64(slots), // slots × wheelTick ≤ PingInterval
	}, nil
}

// The ping wheel turns one slot per wheelResolution (or per PingInterval/maxWheelSlots when
// that is longer).
const (
	wheelResolution = 10 * time.Millisecond
	maxWheelSlots   = 2048
)

// loopBufferSize is the least size of a loop's shared read buffer: one read takes several
// frames from a busy socket.
const loopBufferSize = 16 << 10

// pendingOut is bytes buf[r:w] waiting to be written to the leg to (nil: none).
type pendingOut struct {
	to   *evLeg
	buf  []byte
	r, w int
}

// flushOut writes the pending output (see loop.out).
func (lp *loop) flushOut() {
	o := lp.out
	if o.to == nil {
		return
	}
	lp.out = pendingOut{}
	if err := o.to.write(o.buf[o.r:o.w]); err != nil {
		o.to.es.finish(o.to, writeEvent(err))
	}
}

// post runs fn on the loop's goroutine soon. Tasks run in the order they were posted.
func (lp *loop) post(fn func()) {
	lp.mu.Lock()
	if lp.closed {
		lp.mu.Unlock()
		return
	}
	lp.tasks = append(lp.tasks, fn)
	wake := !lp.woken
	lp.woken = true
	if wake {
		one := uint64(1)
		_, _ = unix.Write(lp.evfd, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
	lp.mu.Unlock()
}

// stop makes the loop exit once it has no session left (a task).
func (lp *loop) stop() { lp.stopping = true }

func (lp *loop) run() {
	events := make([]unix.EpollEvent, 128)
	lp.now = lp.p.clock.fresh()
	lp.nextSweep = lp.now + lp.tick
	lp.nextWheel = lp.now + lp.wheelTick
	for !lp.stopping || len(lp.sessions) > 0 {
		wait := int((min(lp.nextSweep, lp.nextWheel) - lp.now + 999_999) / 1_000_000) // ms, rounded up
		n, err := lp.wait(events, max(wait, 0))
		lp.now = lp.p.clock.fresh()
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Only a bug makes epoll_wait fail (EBADF, EFAULT, EINVAL): end every session rather
			// than spin.
			lp.p.log.Error("relay event loop failed", "err", err)
			lp.abortAll()
			lp.reap()
			break
		}
		tasks := false
		for i := range max(n, 0) {
			e := &events[i]
			fd := int(e.Fd)
			if fd == lp.evfd {
				tasks = true
				continue
			}
			if fd < len(lp.legs) {
				if l := lp.legs[fd]; l != nil {
					l.handle(e.Events)
					lp.drainPending()
				}
			}
		}
		if tasks {
			lp.runTasks()
		}
		for turns := 0; lp.now >= lp.nextWheel; turns++ {
			if turns == len(lp.wheel) { // far behind (a stalled machine): ping each once
				lp.nextWheel = lp.now + lp.wheelTick
				break
			}
			lp.turnWheel()
			lp.nextWheel += lp.wheelTick
		}
		if lp.now >= lp.nextSweep {
			lp.sweep()
			lp.nextSweep = lp.now + lp.tick
		}
		lp.reap()
	}
	lp.mu.Lock()
	lp.closed = true
	lp.tasks = nil
	_ = unix.Close(lp.evfd)
	_ = unix.Close(lp.epfd)
	lp.mu.Unlock()
}

// wait is epoll_wait for at most msec milliseconds. A busy loop (its last wait returned
// events) waits with a raw system call, which the Go runtime does not see: the loop keeps its P
// and, when an event comes, runs at once. A blocking system call made the usual way hands the P
// back to the scheduler (entersyscall), sysmon then takes it away when other goroutines want it,
// and the woken loop had to get a P again — from the run queue, behind whatever took it — before
// it could relay anything: a stall every time the API, a timer or the collector was busy on the
// spare P, paid by every session of the loop. A raw wait blocks with the P, so it is bounded
// (hotWait): when no event comes in that time the loop is idle, and it waits the usual way until
// the next event, leaving its P to the rest of the program (handshakes, the API, the fleet). A
// stop-the-world (the collector) still reaches a loop blocked in a raw wait: the runtime signals
// the thread (SIGURG), epoll_wait returns EINTR, and the loop yields at its next function call;
// with asynchronous preemption turned off it yields within hotWait.
func (lp *loop) wait(events []unix.EpollEvent, msec int) (int, error) {
	if lp.hot && lp.rawWait {
		t := min(msec, hotWaitMs)
		n, err := rawEpollWait(lp.epfd, events, t)
		if n != 0 || err != nil || t == msec {
			return n, err
		}
		lp.hot = false
		msec -= t
	}
	n, err := unix.EpollWait(lp.epfd, events, msec)
	lp.hot = n > 0
	return n, err
}

// hotWaitMs is how long a busy loop waits for an event holding its P (see loop.wait).
const hotWaitMs = 1

// rawEpollWait is epoll_pwait(2) (no signal mask: epoll_wait itself is absent on some
// architectures) without the runtime's syscall bookkeeping.
func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// runTasks runs the posted tasks.
func (lp *loop) runTasks() {
	var counter [8]byte
	_, _ = unix.Read(lp.evfd, counter[:])
	lp.mu.Lock()
	tasks := lp.tasks
	lp.tasks = nil
	lp.woken = false
	lp.mu.Unlock()
	for _, fn := range tasks {
		fn()
		lp.drainPending()
	}
}

// drainPending reads the legs that were resumed while another leg was being handled.
func (lp *loop) drainPending() {
	for len(lp.pending) > 0 {
		l := lp.pending[len(lp.pending)-1]
		lp.pending = lp.pending[:len(lp.pending)-1]
		if !l.closed {
			l.onReadable(true) // its peer's close may have been reported while it was paused
		}
	}
}

// reap records the sessions that ended.
func (lp *loop) reap() {
	for len(lp.ended) > 0 {
		es := lp.ended[len(lp.ended)-1]
		lp.ended = lp.ended[:len(lp.ended)-1]
		last := len(lp.sessions) - 1
		lp.sessions[es.idx] = lp.sessions[last]
		lp.sessions[es.idx].idx = es.idx
		lp.sessions[last] = nil
		lp.sessions = lp.sessions[:last]
		lp.load.Add(-1)
		lp.leaveWheel(es)
		es.end()
	}
}

// joinWheel puts es in a random slot of the ping wheel: its first ping comes within
// PingInterval, the next ones every PingInterval.
func (lp *loop) joinWheel(es *evSession) {
	es.slot = rand.IntN(len(lp.wheel))
	es.slotIdx = len(lp.wheel[es.slot])
	lp.wheel[es.slot] = append(lp.wheel[es.slot], es)
}

func (lp *loop) leaveWheel(es *evSession) {
	slot := lp.wheel[es.slot]
	last := len(slot) - 1
	slot[es.slotIdx] = slot[last]
	slot[es.slotIdx].slotIdx = es.slotIdx
	slot[last] = nil
	lp.wheel[es.slot] = slot[:last]
}

// turnWheel pings the sessions of the current slot and moves on.
func (lp *loop) turnWheel() {
	for _, es := range lp.wheel[lp.wheelPos] {
		if !es.ending {
			es.ping()
		}
	}
	lp.drainPending()
	lp.wheelPos = (lp.wheelPos + 1) % len(lp.wheel)
}

// register adds l's socket to the epoll instance: readable, writable and peer-closed events,
// edge-triggered (each is reported once per change).
func (lp *loop) register(l *evLeg) error {
	for l.fd >= len(lp.legs) {
		lp.legs = append(lp.legs, make([]*evLeg, max(len(lp.legs), 64))...)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(l.fd)}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, l.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	lp.legs[l.fd] = l
	return nil
}

// sweep runs the timers of every session: close deadlines, write timeouts (a peer that does not
// read) and read timeouts (a peer that sends nothing, not even a pong). It runs every tick (the
// deadline slack), so a timeout fires up to a tick late.
func (lp *loop) sweep() {
	now := lp.now
	p := lp.p
	for _, es := range lp.sessions {
		for i := range es.legs {
			l := &es.legs[i]
			switch {
			case l.closed:
			case l.deadline != 0 && now >= l.deadline:
				l.closeNow()
			case l.backlogged() && now-l.outSince >= int64(p.cfg.WriteTimeout):
				l.writeFailed(errWriteTimeout)
			case l.rd == rdOpen && !l.paused && now-l.lastRead >= p.idle:
				l.stop(os.ErrDeadlineExceeded)
			}
		}
		lp.drainPending()
	}
}

// shutdownAll starts the end of every session with 1001 (a task).
func (lp *loop) shutdownAll() {
	for _, es := range lp.sessions {
		es.finish(nil, event{kind: evShutdown})
	}
}

// abortAll drops every connection now (a task).
func (lp *loop) abortAll() {
	for _, es := range lp.sessions {
		es.abort()
	}
}

// errWriteTimeout is a write that could not complete within WriteTimeout.
var errWriteTimeout = fmt.Errorf("write: %w", os.ErrDeadlineExceeded)

// dupConn returns a duplicate of c's socket (close-on-exec, still non-blocking: the flag belongs
// to the socket, not the descriptor), for a loop to own once c is closed. Closing c takes its
// descriptor out of the runtime's poller; the socket stays open through the duplicate.
func dupConn(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("dup: %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", derr)
	}
	return nfd, nil
}
