package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usher-gg/usher/internal/metrics"
	"github.com/usher-gg/usher/internal/proxy"
	"github.com/usher-gg/usher/internal/testlog"
)

// relayUnderTest is the relay engine the tests run: the platform's default, or the one
// USHER_PROXY_RELAY names (TestOtherRelayEngine sets it to run the suite again).
var relayUnderTest = os.Getenv("USHER_PROXY_RELAY")

// TestOtherRelayEngine runs this package's tests again with the goroutine relay, where the
// default is the event loop, so both engines pass the same suite under `go test ./...`.
func TestOtherRelayEngine(t *testing.T) {
	var c proxy.Config
	c.SetDefaults()
	if relayUnderTest != "" || c.Relay == proxy.RelayGoroutines {
		return // this run already tests the goroutine relay
	}
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.run=^Test", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "USHER_PROXY_RELAY="+proxy.RelayGoroutines)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tests with Relay %q failed: %v\n%s", proxy.RelayGoroutines, err, out)
	}
	t.Logf("the tests pass with Relay %q too", proxy.RelayGoroutines)
}

// testConfig is a Config with short timers for tests.
func testConfig() proxy.Config {
	return proxy.Config{
		Relay:                relayUnderTest,
		MaxMessageBytes:      64 << 10,
		PingInterval:         5 * time.Second,
		PongWait:             5 * time.Second,
		WriteTimeout:         2 * time.Second,
		DialTimeout:          2 * time.Second,
		HandshakeTimeout:     2 * time.Second,
		CloseGrace:           500 * time.Millisecond,
		MaxMessagesPerSecond: 0,
	}
}

// eventLoopConfig is testConfig with its defaults set, and whether the relay under test is the
// event loop; when it is not, the test says why it has nothing to check (the goroutine engine
// has no loop to measure).
func eventLoopConfig(t *testing.T, otherwise string) (proxy.Config, bool) {
	t.Helper()
	cfg := testConfig()
	cfg.SetDefaults()
	if cfg.Relay != proxy.RelayEventLoop {
		t.Logf("relay %q %s; nothing to check", cfg.Relay, otherwise)
		return cfg, false
	}
	return cfg, true
}

// harness is a real Fiber app on 127.0.0.1:0 whose /connect route dials the game server named
// by the addr query parameter and upgrades, like the real handler does after its ticket check.
type harness struct {
	tb    testing.TB
	p     *proxy.Proxy
	m     *metrics.Metrics
	base  string // ws://127.0.0.1:port/connect
	logs  *testlog.Buffer
	app   *fiber.App
	shut  sync.Once
	stopp context.CancelFunc
}

// harnessOption changes the harness's Fiber app.
type harnessOption func(*fiber.App)

// keepHijackedConns makes fasthttp leave hijacked connections open after the handler returns,
// so the proxy relays on its own goroutine.
func keepHijackedConns(app *fiber.App) { app.Server().KeepHijackedConns = true }

func newHarness(tb testing.TB, cfg proxy.Config, opts ...harnessOption) *harness {
	tb.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("config: %v", err)
	}
	logs := &testlog.Buffer{}
	m := metrics.New(prometheus.NewRegistry())
	p := proxy.New(cfg, m, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/connect", func(c *fiber.Ctx) error {
		up, err := p.Dial(c.UserContext(), proxy.Target{
			Addr: c.Query("addr"), Player: c.Query("player"), Name: c.Query("name"), Room: c.Query("room"),
			Game: "example", Server: "gs-1",
		})
		if err != nil {
			return c.Status(fiber.StatusBadGateway).SendString(err.Error())
		}
		if err := p.Upgrade(c, up); err != nil {
			return nil // the upgrader answered
		}
		return nil
	})
	for _, o := range opts {
		o(app)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	h := &harness{tb: tb, p: p, m: m, base: "ws://" + ln.Addr().String() + "/connect", logs: logs, app: app}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		_ = app.ShutdownWithTimeout(time.Second)
	})
	return h
}

// url returns the /connect URL for a session to up as player.
func (h *harness) url(up *upstream, player string) string {
	q := url.Values{"addr": {up.addr}, "player": {player}, "name": {"Zoë " + player}, "room": {"K7QX"}}
	return h.base + "?" + q.Encode()
}

// dial connects a library client through Usher to up.
func (h *harness) dial(up *upstream, player string) *websocket.Conn {
	h.tb.Helper()
	c, resp, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial(h.url(up, player), nil)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		h.tb.Fatalf("connect %s: %v %s", player, err, status)
	}
	h.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// closes returns the proxy's close counter for reason.
func (h *harness) closes(reason string) float64 {
	return testutil.ToFloat64(h.m.ProxyCloses.WithLabelValues(reason))
}

// waitIdle waits until no session is left: the gauge is back to 0, and no goroutine of the
// proxy package is running.
func (h *harness) waitIdle() {
	h.tb.Helper()
	waitFor(h.tb, 5*time.Second, "sessions to end and proxy goroutines to exit", func() bool {
		return h.p.Sessions() == 0 && testutil.ToFloat64(h.m.ProxySessions) == 0 && proxyGoroutines() == 0
	})
}

// waitReason waits until a session ended with reason.
func (h *harness) waitReason(reason string, n float64) {
	h.tb.Helper()
	waitFor(h.tb, 5*time.Second, "close reason "+reason, func() bool { return h.closes(reason) >= n })
}

// proxyGoroutines counts goroutines running code of package proxy (not its tests), including
// its clock ticker.
func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "usher/internal/proxy.") {
			count++
		}
	}
	return count
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closeInfo is a close frame an endpoint received.
type closeInfo struct {
	Code int
	Text string
}

