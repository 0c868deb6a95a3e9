package exampleserver

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-gg/usher/contract"
)

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{
		contract.EnvHost:      "127.0.0.1",
		contract.EnvPort:      "7001",
		contract.EnvBridgeURL: "http://127.0.0.1:9359",
		contract.EnvGame:      "demo",
		contract.EnvServer:    "demo-1",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	defaults := Config{
		Host: "127.0.0.1", Port: 7001, BridgeURL: "http://127.0.0.1:9359", Game: "demo", Server: "demo-1",
		HeartbeatInterval: 2 * time.Second, EmptyTimeout: 30 * time.Second, MaxMessageBytes: 64 << 10, SendQueue: 1024, SlowTimeout: 2 * time.Second,
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr []string // substrings of the error
	}{
		{name: "defaults", env: base, want: defaults},
		{name: "durations", env: with(EnvEmptyTimeout, "90s", EnvHeartbeat, "500ms"),
			want: func() Config {
				c := defaults
				c.EmptyTimeout, c.HeartbeatInterval = 90*time.Second, 500*time.Millisecond
				return c
			}()},
		{name: "echo", env: with(EnvEcho, "1"),
			want: func() Config { c := defaults; c.Echo = true; return c }()},
		{name: "echo off", env: with(EnvEcho, "false"), want: defaults},
		{name: "bad echo", env: with(EnvEcho, "yes"), wantErr: []string{EnvEcho}},
		{name: "empty host means all interfaces", env: with(contract.EnvHost, ""),
			want: func() Config { c := defaults; c.Host = ""; return c }()},
		{name: "no port", env: with(contract.EnvPort, ""), wantErr: []string{"USHER_PORT is not set"}},
		{name: "port not a number", env: with(contract.EnvPort, "http"), wantErr: []string{`USHER_PORT="http"`}},
		{name: "port out of range", env: with(contract.EnvPort, "70000"), wantErr: []string{"port 70000"}},
		{name: "no bridge", env: with(contract.EnvBridgeURL, ""), wantErr: []string{"USHER_BRIDGE_URL is not set"}},
		{name: "bridge not a URL", env: with(contract.EnvBridgeURL, "127.0.0.1:9359"), wantErr: []string{"bridge url"}},
		{name: "bad duration", env: with(EnvEmptyTimeout, "30"), wantErr: []string{EnvEmptyTimeout}},
		{name: "zero heartbeat", env: with(EnvHeartbeat, "0s"), wantErr: []string{EnvHeartbeat}},
		{name: "negative duration", env: with(EnvEmptyTimeout, "-1s"), wantErr: []string{EnvEmptyTimeout}},
		{name: "every error at once", env: with(contract.EnvPort, "", contract.EnvBridgeURL, "", EnvHeartbeat, "x"),
			wantErr: []string{contract.EnvPort, contract.EnvBridgeURL, EnvHeartbeat}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("err = %q, want it to mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Port: 7001, BridgeURL: "http://127.0.0.1:9359"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{name: "minimal", edit: func(*Config) {}},
		{name: "port 0", edit: func(c *Config) { c.Port = 0 }, wantErr: "port 0"},
		{name: "negative heartbeat", edit: func(c *Config) { c.HeartbeatInterval = -time.Second }, wantErr: "heartbeat"},
		{name: "negative empty timeout", edit: func(c *Config) { c.EmptyTimeout = -time.Second }, wantErr: "empty timeout"},
		{name: "negative max message", edit: func(c *Config) { c.MaxMessageBytes = -1 }, wantErr: "max message"},
		{name: "negative queue", edit: func(c *Config) { c.SendQueue = -1 }, wantErr: "send queue"},
		{name: "bridge without scheme", edit: func(c *Config) { c.BridgeURL = "localhost:9359" }, wantErr: "bridge url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}
