//go:build linux

package bench

import (
	"encoding/binary"
	"errors"
	"sync"
	"syscall"
	"time"
)

// The load generator drives many WebSocket connections from a few goroutines: each worker owns
// an epoll instance and a share of the connections, reads with raw syscalls into one buffer,
// and sends pre-built masked frames on a schedule. It allocates nothing per message, so the
// generator's CPU stays small next to the process under test (and is measured anyway).

const generatorSupported = true

type genConn struct {
	fd       int
	idx      int32 // index in the worker's conns (the epoll event's data)
	id       uint32
	state    connState
	partial  []byte // bytes of an incomplete frame
	out      []byte // bytes the socket did not take yet
	lastSend int64
	closeAt  int64 // closing: when the close frame was sent
	gotClose bool  // closing: the peer's close frame arrived
}

type schedItem struct {
	due int64
	idx int32
}

// schedHeap is a min-heap of send times; it never allocates once grown.
type schedHeap []schedItem

func (h *schedHeap) push(it schedItem) {
	*h = append(*h, it)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].due <= a[i].due {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *schedHeap) pop() schedItem {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	*h = a[:n]
	a = a[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && a[l].due < a[m].due {
			m = l
		}
		if r < n && a[r].due < a[m].due {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	return top
}

// genEpoch is the base of every generator's clock: generators running side by side
// (interleaved windows) share one time line.
var genEpoch = time.Now()

// generator is the load generator: a few epoll workers.
type generator struct {
	size    int // payload size
	room    int // players per room in broadcast mode (ids id/room share a room); < 2: echo
	workers []*worker
	wg      sync.WaitGroup
}

type worker struct {
	g    *generator
	epfd int

	mu        sync.Mutex // held by the worker while it processes events, and by the controller
	conns     []*genConn
	open      int
	mode      loadMode
	period    int64 // modePaced: ns between two sends of a connection
	minGap    int64 // modeSaturate: least ns between two sends of a connection
	winStart  int64
	winEnd    int64
	slots     slotting // interleaved windows: the time slots this worker sends in
	sched     schedHeap
	stats     genStats
	stopped   bool
	buf       []byte
	frame     []byte // the data frame template, masked
	payloadAt int    // offset of the payload in frame
}

// newGenerator starts workers epoll workers sending payloads of size bytes. room is the room
// size of broadcast mode (a message comes back to the other players of the sender's room:
// connections id/room, see add), or 0 for echo mode (a message comes back to its sender).
func newGenerator(workers, size, room int) (*generator, error) {
	if size < minPayloadSize {
		size = minPayloadSize
	}
	g := &generator{size: size, room: room}
	for range workers {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			g.stop()
			return nil, err
		}
		w := &worker{g: g, epfd: epfd, buf: make([]byte, 256<<10)}
		w.buildFrame(size)
		g.workers = append(g.workers, w)
	}
	for _, w := range g.workers {
		g.wg.Add(1)
		go w.run()
	}
	return g, nil
}

func (g *generator) now() int64 { return int64(time.Since(genEpoch)) }

// stop ends the workers and closes every connection left.
func (g *generator) stop() {
	for _, w := range g.workers {
		w.mu.Lock()
		w.stopped = true
		for _, c := range w.conns {
			w.closeFD(c)
		}
		w.mu.Unlock()
	}
	g.wg.Wait()
	for _, w := range g.workers {
		_ = syscall.Close(w.epfd)
	}
}

// add hands a connected WebSocket (a non-blocking fd the generator now owns) to a worker;
// initial holds bytes already read past the handshake. id names the connection in the
// messages it sends; in broadcast mode, connections id/room are the players of one room.
func (g *generator) add(fd int, id uint32, initial []byte) error {
	w := g.workers[int(id)%len(g.workers)]
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		_ = syscall.Close(fd)
		return errors.New("generator stopped")
	}
	idx := len(w.conns)
	c := &genConn{fd: fd, id: id, idx: int32(idx)}
	w.conns = append(w.conns, c)
	w.open++
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(idx)}
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.closeFD(c)
		return err
	}
	if len(initial) > 0 {
		w.parse(c, append([]byte(nil), initial...), g.now())
	}
	return nil
}

