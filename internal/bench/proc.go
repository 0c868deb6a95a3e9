package bench

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// cpuTime returns the CPU time (user + system, all threads, dead ones included) a process has
// used, from /proc/<pid>/stat. The resolution is 10 ms, so windows should last seconds.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// rss returns a process's resident set size in bytes, from /proc/<pid>/statm.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/statm: unexpected format", pid)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}

// runQueueWait returns how long the threads of a process that are alive now have waited on a
// run queue (runnable but not running), from /proc/<pid>/task/*/schedstat (CONFIG_SCHED_INFO;
// 0 without it): how much the scheduler held the process back.
func runQueueWait(pid int) time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		// "<ns on a CPU> <ns waiting on a run queue> <time slices>"
		if f := strings.Fields(string(b)); len(f) >= 2 {
			if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				sum += time.Duration(ns)
			}
		}
	}
	return sum
}

// procGroup is a set of processes measured together (nginx's master and workers; the game
// servers).
type procGroup []int

// cpu sums the CPU time of the group; processes that are gone count as zero.
func (g procGroup) cpu() time.Duration {
	var sum time.Duration
	for _, pid := range g {
		if d, err := cpuTime(pid); err == nil {
			sum += d
		}
	}
	return sum
}

// wait sums the run-queue waits of the group's threads (see runQueueWait).
func (g procGroup) wait() time.Duration {
	var sum time.Duration
	for _, pid := range g {
		sum += runQueueWait(pid)
	}
	return sum
}

// rss sums the resident set sizes of the group.
func (g procGroup) rss() int64 {
	var sum int64
	for _, pid := range g {
		if n, err := rss(pid); err == nil {
			sum += n
		}
	}
	return sum
}

// childrenOf lists the processes whose parent is pid (nginx's workers), scanning /proc.
func childrenOf(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit (children inherit it) and
// returns the new soft limit.
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}

// Machine describes where a report was taken, so runs can be compared over time.
type Machine struct {
	CPUModel   string     `json:"cpu_model"`
	Cores      int        `json:"cores"`
	MemoryMiB  int64      `json:"memory_mib"`
	Kernel     string     `json:"kernel"`
	OS         string     `json:"os"`
	GoVersion  string     `json:"go_version"`
	Nginx      string     `json:"nginx"` // version, or "not installed"
	FileLimit  uint64     `json:"file_limit"`
	LoadStart  [3]float64 `json:"load_average_start"`
	LoadEnd    [3]float64 `json:"load_average_end"`
	LoadDuring []float64  `json:"load_average_1m_samples"` // 1-minute load average, sampled between phases
	Revision   string     `json:"revision,omitempty"`
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Kernel: readTrim("/proc/sys/kernel/osrelease")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.MemoryMiB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.LoadStart = loadAverage()
	return m
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() [3]float64 {
	var l [3]float64
	f := strings.Fields(readTrim("/proc/loadavg"))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}
