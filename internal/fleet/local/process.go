package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/usher-gg/usher/contract"
)

// maxLogLine bounds a line of game server output in the log; the rest of a longer line is dropped.
const maxLogLine = 4 << 10

// process is a running game server process and its bridge listener.
type process struct {
	cmd    *exec.Cmd
	pid    int
	done   chan struct{} // closed once the process has exited and been reaped
	bridge *http.Server
	stdout *lineWriter
	stderr *lineWriter
}

// start starts the process of s, a record in Starting: its bridge listener first (the
// process needs its URL), then the process in its own process group. A failure ends s.
func (f *Fleet) start(s *server) {
	g := f.games[s.game]
	log := f.log.With("game", s.game, "gameserver", s.name)
	// The bridge listener first: once it is bound, the kernel cannot offer its port as the
	// game server's (it did, when the game server's port was picked first and released).
	ln, err := f.bridgeListener()
	if err != nil {
		f.st.exited(s, fmt.Errorf("bridge listener: %w", err), false)
		return
	}
	port, err := f.freePort()
	if err != nil {
		ln.Close()
		f.st.exited(s, err, false)
		return
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	bridgeURL := "http://" + ln.Addr().String()
	f.st.setAddr(s, addr, bridgeURL)

	bridge := &http.Server{
		Handler:           contract.NewHandler(backend{st: f.st, s: s}),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = bridge.Serve(ln) // returns when the process is gone and the server is closed
	}()

	cmd := exec.Command(g.Command[0], g.Command[1:]...)
	cmd.Dir = g.Dir
	cmd.Env = append(append(os.Environ(), g.Env...),
		contract.EnvPort+"="+strconv.Itoa(port),
		contract.EnvHost+"=127.0.0.1",
		contract.EnvBridgeURL+"="+bridgeURL,
		contract.EnvGame+"="+s.game,
		contract.EnvServer+"="+s.name,
	)
	stdout := &lineWriter{log: log, level: slog.LevelDebug, stream: "stdout"}
	stderr := &lineWriter{log: log, level: slog.LevelInfo, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Children that keep the output pipes open must not keep Wait from returning.
	cmd.WaitDelay = f.cfg.StopTimeout
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		_ = bridge.Close()
		f.st.exited(s, err, false)
		return
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), bridge: bridge, stdout: stdout, stderr: stderr}
	f.st.spawned(s, p)
	log.Info("game server started", "pid", p.pid, "addr", addr, "bridge", bridgeURL)
	f.wg.Add(1)
	go f.wait(s, p)
}

// wait reaps the process of s, then ends s and closes its bridge.
func (f *Fleet) wait(s *server, p *process) {
	defer f.wg.Done()
	err := p.cmd.Wait()
	// Kill whatever the process left behind in its group. Its pid is free again now, but a
	// group id stays taken while any member lives, so this cannot reach a stranger's group
	// unless the group emptied and the pid was reused as a new group in between.
	killGroup(p)
	close(p.done)
	p.stdout.Close()
	p.stderr.Close()
	f.st.exited(s, err, true)
	_ = p.bridge.Close()
}

// terminate sends SIGTERM to the process group of p, and SIGKILL if it has not exited
// after StopTimeout.
func (f *Fleet) terminate(p *process) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		terminateGroup(p)
		t := f.clk.NewTimer(f.cfg.StopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C():
			f.log.Warn("game server ignored SIGTERM; killing it", "pid", p.pid, "stop_timeout", f.cfg.StopTimeout)
			killGroup(p)
		}
	}()
}

// freePort picks a free loopback TCP port for a game server, never one already given to a
// live server of this fleet (which may not have bound it yet: the kernel can hand the same
// free port out twice in a row). Another process may still take it before the game server
// binds it; the game server then fails and is replaced.
func (f *Fleet) freePort() (int, error) {
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !f.st.portTaken(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) {
			return port, nil
		}
	}
	return 0, errors.New("pick a free port: every port offered is given to another game server")
}

// bridgeListener opens a game server's bridge listener on a free loopback port that was not
// given to a live game server of this fleet (one that has not bound it yet is not in use, so
// the kernel may offer it).
func (f *Fleet) bridgeListener() (net.Listener, error) {
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		if !f.st.portTaken(ln.Addr().String()) {
			return ln, nil
		}
		ln.Close()
	}
	return nil, errors.New("every port offered is given to a game server")
}

// exitStatus describes how a process ended ("exit status 3", "signal: killed").
func exitStatus(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	default:
		return err.Error()
	}
}

// lineWriter logs what a game server writes, one record per line, each bounded to maxLogLine.
type lineWriter struct {
	log    *slog.Logger
	level  slog.Level
	stream string

	mu   sync.Mutex
	buf  []byte
	skip bool // dropping the rest of an over-long line
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.skip {
			if room := maxLogLine - len(w.buf); len(chunk) > room {
				w.buf = append(w.buf, chunk[:room]...)
				w.emit(true)
				w.skip = true
			} else {
				w.buf = append(w.buf, chunk...)
			}
		}
		if i < 0 {
			break
		}
		if !w.skip {
			w.emit(false)
		}
		w.skip = false
		p = p[i+1:]
	}
	return n, nil
}

// Close logs a last line that had no newline.
func (w *lineWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 && !w.skip {
		w.emit(false)
	}
}

func (w *lineWriter) emit(truncated bool) {
	line := string(bytes.TrimRight(w.buf, "\r"))
	w.buf = w.buf[:0]
	if truncated {
		w.log.Log(context.Background(), w.level, "game server output", "stream", w.stream, "line", line, "truncated", true)
		return
	}
	w.log.Log(context.Background(), w.level, "game server output", "stream", w.stream, "line", line)
}