// openConns counts connections not closed yet.
func (g *generator) openConns() int {
	n := 0
	for _, w := range g.workers {
		w.mu.Lock()
		n += w.open
		w.mu.Unlock()
	}
	return n
}

// idleAll stops sending (counters are kept).
func (g *generator) idleAll() {
	for _, w := range g.workers {
		w.mu.Lock()
		w.mode = modeIdle
		w.sched = w.sched[:0]
		w.mu.Unlock()
	}
}

// setLoad switches every worker to mode with a fresh window [start, end) (ns since base) and
// zeroed window counters; the counts of closes and errors carry on. rate is the messages per second per connection (modePaced), or the cap on
// it (modeSaturate).
func (g *generator) setLoad(mode loadMode, rate float64, start, end int64, sl slotting) {
	now := g.now()
	for wi, w := range g.workers {
		w.mu.Lock()
		w.mode = mode
		w.winStart, w.winEnd = start, end
		w.slots = sl
		old := w.stats
		w.stats = genStats{Unexpected: old.Unexpected, CloseCodes: old.CloseCodes, ProtocolErrors: old.ProtocolErrors,
			Misrouted: old.Misrouted, CloseTimeouts: old.CloseTimeouts}
		w.sched = w.sched[:0]
		if rate > 0 {
			w.period = int64(float64(time.Second) / rate)
			w.minGap = w.period
		}
		live := make([]int32, 0, len(w.conns))
		for i, c := range w.conns {
			if c.state == stOpen {
				live = append(live, int32(i))
			}
		}
		for k, i := range live {
			var due int64
			switch mode {
			case modePaced:
				// Spread the connections evenly over one period, workers interleaved.
				slot := float64(k*len(g.workers)+wi) / float64(len(live)*len(g.workers))
				due = now + int64(slot*float64(w.period))
			case modeSaturate:
				due = now + int64(k)*int64(10*time.Millisecond)/int64(max(len(live), 1))
			default:
				continue
			}
			w.sched.push(schedItem{due: sl.next(due), idx: i})
		}
		w.mu.Unlock()
	}
}

// collect returns the counters of every worker, merged.
func (g *generator) collect() genStats {
	var s genStats
	for _, w := range g.workers {
		w.mu.Lock()
		s.add(&w.stats)
		w.mu.Unlock()
	}
	return s
}

// closeAll sends every open connection a close frame (1000) and waits, at most grace, for
// each to be answered and ended by the peer; the rest are closed and counted as timeouts.
func (g *generator) closeAll(grace time.Duration) {
	now := g.now()
	for _, w := range g.workers {
		w.mu.Lock()
		w.mode = modeClosing
		w.sched = w.sched[:0]
		for _, c := range w.conns {
			if c.state != stOpen {
				continue
			}
			c.state, c.closeAt = stClosing, now
			// Close frame 1000, masked: payload 0x03 0xE8.
			k := maskBytes()
			f := [8]byte{0x88, 0x82, k[0], k[1], k[2], k[3], 0x03 ^ k[0], 0xE8 ^ k[1]}
			w.write(c, f[:])
		}
		w.mu.Unlock()
	}
	deadline := time.Now().Add(grace)
	for g.openConns() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, w := range g.workers {
		w.mu.Lock()
		for _, c := range w.conns {
			if c.state != stClosed {
				w.stats.CloseTimeouts++
				w.closeFD(c)
			}
		}
		w.mu.Unlock()
	}
}

func maskBytes() [4]byte {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], maskKey)
	return k
}

// buildFrame prepares the masked binary frame template of a payload of size bytes.
func (w *worker) buildFrame(size int) {
	var f []byte
	switch {
	case size <= 125:
		f = append(f, 0x82, 0x80|byte(size))
	case size <= 0xFFFF:
		f = append(f, 0x82, 0x80|126, byte(size>>8), byte(size))
	default:
		f = append(f, 0x82, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(size))
	}
	k := maskBytes()
	f = append(f, k[:]...)
	w.payloadAt = len(f)
	p := make([]byte, size)
	copy(p, payloadMagic)
	for i := minPayloadSize; i < size; i++ {
		p[i] = byte(i)
	}
	for i := range p {
		p[i] ^= k[i&3]
	}
	w.frame = append(f, p...)
}

