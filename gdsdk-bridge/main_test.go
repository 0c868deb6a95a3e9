package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usher-gg/usher/agones/sdk/sdktest"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/testlog"
)

func TestRunRefusesPort8080(t *testing.T) {
	var stderr bytes.Buffer
	code := run([]string{"--listen", "127.0.0.1:8080"}, func(string) string { return "" }, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "port 8080 belongs to the Agones SDK sidecar") {
		t.Errorf("run --listen 127.0.0.1:8080 = %d, stderr %q; want 2 and a clear refusal", code, stderr.String())
	}
}

// TestBinarySIGTERM builds the sidecar and runs it against the fake SDK gateway: after a real
// SIGTERM it keeps serving until the GameServer is Shutdown, then exits 0.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "gdsdk-bridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fake := sdktest.New(t, sdktest.DefaultGameServer())
	var logs testlog.Buffer
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0")
	cmd.Env = []string{
		"AGONES_SDK_HTTP_PORT=" + fake.Port(),
		"GDSDK_BRIDGE_LOG_LEVEL=debug",
	}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("bridge logs:\n%s", logs.String())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	poll := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var addr string
	poll("the bridge to serve", func() bool { addr = servingAddr(logs.String()); return addr != "" })
	game, err := contract.NewClient("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := game.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	fake.Allocate(sdktest.Allocation{Labels: map[string]string{contract.LabelRoom: "K7QX"}})
	poll("the bridge to see the room", func() bool { a, err := game.Allocation(ctx); return err == nil && a.Room == "K7QX" })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll("the signal to be handled", func() bool { return strings.Contains(logs.String(), "signal received") })
	if a, err := game.Allocation(ctx); err != nil || a.State != contract.StateAllocated {
		t.Fatalf("after SIGTERM: allocation %+v, %v; want it still served", a, err)
	}
	select {
	case err := <-exited:
		t.Fatalf("the bridge exited (%v) before the GameServer was Shutdown", err)
	default:
	}

	if err := game.Shutdown(ctx); err != nil { // the match ends: SDK Shutdown → state Shutdown
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v, want status 0", err)
		}
		exited <- err // for the cleanup
	case <-ctx.Done():
		t.Fatal("the bridge did not exit after the GameServer was Shutdown")
	}
	if !strings.Contains(logs.String(), `"gameserver":"demo-ml6gc-55ngm"`) {
		t.Errorf("logs are not JSON with the gameserver key:\n%s", logs.String())
	}
}

// servingAddr finds the listen address in the bridge's JSON logs.
func servingAddr(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "gdsdk-bridge serving" {
			return l.Addr
		}
	}
	return ""
}
