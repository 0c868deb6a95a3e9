package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/config"
	"github.com/usher-gg/usher/internal/exampleserver"
	"gopkg.in/yaml.v3"
)

// benchGame is the game id of the bench's catalog.
const benchGame = "bench"

// seatsPerRoom is how many players the bench puts in one room: under the catalog's ceiling of
// 1000 seats, leaving room for the seat each room's creator reserves.
const seatsPerRoom = 950

// gameServer is one example server of the bench's Usher, with its room.
type gameServer struct {
	registration
	Room string
}

func (g gameServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port)) }

// usherProc is a running Usher (the usher role) with its game servers.
type usherProc struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	addrs   usherAddrs
	dir     string
	servers []gameServer
	api     *apiClient
	log     *slog.Logger
}

func (u *usherProc) pid() int { return u.cmd.Process.Pid }

// benchCatalog is Usher's games catalog for a bench round: one game, `bench`, whose servers are
// this binary in the example-server role, rooms warm servers of it. With roomSize 0 they are in
// echo mode, rooms of up to 1000 seats; with roomSize K ≥ 2 they are the example server's normal
// relay, rooms of K seats plus the one the room's creator reserved.
func benchCatalog(cfg Config, self, registry string, rooms, roomSize int, heartbeat time.Duration) ([]byte, error) {
	g := config.Game{
		ID: benchGame, Name: "Bench", Description: "The example server in echo mode, for usher-bench.",
		MaxPlayers: 1000, Command: []string{self}, Buffer: rooms, MaxServers: rooms,
		Env: map[string]string{
			envRole: roleExample, envRegistry: registry, exampleserver.EnvEcho: "1",
			exampleserver.EnvEmptyTimeout: "1h",
		},
	}
	// The local fleet passes Usher's environment on to the game servers: --usher-env is for
	// Usher alone, so each of its keys gets the bench's own value back (empty: the default).
	for _, kv := range cfg.UsherEnv {
		k, _, _ := strings.Cut(kv, "=")
		g.Env[k] = os.Getenv(k)
	}
	if heartbeat > 0 {
		g.Env[exampleserver.EnvHeartbeat] = heartbeat.String()
	}
	if roomSize >= 2 {
		// The creator's seat stays reserved (it never connects): one more, so exactly
		// roomSize players fit and one more would be refused.
		g.MaxPlayers = roomSize + 1
		g.Description = "The example server relaying to the room, for usher-bench."
		g.Env[exampleserver.EnvEcho] = "0"
		// One game server per room, as on Agones, where a room's pod has a CPU limit of a core
		// or less (and Go sizes GOMAXPROCS from it): one P each. With a P per core, hundreds
		// of runtimes wake threads around every message, and the game servers alone took 1.6
		// of this machine's two cores at 1,000 players in rooms of 4.
		g.Env["GOMAXPROCS"] = "1"
	}
	return yaml.Marshal(config.Catalog{Games: []config.Game{g}})
}

