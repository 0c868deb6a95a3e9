// Package redistest starts a real redis-server for tests: on a free loopback port, in a
// temporary directory, with no persistence. In CI (CI=true) a missing redis-server fails the
// test; elsewhere it skips with a message saying what to install.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Addr     string // 127.0.0.1:port
	Password string // "" unless started with a password
	cmd      *exec.Cmd
	exited   chan struct{}
}

// URL is the redis:// URL of the server, without the password.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Option changes how Start runs the server.
type Option func(*options)

type options struct{ password string }

// WithPassword makes the server require pw (requirepass).
func WithPassword(pw string) Option { return func(o *options) { o.password = pw } }

// Binary returns the path of redis-server, or fails (CI) or skips (elsewhere) tb.
func Binary(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("redis-server not found (CI must install it: apt-get install -y redis-server): %v", err)
	}
	tb.Skipf("redis-server not found: install it (apt-get install -y redis-server) to run this test")
	return ""
}

// Start runs a redis-server for tb and stops it when tb ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	bin := Binary(tb)
	s, err := start(bin, tb.TempDir(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartMain runs a redis-server for a whole test binary (from TestMain), in a temporary
// directory it removes on stop. It returns nil and no error when redis-server is not
// installed: tests then call Binary to fail (CI) or skip.
func StartMain() (s *Server, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, nil, err
	}
	s, err = start(bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() { s.Stop(); os.RemoveAll(dir) }, nil
}

func start(bin, dir string, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var lastErr error
	for range 5 { // a port picked free may be taken by the time redis binds it: try again
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args := []string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
			"--maxclients", "2000", "--loglevel", "warning", "--logfile", filepath.Join(dir, "redis.log"),
		}
		if o.password != "" {
			args = append(args, "--requirepass", o.password)
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Password: o.password, cmd: cmd,
			exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(s.exited) }()
		if lastErr = s.waitUp(s.exited); lastErr == nil {
			return s, nil
		}
		s.Stop()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	return nil, fmt.Errorf("redis-server did not come up: %w\n%s", lastErr, log)
}

// Stop kills the server and waits for it to exit (also to test what happens when Redis goes
// away). Stopping twice is fine.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// waitUp waits until the server answers PING (or NOAUTH, with a password), at most 10s.
func (s *Server) waitUp(exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited")
		default:
		}
		if err := ping(s.Addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
