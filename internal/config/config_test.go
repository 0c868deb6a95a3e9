package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseDefaults(t *testing.T) {
	t.Setenv("USHER_LISTEN", "")
	c, err := Parse("dev", nil, "/bin/usher", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.AdminListen != "127.0.0.1:8081" || c.TicketTTL != 15*time.Second {
		t.Errorf("defaults: listen %q admin %q ticket-ttl %s", c.Listen, c.AdminListen, c.TicketTTL)
	}
	want := []Game{ExampleGame("/bin/usher")}
	if diff := cmp.Diff(want, c.Games); diff != "" {
		t.Errorf("games (-want +got):\n%s", diff)
	}
	if c.Games[0].ID != "example" || c.Games[0].MaxPlayers != 4 {
		t.Errorf("default game = %+v, want example with 4 players", c.Games[0])
	}
}

func TestParseFlagsAndEnv(t *testing.T) {
	t.Setenv("USHER_TICKET_TTL", "20s")
	t.Setenv("USHER_ADMIN_LISTEN", "127.0.0.1:9999")
	t.Setenv("USHER_JOIN_RATE", "7")
	c, err := Parse("dev", []string{"--join-rate=9", "--trusted-proxies", "10.0.0.0/8, 192.168.1.1", "--allowed-origins=https://play.example.com"}, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.TicketTTL != 20*time.Second || c.AdminListen != "127.0.0.1:9999" {
		t.Errorf("env not read: ticket-ttl %s admin %s", c.TicketTTL, c.AdminListen)
	}
	if c.JoinRate != 9 {
		t.Errorf("flag should win over env: join-rate = %d, want 9", c.JoinRate)
	}
	if diff := cmp.Diff([]string{"10.0.0.0/8", "192.168.1.1"}, c.TrustedProxies); diff != "" {
		t.Errorf("trusted proxies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"https://play.example.com"}, c.AllowedOrigins); diff != "" {
		t.Errorf("allowed origins replace the default (-want +got):\n%s", diff)
	}
}

func TestParseRejectsBadValues(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--ticket-ttl=0s"}, "--ticket-ttl"},
		{[]string{"--ticket-ttl=10m"}, "--ticket-ttl"},
		{[]string{"--max-message-bytes=10"}, "--max-message-bytes"},
		{[]string{"--token-rate=0"}, "--token-rate"},
		{[]string{"--log-format=xml"}, "--log-format"},
		{[]string{"--listen=127.0.0.1:1", "--admin-listen=127.0.0.1:1"}, "must differ"},
		{[]string{"--ticket-ttl=abc"}, "invalid value"},
		{[]string{"stray"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := Parse("dev", tt.args, "/u", io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "games.yaml")
	yaml := `games:
  - id: example
    name: Example
  - id: treasure-takedown
    name: Treasure Takedown
    description: Steal the treasure.
    max_players: 8
    command: ["godot", "--headless", "--path", "game"]
    env: {GODOT_LOG: "1"}
    buffer: 1
    max_servers: 4
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("dev", []string{"--config", path}, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []Game{
		{ID: "example", Name: "Example", MaxPlayers: 4, Command: []string{"/u", "example-server"}, Buffer: 2, MaxServers: 32},
		{ID: "treasure-takedown", Name: "Treasure Takedown", Description: "Steal the treasure.", MaxPlayers: 8,
			Command: []string{"godot", "--headless", "--path", "game"}, Env: map[string]string{"GODOT_LOG": "1"}, Buffer: 1, MaxServers: 4},
	}
	if diff := cmp.Diff(want, c.Games); diff != "" {
		t.Errorf("games (-want +got):\n%s", diff)
	}
}

func TestCatalogErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "games:\n  - id: a\n    command: [x]\n    maxplayers: 3\n", "maxplayers"},
		{"no games", "games: []\n", "no games"},
		{"bad id", "games:\n  - id: Bad_Id\n    command: [x]\n", "id must be"},
		{"duplicate", "games:\n  - id: a\n    command: [x]\n  - id: a\n    command: [x]\n", "duplicate"},
		{"no command", "games:\n  - id: a\n", "command is required"},
		{"players", "games:\n  - id: a\n    command: [x]\n    max_players: -1\n", "max_players"},
		{"buffer", "games:\n  - id: a\n    command: [x]\n    buffer: 9\n    max_servers: 2\n", "buffer"},
		{"not yaml", "games: [", "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCatalog(strings.NewReader(tt.yaml), "/u")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestJWTKeyFromEnv(t *testing.T) {
	t.Setenv("USHER_JWT_KEY", "-----BEGIN PRIVATE KEY-----\n...")
	c, err := Parse("dev", nil, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTKeyPEM == "" {
		t.Error("USHER_JWT_KEY not read")
	}
	if _, err := Parse("dev", []string{"--jwt-key-file=/k.pem"}, "/u", io.Discard); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("file and env together: err = %v", err)
	}
}
