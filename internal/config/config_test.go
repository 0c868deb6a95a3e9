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
	c, err := Parse(ModeDev, nil, "/bin/usher", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.AdminListen != "127.0.0.1:8081" || c.TicketTTL != 15*time.Second || c.TokenCacheSize != 65536 {
		t.Errorf("defaults: listen %q admin %q ticket-ttl %s token-cache-size %d", c.Listen, c.AdminListen, c.TicketTTL, c.TokenCacheSize)
	}
	if c.ClientIPHeader != "X-Forwarded-For" {
		t.Errorf("default client IP header %q, want X-Forwarded-For", c.ClientIPHeader)
	}
	want := []Game{ExampleGame("/bin/usher")}
	want[0].Agones = AgonesGame{Namespace: "default", Fleet: "example", PortName: "default", Dial: "pod"}
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
	t.Setenv("USHER_TOKEN_CACHE_SIZE", "-1")
	c, err := Parse(ModeDev, []string{"--join-rate=9", "--trusted-proxies", "10.0.0.0/8, 192.168.1.1", "--allowed-origins=https://play.example.com"}, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.TicketTTL != 20*time.Second || c.AdminListen != "127.0.0.1:9999" {
		t.Errorf("env not read: ticket-ttl %s admin %s", c.TicketTTL, c.AdminListen)
	}
	if c.JoinRate != 9 {
		t.Errorf("flag should win over env: join-rate = %d, want 9", c.JoinRate)
	}
	if c.TokenCacheSize != -1 {
		t.Errorf("env not read: token-cache-size = %d, want -1", c.TokenCacheSize)
	}
	if diff := cmp.Diff([]string{"10.0.0.0/8", "192.168.1.1"}, c.TrustedProxies); diff != "" {
		t.Errorf("trusted proxies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"https://play.example.com"}, c.AllowedOrigins); diff != "" {
		t.Errorf("allowed origins replace the default (-want +got):\n%s", diff)
	}
}

func TestClientIPHeaderFlagAndEnv(t *testing.T) {
	t.Setenv("USHER_CLIENT_IP_HEADER", "CF-Connecting-IP")
	c, err := Parse(ModeDev, nil, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientIPHeader != "CF-Connecting-IP" {
		t.Errorf("USHER_CLIENT_IP_HEADER not read: %q", c.ClientIPHeader)
	}
	c, err = Parse(ModeDev, []string{"--client-ip-header", "X-Real-IP"}, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientIPHeader != "X-Real-IP" {
		t.Errorf("flag should win over env: %q, want X-Real-IP", c.ClientIPHeader)
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
		{[]string{"--token-cache-size=0"}, "--token-cache-size"},
		{[]string{"--token-cache-size=-2"}, "--token-cache-size"},
		{[]string{"--token-cache-size=1048577"}, "--token-cache-size"},
		{[]string{"--relay=threads"}, "--relay"},
		{[]string{"--relay-loops=-1"}, "--relay-loops"},
		{[]string{"--client-ip-header="}, "--client-ip-header"},
		{[]string{"--client-ip-header=Forwarded"}, "--client-ip-header"},
		{[]string{"--client-ip-header=CF-Connecting-IP, X-Forwarded-For"}, "--client-ip-header"},
		{[]string{"stray"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := Parse(ModeDev, tt.args, "/u", io.Discard)
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
	c, err := Parse(ModeDev, []string{"--config", path}, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []Game{
		{ID: "example", Name: "Example", MaxPlayers: 4, WebClient: "example.html", Command: []string{"/u", "example-server"}, Buffer: 2, MaxServers: 32,
			Agones: AgonesGame{Namespace: "default", Fleet: "example", PortName: "default", Dial: "pod"}},
		{ID: "treasure-takedown", Name: "Treasure Takedown", Description: "Steal the treasure.", MaxPlayers: 8,
			Command: []string{"godot", "--headless", "--path", "game"}, Env: map[string]string{"GODOT_LOG": "1"}, Buffer: 1, MaxServers: 4,
			Agones: AgonesGame{Namespace: "default", Fleet: "treasure-takedown", PortName: "default", Dial: "pod"}},
	}
	if diff := cmp.Diff(want, c.Games); diff != "" {
		t.Errorf("games (-want +got):\n%s", diff)
	}
}

func TestCatalogErrors(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		yaml string
		want string
	}{
		{"unknown field", ModeDev, "games:\n  - id: a\n    command: [x]\n    maxplayers: 3\n", "maxplayers"},
		{"no games", ModeDev, "games: []\n", "no games"},
		{"bad id", ModeDev, "games:\n  - id: Bad_Id\n    command: [x]\n", "id must be"},
		{"duplicate", ModeDev, "games:\n  - id: a\n    command: [x]\n  - id: a\n    command: [x]\n", "duplicate"},
		{"no command", ModeDev, "games:\n  - id: a\n", "command is required"},
		{"players", ModeDev, "games:\n  - id: a\n    command: [x]\n    max_players: -1\n", "max_players"},
		{"buffer", ModeDev, "games:\n  - id: a\n    command: [x]\n    buffer: 9\n    max_servers: 2\n", "buffer"},
		{"not yaml", ModeDev, "games: [", "decode"},
		{"serve needs no command", ModeServe, "games:\n  - id: a\n", ""},
		{"bad dial", ModeServe, "games:\n  - id: a\n    agones: {dial: nodeport}\n", "agones.dial"},
		{"bad fleet", ModeServe, "games:\n  - id: a\n    agones: {fleet: Not_A_Label}\n", "agones.namespace and agones.fleet"},
		{"agones typo", ModeServe, "games:\n  - id: a\n    agones: {flet: x}\n", "flet"},
		{"script web client", ModeDev, "games:\n  - id: a\n    command: [x]\n    web_client: \"javascript:alert(1)\"\n", "web_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "games.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Parse(tt.mode, []string{"--config", path, "--jwt-key-file=" + path, "--admin-token-file=" + tokenFile(t)}, "/u", io.Discard)
			if tt.want == "" {
				if err != nil {
					t.Errorf("err = %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestServeDefaults(t *testing.T) {
	if _, err := Parse(ModeServe, nil, "/u", io.Discard); err == nil || !strings.Contains(err.Error(), "usher keygen") {
		t.Errorf("serve without a key: err = %v, want a hint to make one", err)
	}
	if _, err := Parse(ModeServe, []string{"--jwt-key-file", "/k.pem"}, "/u", io.Discard); err == nil || !strings.Contains(err.Error(), "admin page's token") {
		t.Errorf("serve without an admin token: err = %v, want it refused", err)
	}
	c, err := Parse(ModeServe, []string{"--namespace", "games", "--jwt-key-file", "/k.pem", "--admin-token-file", tokenFile(t)}, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.LogFormat != "json" || c.DrainDelay != 5*time.Second || len(c.AllowedOrigins) != 0 {
		t.Errorf("serve defaults: %+v", c)
	}
	want := AgonesGame{Namespace: "games", Fleet: "example", PortName: "default", Dial: "pod"}
	if diff := cmp.Diff(want, c.Games[0].Agones); diff != "" {
		t.Errorf("built-in game in serve mode (-want +got):\n%s", diff)
	}
	// dev flags that make no sense in a cluster are not there.
	if _, err := Parse(ModeDev, []string{"--kubeconfig=x"}, "/u", io.Discard); err == nil {
		t.Error("--kubeconfig accepted by dev")
	}
}

func TestJWTKeyFromEnv(t *testing.T) {
	t.Setenv("USHER_JWT_KEY", "-----BEGIN PRIVATE KEY-----\n...")
	c, err := Parse(ModeDev, nil, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTKeyPEM == "" {
		t.Error("USHER_JWT_KEY not read")
	}
	if _, err := Parse(ModeDev, []string{"--jwt-key-file=/k.pem"}, "/u", io.Discard); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("file and env together: err = %v", err)
	}
}

// tokenFile writes an admin token to a file and returns its path.
func tokenFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(p, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdminAndMetricsTokens(t *testing.T) {
	file := tokenFile(t)
	c, err := Parse(ModeDev, []string{"--admin-token-file", file}, "/u", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "0123456789abcdef0123" {
		t.Errorf("admin token from file = %q, want it trimmed", c.AdminToken)
	}
	t.Setenv("USHER_ADMIN_TOKEN", "from-the-environment-1")
	t.Setenv("USHER_METRICS_TOKEN", "metrics-from-environment")
	if c, err = Parse(ModeServe, []string{"--jwt-key-file", "/k.pem"}, "/u", io.Discard); err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "from-the-environment-1" || c.MetricsToken != "metrics-from-environment" {
		t.Errorf("tokens from the environment: admin %q metrics %q", c.AdminToken, c.MetricsToken)
	}
	if _, err := Parse(ModeDev, []string{"--admin-token-file", file}, "/u", io.Discard); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("file and env together: err = %v", err)
	}
	t.Setenv("USHER_ADMIN_TOKEN", "short")
	if _, err := Parse(ModeDev, nil, "/u", io.Discard); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("short admin token: err = %v", err)
	}
}