func (w *worker) run() {
	defer w.g.wg.Done()
	events := make([]syscall.EpollEvent, 512)
	timeout := 20
	for {
		n, err := syscall.EpollWait(w.epfd, events, timeout)
		if err != nil && err != syscall.EINTR {
			return
		}
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		now := w.g.now()
		for i := range n {
			idx := int(events[i].Fd)
			if idx < 0 || idx >= len(w.conns) {
				continue
			}
			c := w.conns[idx]
			if c.state == stClosed {
				continue
			}
			ev := events[i].Events
			if ev&syscall.EPOLLOUT != 0 {
				w.flush(c)
			}
			if ev&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP|syscall.EPOLLRDHUP) != 0 {
				w.readConn(c, now)
			}
		}
		now = w.g.now()
		w.sendDue(now)
		if w.mode == modeClosing {
			w.expireClosing(now)
		}
		timeout = 20
		if len(w.sched) > 0 {
			d := w.sched[0].due - w.g.now()
			timeout = int(min(max((d+int64(time.Millisecond)-1)/int64(time.Millisecond), 0), 20))
		}
		w.mu.Unlock()
	}
}

// sendDue sends every scheduled message that is due.
func (w *worker) sendDue(now int64) {
	for len(w.sched) > 0 && w.sched[0].due <= now {
		it := w.sched.pop()
		c := w.conns[it.idx]
		if c.state != stOpen {
			continue
		}
		due := it.due
		if now-due > int64(time.Second) {
			w.stats.Lagged++
			due = now
		} else {
			w.send(c, now)
		}
		if w.mode == modePaced {
			w.sched.push(schedItem{due: w.slots.next(due + w.period), idx: it.idx})
		}
	}
}

// send writes one data message stamped with now.
func (w *worker) send(c *genConn, now int64) {
	k := maskBytes()
	p := w.frame[w.payloadAt:]
	var v [12]byte
	binary.LittleEndian.PutUint64(v[:8], uint64(now))
	binary.LittleEndian.PutUint32(v[8:], c.id)
	for i := range v {
		p[4+i] = v[i] ^ k[(4+i)&3]
	}
	c.lastSend = now
	w.stats.Sent++
	if now >= w.winStart && now < w.winEnd {
		w.stats.SentWin++
	}
	w.write(c, w.frame)
}

// write sends b, queueing what the socket does not take.
func (w *worker) write(c *genConn, b []byte) {
	if len(c.out) > 0 {
		c.out = append(c.out, b...)
		w.stats.Backlogged++
		return
	}
	for {
		n, err := syscall.Write(c.fd, b)
		if err == syscall.EINTR {
			continue
		}
		if n == len(b) {
			return
		}
		if err != nil && err != syscall.EAGAIN {
			w.gone(c, 0)
			return
		}
		n = max(n, 0)
		c.out = append(c.out[:0], b[n:]...)
		w.stats.Backlogged++
		w.watchOut(c, true)
		return
	}
}

// flush writes queued bytes after the socket became writable.
func (w *worker) flush(c *genConn) {
	for len(c.out) > 0 {
		n, err := syscall.Write(c.fd, c.out)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return
		}
		if err != nil {
			w.gone(c, 0)
			return
		}
		c.out = c.out[n:]
	}
	c.out = nil
	w.watchOut(c, false)
}

func (w *worker) watchOut(c *genConn, on bool) {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: c.idx}
	if on {
		ev.Events |= syscall.EPOLLOUT
	}
	_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
}

