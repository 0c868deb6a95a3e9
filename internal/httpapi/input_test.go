package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

func TestRoomCode(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{`"K7QX"`, "K7QX", true},
		{`" k7qx "`, "K7QX", true},
		{`"ABCDE"`, "ABCDE", true},
		{`null`, "", false},
		{`7`, "", false},
		{`{}`, "", false},
		{`["K7QX"]`, "", false},
		{`true`, "", false},
		{`""`, "", false},
		{`"AB"`, "", false},
		{`"ABCDEF"`, "", false},
		{`"ZZZO"`, "", false},
		{`"Z1IL"`, "", false},
		{`"zzz0"`, "", false},
		{`"ab-c"`, "", false},
		{`"ÄBCD"`, "", false},
	}
	for _, tt := range tests {
		got, err := roomCode(json.RawMessage(tt.raw))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("roomCode(%s) = %q, %v; want %q ok=%v", tt.raw, got, err, tt.want, tt.ok)
			continue
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Code != CodeInvalidRequest || !strings.Contains(e.Message, "0, O, 1, I or L") {
				t.Errorf("roomCode(%s) error %v, want 400 invalid_request naming 0, O, 1, I or L", tt.raw, err)
			}
		}
	}
}

func TestLoneSurrogate(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`{"name":"Alice"}`, false},
		{`{"name":"\ud83c\udfae"}`, false}, // a pair: 🎮
		{`{"name":"\uD83C\uDFAE"}`, false},
		{`{"name":"\u00e9\n\"\\"}`, false},
		{`{"name":"\\ud800"}`, false}, // an escaped backslash, then plain text
		{`{"name":"\ud800"}`, true},
		{`{"name":"\uDBFF"}`, true},
		{`{"name":"\udc00"}`, true},
		{`{"name":"\ud800\u0041"}`, true},
		{`{"name":"\ud800\ud800"}`, true},
		{`{"name":"a\udfffb"}`, true},
		{`{"\ud800":"x"}`, true},
		{`{"name":"\ud800`, true},
		{`{"name":"\u12"}`, false}, // malformed: left to the decoder
	}
	for _, tt := range tests {
		if got := loneSurrogate([]byte(tt.body)); got != tt.want {
			t.Errorf("loneSurrogate(%s) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestTimestampWholeSecondsUTC(t *testing.T) {
	at := time.Date(2026, 11, 26, 13, 0, 15, 999_999_999, time.FixedZone("CET", 3600))
	b, err := json.Marshal(struct {
		T timestamp `json:"t"`
	}{timestamp(at)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"t":"2026-11-26T12:00:15Z"}`; got != want {
		t.Errorf("timestamp JSON = %s, want %s", got, want)
	}
}

// TestCheckUpgrade runs the handshake check through a Fiber app; the raw-socket attacks on a
// running Usher are in test/e2e (TestConnectHandshakeAttacks).
func TestCheckUpgrade(t *testing.T) {
	app := fiber.New(fiber.Config{ErrorHandler: (&Server{}).handleError})
	app.All("/connect", func(c *fiber.Ctx) error {
		if e := checkUpgrade(c); e != nil {
			return e
		}
		return c.SendString("ok")
	})
	good := func() http.Header {
		return http.Header{
			"Upgrade":               {"websocket"},
			"Connection":            {"Upgrade"},
			"Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		}
	}
	tests := []struct {
		name        string
		method      string
		edit        func(http.Header)
		ok          bool
		wantVersion bool
	}{
		{name: "complete", edit: func(http.Header) {}, ok: true},
		{name: "connection list, any case", edit: func(h http.Header) { h.Set("Connection", "keep-alive, UPGRADE") }, ok: true},
		{name: "upgrade any case", edit: func(h http.Header) { h.Set("Upgrade", "WebSocket") }, ok: true},
		{name: "POST", method: "POST", edit: func(http.Header) {}},
		{name: "no Upgrade", edit: func(h http.Header) { h.Del("Upgrade") }},
		{name: "Upgrade h2c", edit: func(h http.Header) { h.Set("Upgrade", "h2c") }},
		{name: "Connection keep-alive only", edit: func(h http.Header) { h.Set("Connection", "keep-alive") }},
		{name: "Connection upgrader", edit: func(h http.Header) { h.Set("Connection", "upgrader") }},
		{name: "version 8", edit: func(h http.Header) { h.Set("Sec-Websocket-Version", "8") }, wantVersion: true},
		{name: "no version", edit: func(h http.Header) { h.Del("Sec-Websocket-Version") }, wantVersion: true},
		{name: "two versions", edit: func(h http.Header) { h.Add("Sec-Websocket-Version", "8") }, wantVersion: true},
		{name: "no key", edit: func(h http.Header) { h.Del("Sec-Websocket-Key") }},
		{name: "key x", edit: func(h http.Header) { h.Set("Sec-Websocket-Key", "x") }},
		{name: "key of 15 bytes", edit: func(h http.Header) { h.Set("Sec-Websocket-Key", "AAAAAAAAAAAAAAAAAAAA") }},
		{name: "key of 17 bytes", edit: func(h http.Header) { h.Set("Sec-Websocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA=") }},
		{name: "key unpadded", edit: func(h http.Header) { h.Set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ") }},
		{name: "key url alphabet", edit: func(h http.Header) { h.Set("Sec-Websocket-Key", "____________________-w==") }},
		{name: "key non-canonical padding bits", edit: func(h http.Header) { h.Set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZR==") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httpReq("/connect")
			if tt.method != "" {
				req.Method = tt.method
			}
			req.Header = good()
			tt.edit(req.Header)
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tt.ok {
				if resp.StatusCode != 200 {
					t.Errorf("status %d, want the handshake accepted", resp.StatusCode)
				}
				return
			}
			var body errorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 400 || body.Error.Code != CodeInvalidRequest {
				t.Errorf("status %d code %q (%v), want 400 invalid_request", resp.StatusCode, body.Error.Code, err)
			}
			if got := resp.Header.Get("Sec-WebSocket-Version"); (got == "13") != tt.wantVersion {
				t.Errorf("Sec-WebSocket-Version %q in the answer, want 13: %v", got, tt.wantVersion)
			}
		})
	}
}
