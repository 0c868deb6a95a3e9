package bench

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if code, ok := RunRole(); ok { // this test binary is also Usher and the game servers
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestRunProducesReport runs the whole bench with a handful of players and checks the report
// is complete and sane. It asserts nothing about speed.
func TestRunProducesReport(t *testing.T) {
	if !generatorSupported {
		t.Skip("the bench needs Linux")
	}
	if testing.Short() {
		t.Skip("starts Usher, game servers and nginx: skipped with -short")
	}
	out := t.TempDir()
	cfg := DefaultConfig()
	cfg.Connections, cfg.Rate, cfg.LightRate = 12, 5, 2
	cfg.Duration, cfg.Warmup, cfg.Settle, cfg.Saturate, cfg.SaturateRate = time.Second, 200*time.Millisecond, 100*time.Millisecond, 500*time.Millisecond, 20
	cfg.Rounds = 1
	cfg.Out = out
	cfg.ConnectConcurrency, cfg.HTTPConcurrency = 4, 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := Run(ctx, cfg, log)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := WriteReport(rep, out); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(filepath.Join(out, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", ReportJSON, err)
	}
	want := []string{PathDirect, PathUsher}
	bin, _ := findNginx()
	if bin == "" && os.Getenv("CI") != "" {
		t.Error("nginx is not installed: CI must install nginx-light (.ci/run does)")
	}
	if bin != "" {
		want = append(want, PathNginx)
	} else if len(got.Notes) == 0 || !strings.Contains(got.Notes[0], "nginx not installed") {
		t.Errorf("notes = %q, want one saying nginx is not installed", got.Notes)
	}
	if len(got.Runs) != len(want) {
		t.Fatalf("%d runs, want %d (%v)", len(got.Runs), len(want), want)
	}
	for _, r := range got.Runs {
		if r.Connect.OK != cfg.Connections || r.Unexpected != 0 || len(r.Problems) > 0 {
			t.Errorf("%s: %d of %d connected, %d unexpected closes, problems %q", r.Path, r.Connect.OK, cfg.Connections, r.Unexpected, r.Problems)
		}
		if r.Paced == nil || r.Paced.Received == 0 || r.Paced.Latency.P50 <= 0 || r.Paced.Latency.P99 < r.Paced.Latency.P50 {
			t.Errorf("%s: paced window %+v, want messages and ordered latencies", r.Path, r.Paced)
		}
		if r.Light == nil || r.Light.Received == 0 {
			t.Errorf("%s: light window %+v, want messages", r.Path, r.Light)
		}
		if r.Saturated == nil || r.Saturated.Received == 0 {
			t.Errorf("%s: saturated window %+v, want messages", r.Path, r.Saturated)
		}
		if r.RSSBase <= 0 || r.RSSIdle <= 0 {
			t.Errorf("%s: RSS base %d idle %d, want both read", r.Path, r.RSSBase, r.RSSIdle)
		}
	}
	u, ok := got.Paths[PathUsher]
	if !ok || u.AddedP50US == nil || u.AllocsPerFrame == nil || u.GoroutinesPerConn == nil {
		t.Errorf("usher summary %+v: want added latency, allocations and goroutines", u)
	}
	if got.API == nil || got.API.TokensPerSecond <= 0 || got.API.JoinsPerSecond <= 0 || got.API.ConnectsPerSecond <= 0 || got.API.Errors != 0 {
		t.Errorf("API summary %+v: want tokens, joins and connects without errors", got.API)
	}
	if got.Machine.Cores <= 0 || got.Machine.GoVersion == "" || got.Machine.Kernel == "" || got.Machine.FileLimit == 0 {
		t.Errorf("machine %+v: want cores, Go version, kernel and file limit", got.Machine)
	}
	ids := map[string]bool{}
	for _, tg := range got.Targets {
		ids[tg.ID] = true
	}
	for _, id := range []string{"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"} {
		if !ids[id] {
			t.Errorf("targets lack %s", id)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, ReportMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"# Usher bench report", "## Relay", "## API through Usher", "## Targets", "load average"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("%s lacks %q", ReportMarkdown, s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := DefaultConfig()
	bad.Connections, bad.Rate, bad.Paths, bad.Rounds = 20000, 250, []string{"usher", "usher", "haproxy"}, 0
	err := bad.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"--connections", "--rate", "unknown path", "named twice", "--rounds 0 needs --soak"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}