// startUsher starts Usher with a catalog of one game, `bench`, and creates rooms rooms on rooms
// warm servers, which heartbeat every heartbeat (0: the example server's default, 2 s). With
// roomSize 0 the game is the example server in echo mode, rooms of up to 1000 seats; with
// roomSize K ≥ 2 it is the example server's normal relay (each message to the other players of
// the room), rooms of K seats plus the one the room's creator reserved.
func startUsher(ctx context.Context, cfg Config, dir string, rooms, roomSize int, heartbeat time.Duration, log *slog.Logger) (*usherProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	registry := filepath.Join(dir, "servers")
	if err := os.MkdirAll(registry, 0o755); err != nil {
		return nil, err
	}
	catalog, err := benchCatalog(cfg, self, registry, rooms, roomSize, heartbeat)
	if err != nil {
		return nil, err
	}
	catPath := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catPath, catalog, 0o644); err != nil {
		return nil, err
	}
	ready := filepath.Join(dir, "usher-ready.json")
	args := []string{
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--config", catPath,
		// The bench is one client IP asking for thousands of tokens and joins: lift the
		// per-IP limits. The proxy's limits (message rate and size) stay at their defaults.
		"--token-rate", "1000000000", "--join-rate", "1000000000", "--create-rate", "1000000000",
		"--ticket-ttl", "2m", "--allocation-wait", "30s", "--shutdown-timeout", "5s",
		"--log-format", "json", "--log-level", "info",
	}
	if cfg.MaxMessageRate >= 0 {
		args = append(args, "--max-message-rate", strconv.Itoa(cfg.MaxMessageRate))
	}
	if cfg.RedisURL != "" {
		args = append(args, "--redis-url", cfg.RedisURL)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), envRole+"="+roleUsher, envReady+"="+ready)
	cmd.Env = append(cmd.Env, cfg.UsherEnv...)
	if cfg.Pprof {
		cmd.Env = append(cmd.Env, envPprof+"=1")
	}
	logf, err := os.Create(filepath.Join(dir, "usher.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the bench dies, Usher gets SIGTERM and stops its game servers.
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start usher: %w", err)
	}
	u := &usherProc{cmd: cmd, exited: make(chan struct{}), dir: dir, log: log}
	go func() { _ = cmd.Wait(); close(u.exited) }()
	ok := false
	defer func() {
		if !ok {
			u.stop()
		}
	}()

	if err := u.waitFor(ctx, 30*time.Second, "usher to listen", func() error {
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &u.addrs)
	}); err != nil {
		return nil, err
	}
	u.api = newAPIClient(u.addrs.Public, 64)
	// Wait for the warm servers to register and report Ready.
	if err := u.waitFor(ctx, 60*time.Second, fmt.Sprintf("%d game servers to be ready", rooms), func() error {
		regs, err := readRegistry(registry)
		if err != nil {
			return err
		}
		readyN := 0
		for _, r := range regs {
			if a, err := allocation(ctx, r.Bridge); err == nil && a.State == contract.StateReady {
				readyN++
			}
		}
		if readyN < rooms {
			return fmt.Errorf("%d of %d ready", readyN, rooms)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// One room per server: a creator's join allocates it.
	codes := map[string]bool{}
	for range rooms {
		p, err := u.api.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("create room: %w", err)
		}
		_, code, err := u.api.join(ctx, p.token, benchGame, "")
		if err != nil {
			return nil, fmt.Errorf("create room: %w", err)
		}
		codes[code] = true
	}
	regs, err := readRegistry(registry)
	if err != nil {
		return nil, err
	}
	for _, r := range regs {
		a, err := allocation(ctx, r.Bridge)
		if err != nil {
			// A registration outlives its server: the fleet may have stopped a spare one (its
			// bridge is gone). The count below says whether every room has its server.
			continue
		}
		if a.State == contract.StateAllocated && codes[a.Room] {
			u.servers = append(u.servers, gameServer{registration: r, Room: a.Room})
		}
	}
	if len(u.servers) != rooms {
		return nil, fmt.Errorf("found %d allocated game servers, want %d", len(u.servers), rooms)
	}
	ok = true
	return u, nil
}

func (u *usherProc) waitFor(ctx context.Context, limit time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-u.exited:
			return fmt.Errorf("usher exited while waiting for %s (see %s)", what, filepath.Join(u.dir, "usher.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}

// gcAnswer is what the bench's control listener answers to POST /gc.
type gcAnswer struct {
	HeapLive int64 `json:"heap_live_bytes"` // the heap's live objects after the collections
}

// collect makes Usher run full garbage collections (enough to empty sync.Pools) and return
// freed memory to the OS, so an RSS reading that follows holds no garbage of earlier phases;
// it returns the bytes of Usher's heap that are still live.
func (u *usherProc) collect(ctx context.Context) (heapLive int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+u.addrs.Control+"/gc", nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var a gcAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return 0, fmt.Errorf("POST /gc: %w", err)
	}
	return a.HeapLive, nil
}

// connectedPlayers sums the players the game servers report connected.
func (u *usherProc) connectedPlayers(ctx context.Context) (int, error) {
	return u.playersOn(ctx, u.servers)
}

// playersOn sums the players the game servers of set report connected.
func (u *usherProc) playersOn(ctx context.Context, set []gameServer) (int, error) {
	n := 0
	for _, s := range set {
		a, err := allocation(ctx, s.Bridge)
		if err != nil {
			return 0, err
		}
		n += len(a.Connected)
	}
	return n, nil
}

// stop ends Usher with SIGTERM (it stops its game servers), then SIGKILL after 30 s; game
// servers still alive after that are killed by pid.
func (u *usherProc) stop() {
	if u.api != nil {
		u.api.close()
	}
	_ = u.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.exited:
	case <-time.After(30 * time.Second):
		u.log.Warn("usher did not stop within 30s; killing it", "pid", u.pid())
		_ = u.cmd.Process.Kill()
		<-u.exited
	}
	regs, _ := readRegistry(filepath.Join(u.dir, "servers"))
	for _, r := range regs {
		if alive(r.PID) && isOurExample(r.PID) {
			u.log.Warn("game server outlived usher; killing it", "pid", r.PID)
			_ = syscall.Kill(r.PID, syscall.SIGKILL)
		}
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// isOurExample checks that pid still runs the bench's example server role (the pid was not
// reused by another process).
func isOurExample(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && strings.Contains(string(b), envRole+"="+roleExample)
}

func readRegistry(dir string) ([]registration, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []registration
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var r registration
		if json.Unmarshal(b, &r) == nil && r.PID > 0 {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// allocation reads a game server's allocation from its bridge (a read-only call).
func allocation(ctx context.Context, bridge string) (contract.Allocation, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, bridge+"/allocation", nil)
	if err != nil {
		return contract.Allocation{}, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return contract.Allocation{}, err
	}
	defer resp.Body.Close()
	var a contract.Allocation
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return a, fmt.Errorf("allocation: %d %s", resp.StatusCode, b)
	}
	return a, json.NewDecoder(resp.Body).Decode(&a)
}

// nginxProc is a running nginx configured as a WebSocket reverse proxy to the game servers.
type nginxProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	addr   string
	group  procGroup // master and workers
}

// findNginx returns the nginx binary and its version, or "" when it is not installed.
func findNginx() (bin, version string) {
	for _, p := range []string{"nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if b, err := exec.LookPath(p); err == nil {
			out, _ := exec.Command(b, "-v").CombinedOutput()
			return b, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version:"))
		}
	}
	return "", ""
}

// nginxConf renders the configuration: one location per game server, /gs/<port>/ →
// http://127.0.0.1:<port>/, with the Upgrade and Connection headers a WebSocket needs.
func nginxConf(dir, listen, workers string, servers []gameServer, runAsRoot bool) string {
	var b strings.Builder
	if runAsRoot {
		// Workers of a root master switch to nobody, who could not use the temp directory.
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, `worker_processes %s;
worker_rlimit_nofile 20000;
pid %s/nginx.pid;
error_log %s/nginx-error.log warn;
events {
    worker_connections 20000;
}
http {
    access_log off;
    client_body_temp_path %s/client_body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    server {
        listen %s backlog=4096;
`, workers, dir, dir, dir, dir, dir, dir, dir, listen)
	for _, s := range servers {
		fmt.Fprintf(&b, `        location /gs/%d/ {
            proxy_pass http://127.0.0.1:%d/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
`, s.Port, s.Port)
	}
	b.WriteString("    }\n}\n")
	return b.String()
}

func startNginx(ctx context.Context, bin, dir, workers string, servers []gameServer) (*nginxProc, error) {
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ndir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(ndir, addr, workers, servers, os.Geteuid() == 0)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-p", ndir, "-c", conf, "-g", "daemon off;")
	out, err := os.Create(filepath.Join(ndir, "nginx.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n := &nginxProc{cmd: cmd, exited: make(chan struct{}), addr: addr}
	go func() { _ = cmd.Wait(); close(n.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-n.exited:
			b, _ := os.ReadFile(filepath.Join(ndir, "nginx.out"))
			return nil, fmt.Errorf("nginx exited: %s", strings.TrimSpace(string(b)))
		case <-ctx.Done():
			n.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, errors.New("nginx did not listen within 15s")
		}
	}
	n.group = append(procGroup{cmd.Process.Pid}, childrenOf(cmd.Process.Pid)...)
	return n, nil
}

// stop ends nginx quickly (SIGTERM), then SIGKILL after 10 s.
func (n *nginxProc) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// freePort picks a free loopback port (another process could take it before nginx binds it;
// nginx then fails to start and the bench says so).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
