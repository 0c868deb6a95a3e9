package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUsherDevBinary builds cmd/usher and runs `usher dev` exactly as a newcomer would (the
// example game from the binary's own example-server command), plays one join, then stops it
// with SIGTERM.
func TestUsherDevBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("go not on PATH in CI")
		}
		t.Skip("go not on PATH: install Go to run this test")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "usher")
	build := exec.Command(goBin, "build", "-o", bin, "../../cmd/usher")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "dev", "--listen", listen)
	cmd.Env = append(os.Environ(), "USHER_ADMIN_LISTEN="+admin, "USHER_LOG_LEVEL=info")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("usher dev output:\n%s", logs.String())
		}
	})

	h := &harness{t: t, base: "http://" + listen, ws: "ws://" + listen}
	eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	var j joinResp
	eventually(t, 20*time.Second, func() error { // the warm buffer may still be starting
		var st int
		var code string
		j, st, code = h.join(h.token("Newcomer").Token, `{"game":"example"}`)
		if st != 200 {
			return fmt.Errorf("join: %d %s", st, code)
		}
		return nil
	})
	c := h.mustDial(j.ConnectURL)
	if w := readWelcome(t, c); w.Room != j.Room {
		t.Errorf("welcome %+v", w)
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin /metrics: %v %v", err, resp)
	}
	resp.Body.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := closeCode(t, c, 10*time.Second); got != 1012 {
		t.Errorf("close code on SIGTERM %d, want 1012 (reconnect elsewhere)", got)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("usher dev exited with %v, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("usher dev did not exit within 20s of SIGTERM")
	}
	if n := countProcesses(bin + "\x00example-server"); n != 0 {
		t.Errorf("%d example servers still running after usher dev exited", n)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// countProcesses counts live processes whose NUL-separated command line contains s.
func countProcesses(s string) int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			n++
		}
	}
	return n
}
