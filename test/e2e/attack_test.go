package e2e

// Issue #10: an outside probe attacked `usher dev` with default settings. Each attack here is
// replayed against a running Usher over a raw TCP socket: the request bytes exactly as an
// attacker would write them, the answer read off the wire.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/config"
)

// rawResponse is an answer read off the wire.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
	head   string // the status line and headers as sent, for failure messages
}

// raw writes req (CRLF line ends, exactly as given) to a new connection to Usher's public
// listener and reads one response from it.
func (h *harness) raw(req string) rawResponse {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", h.app.PublicAddr(), 5*time.Second)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		h.t.Fatalf("write: %v", err)
	}
	var head bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &head))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		h.t.Fatalf("read response to %.60q: %v (got %q)", req, err, head.String())
	}
	defer resp.Body.Close()
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ = io.ReadAll(resp.Body)
	}
	hd := head.String()
	if i := strings.Index(hd, "\r\n\r\n"); i >= 0 {
		hd = hd[:i]
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: body, head: hd}
}

// apiError decodes an error answer, failing the test unless it is the API's JSON error shape.
func (r rawResponse) apiError(tb testing.TB) (code, message string) {
	tb.Helper()
	var e apiError
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || json.Unmarshal(r.body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
		tb.Fatalf("%d answer is not a JSON error: %s\n\n%s", r.status, r.head, r.body)
	}
	return e.Error.Code, e.Error.Message
}

// post is a raw POST of a JSON body (any bytes) with an optional bearer token.
func post(addr, path, token string, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n", path, addr, len(body))
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.String()
}

// metric reads one sample from the admin listener's /metrics; a sample not exposed yet is 0.
func (h *harness) metric(sample string) float64 {
	h.t.Helper()
	resp, err := http.Get(h.admin + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				h.t.Fatalf("metric %s: %q", sample, line)
			}
			return f
		}
	}
	return 0
}

// seats returns the seats and connected players of the game server holding room.
func (h *harness) seats(room string) (seats, connected int) {
	h.t.Helper()
	for _, s := range h.app.Local.Servers() {
		if s.Room == room {
			return s.Seats, s.Connected
		}
	}
	h.t.Fatalf("no game server holds room %s", room)
	return 0, 0
}

const sampleKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's own example: 16 bytes

