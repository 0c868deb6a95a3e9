package exampleserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/usher-gg/usher/contract"
)

// runMainEnv makes the test binary run Main instead of the tests, so Main's exit codes and
// signal handling are tested in a real process.
const runMainEnv = "EXAMPLESERVER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// mainCommand returns the test binary set up to run Main with env (and no other USHER_ vars).
func mainCommand(env ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(os.Args[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USHER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, runMainEnv+"=1")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

func TestMainProcess(t *testing.T) {
	t.Run("bad config exits 2", func(t *testing.T) {
		cmd, stderr := mainCommand()
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit: %v, want code 2; stderr:\n%s", err, stderr)
		}
		if !strings.Contains(stderr.String(), contract.EnvPort) {
			t.Errorf("stderr does not name %s:\n%s", contract.EnvPort, stderr)
		}
	})

	t.Run("SIGTERM exits 0, JSON logs", func(t *testing.T) {
		b := newFakeBridge()
		bsrv := httptest.NewServer(contract.NewHandler(b))
		t.Cleanup(bsrv.Close)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd, stderr := mainCommand(
			contract.EnvHost+"=127.0.0.1",
			contract.EnvPort+"="+strconv.Itoa(port),
			contract.EnvBridgeURL+"="+bsrv.URL,
			contract.EnvGame+"=demo",
			contract.EnvServer+"=demo-1",
			EnvLogFormat+"=json",
		)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "ready reported", func() bool {
			var n int
			b.get(func() { n = b.readies })
			return n == 1
		})
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit: %v, want 0; stderr:\n%s", err, stderr)
		}
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			if rec["gameserver"] != "demo-1" {
				t.Errorf("log line without gameserver=demo-1: %q", line)
			}
		}
	})
}
