package proxy

import (
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/usher-gg/usher/internal/metrics"
)

// TestLoopWait checks how a loop waits: holding its P (a raw epoll_wait) only while busy — the
// last wait returned events — and for at most hotWaitMs at a time; the usual way otherwise.
func TestLoopWait(t *testing.T) {
	p := New(Config{}, metrics.New(prometheus.NewRegistry()), nil)
	lp, err := newLoop(p)
	if err != nil {
		t.Fatal(err)
	}
	lp.rawWait = true
	t.Cleanup(func() { _ = unix.Close(lp.evfd); _ = unix.Close(lp.epfd) })
	raw := make([]unix.EpollEvent, 8)
	wake := func() {
		one := uint64(1)
		if _, err := unix.Write(lp.evfd, (*[8]byte)(unsafe.Pointer(&one))[:]); err != nil {
			t.Fatal(err)
		}
	}
	clear := func() {
		var b [8]byte
		if _, err := unix.Read(lp.evfd, b[:]); err != nil {
			t.Fatal(err)
		}
	}

	if n, err := waitNoEINTR(lp, raw, 0); n != 0 || err != nil || lp.hot {
		t.Fatalf("idle poll: n=%d err=%v hot=%v, want 0, nil, false", n, err, lp.hot)
	}
	wake()
	if n, err := waitNoEINTR(lp, raw, 1000); n != 1 || err != nil || !lp.hot {
		t.Fatalf("an event: n=%d err=%v hot=%v, want 1, nil, true", n, err, lp.hot)
	}
	clear()

	// Busy: an event that comes while the loop waits holding its P is taken, and the loop
	// stays busy.
	go func() { time.Sleep(200 * time.Microsecond); wake() }()
	if n, err := waitNoEINTR(lp, raw, 1000); n != 1 || err != nil || !lp.hot {
		t.Fatalf("busy, then an event: n=%d err=%v hot=%v, want 1, nil, true", n, err, lp.hot)
	}
	clear()

	// Nothing for longer than hotWaitMs: the loop goes idle and the wait still ends at its
	// own timeout (the caller's timers), not before, with no event.
	start := time.Now()
	if n, err := waitNoEINTR(lp, raw, 20); n != 0 || err != nil || lp.hot {
		t.Fatalf("busy, then nothing: n=%d err=%v hot=%v, want 0, nil, false", n, err, lp.hot)
	}
	if d := time.Since(start); d < 19*time.Millisecond {
		t.Fatalf("the wait ended after %s, before its 20ms timeout", d)
	}

	// A loop that may not hold a P never does, busy or not.
	lp.rawWait = false
	wake()
	if n, _ := waitNoEINTR(lp, raw, 1000); n != 1 {
		t.Fatalf("n=%d, want 1", n)
	}
	clear()
	if n, _ := waitNoEINTR(lp, raw, 0); n != 0 {
		t.Fatalf("n=%d, want 0", n)
	}
}

// waitNoEINTR is lp.wait past EINTR, as the loop's run goes on after one: the runtime's
// preemption signals interrupt epoll_wait.
func waitNoEINTR(lp *loop, events []unix.EpollEvent, msec int) (int, error) {
	for {
		if n, err := lp.wait(events, msec); err != unix.EINTR {
			return n, err
		}
	}
}