// readConn reads what the socket holds and handles every complete frame.
func (w *worker) readConn(c *genConn, now int64) {
	for c.state != stClosed {
		p := copy(w.buf, c.partial)
		n, err := syscall.Read(c.fd, w.buf[p:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return
		}
		if n <= 0 {
			w.gone(c, 0)
			return
		}
		c.partial = c.partial[:0]
		w.parse(c, w.buf[:p+n], now)
		if p+n < len(w.buf) {
			return // drained; level-triggered epoll reports more
		}
	}
}

// parse handles the complete frames in b and keeps the rest in c.partial.
func (w *worker) parse(c *genConn, b []byte, now int64) {
	for len(b) >= 2 && c.state != stClosed {
		b0, b1 := b[0], b[1]
		if b1&0x80 != 0 || b0&0x70 != 0 {
			w.stats.ProtocolErrors++
			w.gone(c, 0)
			return
		}
		n, h := int(b1&0x7F), 2
		switch n {
		case 126:
			if len(b) < 4 {
				goto short
			}
			n, h = int(binary.BigEndian.Uint16(b[2:4])), 4
		case 127:
			if len(b) < 10 {
				goto short
			}
			v := binary.BigEndian.Uint64(b[2:10])
			if v > 16<<20 {
				w.stats.ProtocolErrors++
				w.gone(c, 0)
				return
			}
			n, h = int(v), 10
		}
		if len(b) < h+n {
			goto short
		}
		{
			payload := b[h : h+n]
			switch b0 & 0x0F {
			case 0x2:
				w.onMessage(c, payload, now)
			case 0x8:
				code := 1005
				if n >= 2 {
					code = int(binary.BigEndian.Uint16(payload))
				}
				w.onClose(c, code)
			case 0x9:
				w.pong(c, payload)
			}
			// Text (the game server's welcome), pongs and continuations are ignored.
		}
		b = b[h+n:]
	}
short:
	if c.state != stClosed && len(b) > 0 {
		c.partial = append(c.partial[:0], b...)
	}
}

func (w *worker) onMessage(c *genConn, p []byte, now int64) {
	if len(p) < minPayloadSize || string(p[:4]) != payloadMagic {
		return
	}
	ts := int64(binary.LittleEndian.Uint64(p[4:12]))
	if !routedRight(w.g.room, binary.LittleEndian.Uint32(p[12:16]), c.id) {
		w.stats.Misrouted++
	}
	w.stats.Recv++
	if ts >= w.winStart && ts < w.winEnd {
		w.stats.RecvWin++
		w.stats.hist.record(now - ts)
	}
	if w.mode == modeSaturate && c.state == stOpen {
		w.sched.push(schedItem{due: w.slots.next(max(now, c.lastSend+w.minGap)), idx: c.idx})
	}
}

func (w *worker) pong(c *genConn, payload []byte) {
	if len(payload) > 125 || c.state != stOpen {
		return
	}
	k := maskBytes()
	var f [6 + 125]byte
	f[0], f[1] = 0x8A, 0x80|byte(len(payload))
	copy(f[2:6], k[:])
	for i, b := range payload {
		f[6+i] = b ^ k[i&3]
	}
	w.write(c, f[:6+len(payload)])
}

func (w *worker) onClose(c *genConn, code int) {
	if c.state == stClosing {
		c.gotClose = true // wait for the peer to end the TCP connection
		return
	}
	w.unexpected(code)
	w.closeFD(c)
}

// gone handles the end of the TCP connection (or a failed read or write).
func (w *worker) gone(c *genConn, code int) {
	if c.state != stClosing {
		w.unexpected(code)
	}
	w.closeFD(c)
}

func (w *worker) unexpected(code int) {
	w.stats.Unexpected++
	if w.stats.CloseCodes == nil {
		w.stats.CloseCodes = map[int]uint64{}
	}
	w.stats.CloseCodes[code]++ // 0: no close frame (EOF or reset)
}

func (w *worker) expireClosing(now int64) {
	for _, c := range w.conns {
		if c.state == stClosing && c.gotClose && now-c.closeAt > int64(2*time.Second) {
			w.closeFD(c) // answered, but the peer kept the connection open
		}
	}
}

func (w *worker) closeFD(c *genConn) {
	if c.state == stClosed {
		return
	}
	_ = syscall.Close(c.fd)
	c.state = stClosed
	c.partial, c.out = nil, nil
	w.open--
}
