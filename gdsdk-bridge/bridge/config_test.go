package bridge_test

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-gg/usher/gdsdk-bridge/bridge"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	defaults, err := bridge.DefaultConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		edit    func(*bridge.Config)
		wantErr string
	}{
		{name: "defaults", env: env()},
		{
			name: "sdk port from agones", env: env("AGONES_SDK_HTTP_PORT", "9400"),
			edit: func(c *bridge.Config) { c.SDKURL = "http://localhost:9400" },
		},
		{
			name: "env", env: env("GDSDK_BRIDGE_LISTEN", "127.0.0.1:9400", "GDSDK_BRIDGE_SEAT_TIMEOUT", "30s",
				"GDSDK_BRIDGE_GAME", "treasure", "GDSDK_BRIDGE_LOG_FORMAT", "text"),
			edit: func(c *bridge.Config) {
				c.Listen, c.SeatTimeout, c.Game, c.LogFormat = "127.0.0.1:9400", 30*time.Second, "treasure", "text"
			},
		},
		{
			name: "flags win over env", args: []string{"--seat-timeout=45s", "--health-interval", "1s"},
			env:  env("GDSDK_BRIDGE_SEAT_TIMEOUT", "30s"),
			edit: func(c *bridge.Config) { c.SeatTimeout, c.HealthInterval = 45*time.Second, time.Second },
		},
		{name: "bad env duration", env: env("GDSDK_BRIDGE_START_GRACE", "soon"), wantErr: "GDSDK_BRIDGE_START_GRACE"},
		{name: "port 8080 refused", args: []string{"--listen", "127.0.0.1:8080"}, env: env(), wantErr: "port 8080"},
		{name: "port 8080 refused from env", env: env("GDSDK_BRIDGE_LISTEN", "localhost:8080"), wantErr: "port 8080"},
		{name: "stray argument", args: []string{"serve"}, env: env(), wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bridge.LoadConfig(tt.args, tt.env, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadConfig error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			if tt.edit != nil {
				tt.edit(&want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := bridge.LoadConfig([]string{"-h"}, env(), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("LoadConfig(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-seat-timeout", "GDSDK_BRIDGE_", "8080"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage does not mention %q:\n%s", want, out.String())
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*bridge.Config)
		wantErr string
	}{
		{name: "defaults"},
		{name: "port 0 for tests", edit: func(c *bridge.Config) { c.Listen = "127.0.0.1:0" }},
		{name: "ipv6 loopback", edit: func(c *bridge.Config) { c.Listen = "[::1]:9359" }},
		{name: "agones health port", edit: func(c *bridge.Config) { c.Listen = "127.0.0.1:8080" }, wantErr: "8080 belongs to the Agones SDK sidecar"},
		{name: "sdk port", edit: func(c *bridge.Config) { c.Listen = "127.0.0.1:9358" }, wantErr: "SDK gateway"},
		{name: "all interfaces", edit: func(c *bridge.Config) { c.Listen = ":9359" }, wantErr: "loopback"},
		{name: "pod address", edit: func(c *bridge.Config) { c.Listen = "10.0.0.5:9359" }, wantErr: "loopback"},
		{name: "no port", edit: func(c *bridge.Config) { c.Listen = "127.0.0.1" }, wantErr: "listen"},
		{name: "bad sdk url", edit: func(c *bridge.Config) { c.SDKURL = "localhost:9358" }, wantErr: "sdk url"},
		{name: "zero health interval", edit: func(c *bridge.Config) { c.HealthInterval = 0 }, wantErr: "health interval"},
		{
			name:    "heartbeat timeout not above the interval",
			edit:    func(c *bridge.Config) { c.HeartbeatTimeout = c.HealthInterval },
			wantErr: "heartbeat timeout",
		},
		{name: "negative grace", edit: func(c *bridge.Config) { c.StartGrace = -time.Second }, wantErr: "start grace"},
		{name: "zero seat timeout", edit: func(c *bridge.Config) { c.SeatTimeout = 0 }, wantErr: "seat timeout"},
		{name: "bad log format", edit: func(c *bridge.Config) { c.LogFormat = "xml" }, wantErr: "log format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := bridge.DefaultConfig(env())
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				tt.edit(&c)
			}
			err = c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewAppRefusesPort8080(t *testing.T) {
	c, err := bridge.DefaultConfig(env())
	if err != nil {
		t.Fatal(err)
	}
	c.Listen = "127.0.0.1:8080"
	if _, err := bridge.NewApp(c, bridge.SystemClock(), nil); err == nil || !strings.Contains(err.Error(), "8080") {
		t.Errorf("NewApp on port 8080 = %v, want a refusal naming the port", err)
	}
}