// expectClose reads c until the connection closes and checks the close frame it got.
func expectClose(tb testing.TB, c *websocket.Conn, want closeInfo) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code == websocket.CloseAbnormalClosure {
			tb.Fatalf("want close %d %q, got %v", want.Code, want.Text, err)
		}
		if got := (closeInfo{ce.Code, ce.Text}); got != want {
			tb.Fatalf("close: got %+v, want %+v", got, want)
		}
		return
	}
}

// upstream is a game server: net/http with fasthttp/websocket's Upgrader on 127.0.0.1:0.
// It records every upgrade request and every close frame it receives.
type upstream struct {
	addr   string
	reqs   chan *http.Request
	closes chan closeInfo
}

// newUpstream starts a game server running behave on every connection. behave returns when it
// is done with the connection; the server then closes it.
func newUpstream(tb testing.TB, behave func(c *websocket.Conn, up *upstream)) *upstream {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	up := &upstream{addr: ln.Addr().String(), reqs: make(chan *http.Request, 100), closes: make(chan closeInfo, 100)}
	upg := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upg.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		up.reqs <- r
		c.SetCloseHandler(func(code int, text string) error {
			up.closes <- closeInfo{code, text}
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
			return nil
		})
		behave(c, up)
	})}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return up
}

// echo sends every message back with its type. Messages longer than 1 KiB go back fragmented.
func echo(c *websocket.Conn, _ *upstream) {
	for {
		typ, r, err := c.NextReader()
		if err != nil {
			return
		}
		w, err := c.NextWriter(typ)
		if err != nil {
			return
		}
		if _, err := io.Copy(w, r); err != nil {
			return
		}
		if err := w.Close(); err != nil {
			return
		}
	}
}

// drain reads until the connection ends (answering pings, recording closes).
func drain(c *websocket.Conn, _ *upstream) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// nextClose returns the next close frame up received.
func (up *upstream) nextClose(tb testing.TB) closeInfo {
	tb.Helper()
	select {
	case ci := <-up.closes:
		return ci
	case <-time.After(5 * time.Second):
		tb.Fatal("game server received no close frame")
		return closeInfo{}
	}
}

// nextRequest returns the next upgrade request up received.
func (up *upstream) nextRequest(tb testing.TB) *http.Request {
	tb.Helper()
	select {
	case r := <-up.reqs:
		return r
	case <-time.After(5 * time.Second):
		tb.Fatal("game server received no connection")
		return nil
	}
}

// rawClient speaks WebSocket frames by hand, to send what a library would refuse to.
type rawClient struct {
	tb testing.TB
	nc net.Conn
	br *bufio.Reader
}

func (h *harness) rawDial(up *upstream, player string) *rawClient {
	h.tb.Helper()
	u, _ := url.Parse(h.url(up, player))
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.tb.Cleanup(func() { _ = nc.Close() })
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		h.tb.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		h.tb.Fatalf("upgrade: %s", resp.Status)
	}
	return &rawClient{tb: h.tb, nc: nc, br: br}
}

// frame builds a client frame: b0 is FIN/RSV/opcode, masked with a fixed key unless unmasked.
func frame(b0 byte, payload []byte, unmasked bool) []byte {
	var b bytes.Buffer
	b.WriteByte(b0)
	m := byte(0x80)
	if unmasked {
		m = 0
	}
	switch n := len(payload); {
	case n > 0xFFFF:
		b.WriteByte(m | 127)
		_ = binary.Write(&b, binary.BigEndian, uint64(n))
	case n > 125:
		b.WriteByte(m | 126)
		_ = binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(m | byte(n))
	}
	if unmasked {
		b.Write(payload)
		return b.Bytes()
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b.Write(key[:])
	for i, c := range payload {
		b.WriteByte(c ^ key[i%4])
	}
	return b.Bytes()
}

func (rc *rawClient) send(b []byte) {
	rc.tb.Helper()
	if _, err := rc.nc.Write(b); err != nil {
		rc.tb.Fatalf("send: %v", err)
	}
}

// readFrame reads the next server frame other than a keepalive ping. Usher may ping a session
// at any time (the event loop's ping wheel puts a session's first ping at a random point of
// PingInterval); the tests that read frames are about data and close frames, so pings are
// skipped here, as a client library would answer them out of sight.
func (rc *rawClient) readFrame() (b0 byte, payload []byte, err error) {
	for {
		b0, payload, err = rc.readAnyFrame()
		if err != nil || b0 != 0x89 {
			return b0, payload, err
		}
	}
}

// readAnyFrame reads one server frame.
func (rc *rawClient) readAnyFrame() (b0 byte, payload []byte, err error) {
	_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(rc.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(rc.br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(rc.br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(rc.br, payload)
	return hdr[0], payload, err
}

// expectClose reads frames until a close frame and checks its code.
func (rc *rawClient) expectClose(code int) {
	rc.tb.Helper()
	for {
		b0, p, err := rc.readFrame()
		if err != nil {
			rc.tb.Fatalf("want close %d, got %v", code, err)
		}
		if b0&0x0f != 0x8 {
			continue
		}
		if len(p) < 2 {
			rc.tb.Fatalf("want close %d, got empty close", code)
		}
		if got := int(binary.BigEndian.Uint16(p)); got != code {
			rc.tb.Fatalf("close: got %d %q, want %d", got, p[2:], code)
		}
		return
	}
}

var _ = fmt.Sprintf
