package bench

import (
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// TestRunQueueWait: processes that outnumber the CPUs, all busy, must be seen waiting on the
// run queue for about the time one of them was kept off a CPU, and the wait is read from every
// thread of each.
func TestRunQueueWait(t *testing.T) {
	n := runtime.NumCPU() + 1
	var g procGroup
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		g = append(g, cmd.Process.Pid)
	}
	w0 := g.wait()
	const span = 500 * time.Millisecond
	time.Sleep(span)
	w := g.wait() - w0
	// n busy processes on n−1 CPUs: together they wait about span (one is always off a CPU).
	if w < span/4 || w > time.Duration(n)*span {
		t.Errorf("%d busy processes on %d CPUs waited %v on the run queue in %v, want about %v", n, n-1, w, span, span)
	}
	if runQueueWait(1<<30) != 0 {
		t.Error("a process that does not exist waited, want 0")
	}
}