// TestConnectHandshakeAttacks: a /connect that is not a complete RFC 6455 handshake is refused
// with a JSON 400 before the ticket is looked at. The ticket stays unspent, the game server is
// never dialled, and the same ticket then connects.
func TestConnectHandshakeAttacks(t *testing.T) {
	h := startUsher(t, nil)
	addr := h.app.PublicAddr()
	j := h.mustJoin(h.token("").Token, `{"game":"example"}`)
	target := "/connect?ticket=" + ticketOf(j.ConnectURL)
	request := func(proto string, lines ...string) string {
		return "GET " + target + " " + proto + "\r\nHost: " + addr + "\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n"
	}
	const (
		up   = "Upgrade: websocket"
		conn = "Connection: Upgrade"
		v13  = "Sec-WebSocket-Version: 13"
		key  = "Sec-WebSocket-Key: " + sampleKey
	)
	tests := []struct {
		name        string
		req         string
		wantVersion bool // the answer must carry Sec-WebSocket-Version: 13
	}{
		{"version 8", request("HTTP/1.1", up, conn, "Sec-WebSocket-Version: 8", key), true},
		{"no version", request("HTTP/1.1", up, conn, key), true},
		{"two versions", request("HTTP/1.1", up, conn, v13, "Sec-WebSocket-Version: 8", key), true},
		{"no key", request("HTTP/1.1", up, conn, v13), false},
		{"key x", request("HTTP/1.1", up, conn, v13, "Sec-WebSocket-Key: x"), false},
		{"key of 15 bytes", request("HTTP/1.1", up, conn, v13, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"), false},
		{"key of 17 bytes", request("HTTP/1.1", up, conn, v13, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="), false},
		{"key not base64", request("HTTP/1.1", up, conn, v13, "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="), false},
		{"HTTP/1.0", request("HTTP/1.0", up, conn, v13, key), false},
		{"Connection without upgrade", request("HTTP/1.1", up, "Connection: keep-alive", v13, key), false},
		{"Connection upgraded (not the token)", request("HTTP/1.1", up, "Connection: upgraded", v13, key), false},
		{"Upgrade h2c", request("HTTP/1.1", "Upgrade: h2c", conn, v13, key), false},
		{"no Upgrade", request("HTTP/1.1", conn, v13, key), false},
	}
	redeemed := h.metric(`usher_tickets_redeemed_total{result="ok"}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.with(t)
			r := h.raw(tt.req)
			if r.status != 400 {
				t.Fatalf("status %d, want 400:\n%s", r.status, r.head)
			}
			if code, _ := r.apiError(t); code != "invalid_request" {
				t.Errorf("code %s, want invalid_request", code)
			}
			if got := r.header.Get("Sec-WebSocket-Version"); tt.wantVersion && got != "13" {
				t.Errorf("Sec-WebSocket-Version %q in the answer, want 13 (RFC 6455 §4.4)", got)
			}
			if got := h.metric(`usher_tickets_redeemed_total{result="ok"}`); got != redeemed {
				t.Errorf("a ticket was redeemed (%v → %v): the handshake was checked after the ticket", redeemed, got)
			}
			if seats, connected := h.seats(j.Room); seats != 1 || connected != 0 {
				t.Errorf("room %s: %d seats, %d connected; want the seat still reserved and no connection to the game server", j.Room, seats, connected)
			}
		})
	}
	if got := h.metric(`usher_tickets_redeemed_total{result="invalid"}`); got != 0 {
		t.Errorf("%v ticket redemptions refused: the attacks reached the ticket store", got)
	}
	// The ticket is untouched: a correct handshake with it is switched to the game server.
	r := h.raw(request("HTTP/1.1", up, conn, v13, key))
	if r.status != 101 || r.header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("correct handshake after the attacks: %s", r.head)
	}
	if got := h.metric(`usher_tickets_redeemed_total{result="ok"}`); got != redeemed+1 {
		t.Errorf("redeemed %v, want %v", got, redeemed+1)
	}
}

// TestJoinAndTokenInputAttacks: names that are not valid Unicode, a room that is not a code,
// codes with characters codes never use, and one format of expires_at in every answer.
func TestJoinAndTokenInputAttacks(t *testing.T) {
	h := startUsher(t, nil)
	addr := h.app.PublicAddr()
	tok := h.token("").Token

	t.Run("invalid UTF-8 and lone surrogates in name", func(t *testing.T) {
		h := h.with(t)
		for _, body := range [][]byte{
			[]byte("{\"name\":\"Al\xffce\"}"),
			[]byte("{\"name\":\"\xed\xa0\x80\"}"), // a surrogate encoded as UTF-8 (CESU)
			[]byte(`{"name":"\ud800"}`),
			[]byte(`{"name":"a\udc00b"}`),
			[]byte(`{"name":"\ud800\u0041"}`),
		} {
			r := h.raw(post(addr, "/request_token", "", body))
			if code, _ := r.apiError(t); r.status != 400 || code != "invalid_request" {
				t.Errorf("name %q: %d %s, want 400 invalid_request", body, r.status, code)
			}
		}
		// A proper surrogate pair is a real character.
		r := h.raw(post(addr, "/request_token", "", []byte(`{"name":"Ada \ud83c\udfae"}`)))
		var tr tokenResp
		if r.status != 200 || json.Unmarshal(r.body, &tr) != nil || tr.Name != "Ada 🎮" {
			t.Errorf("surrogate pair: %d %s", r.status, r.body)
		}
	})

	rooms := func() int {
		var g struct {
			Games []struct{ Rooms int } `json:"games"`
		}
		h.do("GET", "/games", "", "", &g)
		return g.Games[0].Rooms
	}

	t.Run("room null or not a string", func(t *testing.T) {
		h := h.with(t)
		before := rooms()
		for _, body := range []string{
			`{"game":"example","room":null}`, `{"game":"example","room":7}`, `{"game":"example","room":{}}`,
			`{"game":"example","room":["K7QX"]}`, `{"game":"example","room":true}`, `{"game":"example","room":""}`,
		} {
			r := h.raw(post(addr, "/join", tok, []byte(body)))
			code, msg := r.apiError(t)
			if r.status != 400 || code != "invalid_request" || !strings.Contains(msg, `"room" must be a room code`) {
				t.Errorf("%s: %d %s %q, want 400 invalid_request saying room must be a code", body, r.status, code, msg)
			}
		}
		if after := rooms(); after != before {
			t.Errorf("rooms %d → %d: a refused join created a room", before, after)
		}
	})

	t.Run("code with characters codes never use", func(t *testing.T) {
		h := h.with(t)
		for _, c := range []string{"ZZZO", "Z1IL", "zzz0", "ZZZZL", "ZZZI"} {
			r := h.raw(post(addr, "/join", tok, []byte(`{"game":"example","room":"`+c+`"}`)))
			code, msg := r.apiError(t)
			if r.status != 400 || code != "invalid_request" || !strings.Contains(msg, "never contain 0, O, 1, I or L") {
				t.Errorf("room %s: %d %s %q, want 400 invalid_request naming 0, O, 1, I or L", c, r.status, code, msg)
			}
		}
		// A well-formed code of no live room is still 404.
		r := h.raw(post(addr, "/join", tok, []byte(`{"game":"example","room":"ZZZZ"}`)))
		if code, _ := r.apiError(t); r.status != 404 || code != "room_not_found" {
			t.Errorf("room ZZZZ: %d %s, want 404 room_not_found", r.status, code)
		}
	})

	t.Run("expires_at in one format", func(t *testing.T) {
		h := h.with(t)
		format := regexp.MustCompile(`"expires_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`)
		r := h.raw(post(addr, "/request_token", "", []byte(`{}`)))
		if r.status != 200 || !format.Match(r.body) {
			t.Errorf("/request_token: %d %s, want expires_at in RFC 3339 UTC whole seconds", r.status, r.body)
		}
		r = h.raw(post(addr, "/join", tok, []byte(`{"game":"example"}`)))
		if r.status != 200 || !format.Match(r.body) {
			t.Errorf("/join: %d %s, want expires_at in RFC 3339 UTC whole seconds", r.status, r.body)
		}
	})
}

// TestClientIPHeaderAttack: behind --trusted-proxies only the header named by
// --client-ip-header is believed. A client-sent CF-Connecting-IP passed through by a proxy that
// appends X-Forwarded-For correctly buys no new quota, and the other way round.
func TestClientIPHeaderAttack(t *testing.T) {
	tokenRequest := func(addr string, headers ...string) string {
		return "POST /request_token HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 0\r\nConnection: close\r\n" +
			strings.Join(headers, "\r\n") + "\r\n\r\n"
	}
	statuses := func(h *harness, reqs ...string) []int {
		var got []int
		for _, r := range reqs {
			got = append(got, h.raw(r).status)
		}
		return got
	}
	trust := func(header string) func(*config.Config) {
		return func(c *config.Config) {
			c.TokenRate = 3
			c.TrustedProxies = []string{"127.0.0.1", "::1"}
			if header != "" {
				c.ClientIPHeader = header
			}
		}
	}

	t.Run("X-Forwarded-For (default): CF-Connecting-IP is not read", func(t *testing.T) {
		h := startUsher(t, trust("")).with(t)
		addr := h.app.PublicAddr()
		var reqs []string
		for i := range 4 {
			// The client forges CF-Connecting-IP and X-Forwarded-For; the proxy appends the
			// address it saw (203.0.113.5) and passes CF-Connecting-IP through.
			reqs = append(reqs, tokenRequest(addr, fmt.Sprintf("CF-Connecting-IP: 198.51.100.%d", i+1),
				fmt.Sprintf("X-Forwarded-For: 192.0.2.%d, 203.0.113.5", i+1)))
		}
		if got := statuses(h, reqs...); fmt.Sprint(got) != "[200 200 200 429]" {
			t.Errorf("one client forging CF-Connecting-IP: %v, want [200 200 200 429]", got)
		}
		// Another client, as the proxy saw it, has its own quota.
		if got := statuses(h, tokenRequest(addr, "X-Forwarded-For: 203.0.113.6")); got[0] != 200 {
			t.Errorf("another client: %v, want 200", got)
		}
	})

	t.Run("CF-Connecting-IP: X-Forwarded-For is not read", func(t *testing.T) {
		h := startUsher(t, trust("CF-Connecting-IP")).with(t)
		addr := h.app.PublicAddr()
		var reqs []string
		for i := range 4 {
			reqs = append(reqs, tokenRequest(addr, "CF-Connecting-IP: 203.0.113.5", fmt.Sprintf("X-Forwarded-For: 192.0.2.%d", i+1)))
		}
		if got := statuses(h, reqs...); fmt.Sprint(got) != "[200 200 200 429]" {
			t.Errorf("one client forging X-Forwarded-For: %v, want [200 200 200 429]", got)
		}
		if got := statuses(h, tokenRequest(addr, "CF-Connecting-IP: 203.0.113.6")); got[0] != 200 {
			t.Errorf("another client: %v, want 200", got)
		}
		// A value that is not one IP address names no one: the peer (the proxy) is the client,
		// so garbage cannot mint fresh keys.
		var garbage []string
		for i := range 4 {
			garbage = append(garbage, tokenRequest(addr, fmt.Sprintf("CF-Connecting-IP: 203.0.113.%d, 203.0.113.%d", i+10, i+20)))
		}
		if got := statuses(h, garbage...); fmt.Sprint(got) != "[200 200 200 429]" {
			t.Errorf("CF-Connecting-IP lists: %v, want [200 200 200 429] (all counted as the proxy)", got)
		}
	})
}

// TestSlowRequestGets408: a request not fully received within the read timeout (10s, headers
// and body) is answered 408 invalid_request in the API's JSON error shape, then closed.
func TestSlowRequestGets408(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10s read timeout; skipped with -short")
	}
	h := startUsher(t, nil)
	addr := h.app.PublicAddr()
	for name, partial := range map[string]string{
		"headers never end": "GET /games HTTP/1.1\r\nHost: " + addr + "\r\nX-Slow: 1\r\n",
		"body never ends":   "POST /request_token HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 100\r\n\r\n{",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			conn.SetDeadline(start.Add(20 * time.Second))
			if _, err := io.WriteString(conn, partial); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var e apiError
			if resp.StatusCode != 408 || json.Unmarshal(body, &e) != nil || e.Error.Code != "invalid_request" {
				t.Errorf("after %s: %d %s, want 408 invalid_request", time.Since(start).Round(time.Millisecond), resp.StatusCode, body)
			}
			if d := time.Since(start); d < 9*time.Second {
				t.Errorf("answered after %s, before the 10s read timeout", d)
			}
		})
	}
}
