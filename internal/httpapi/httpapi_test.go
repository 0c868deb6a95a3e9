package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/redis"
	"github.com/usher-gg/usher/internal/ticket"
)

// TestErrorTable pins the contract: each expected outcome maps to one status and code.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
		retry  bool
	}{
		{fmt.Errorf("verify: %w", auth.ErrInvalidToken), 401, "unauthorized", false},
		{match.ErrInvalidRoomCode, 400, "invalid_request", false},
		{fmt.Errorf("game x: %w", match.ErrUnknownGame), 404, "unknown_game", false},
		{match.ErrRoomNotFound, 404, "room_not_found", false},
		{match.ErrRoomFull, 409, "room_full", false},
		{fmt.Errorf("create: %w", match.ErrNoCapacity), 503, "no_capacity", true},
		{ticket.ErrInvalid, 401, "ticket_invalid", false},
		{fmt.Errorf("issue ticket: %w", ticket.ErrStoreFull), 503, "unavailable", true},
		{context.DeadlineExceeded, 503, "unavailable", true},
		{fmt.Errorf("move hold: %w: %w", redis.ErrUnavailable, errors.New("dial tcp: refused")), 503, "unavailable", true},
		{fiber.ErrNotFound, 404, "not_found", false},
		{fiber.ErrMethodNotAllowed, 405, "method_not_allowed", false},
		{fiber.ErrRequestEntityTooLarge, 413, "request_too_large", false},
		{fiber.ErrRequestHeaderFieldsTooLarge, 431, "request_too_large", false},
		{&Error{Status: 429, Code: "rate_limited", Message: "slow"}, 429, "rate_limited", false},
		{errors.New("boom"), 500, "internal", false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			got := errorFor(tt.err)
			if got.Status != tt.status || got.Code != tt.code || got.Message == "" {
				t.Errorf("errorFor(%v) = %d %s %q, want %d %s", tt.err, got.Status, got.Code, got.Message, tt.status, tt.code)
			}
			if (got.RetryAfter > 0) != tt.retry {
				t.Errorf("errorFor(%v) Retry-After %s, want set=%v", tt.err, got.RetryAfter, tt.retry)
			}
		})
	}
	// A 500 never leaks the internal error text.
	if got := errorFor(errors.New("dial tcp 10.0.0.7:7000: secret detail")); got.Message != "internal error" {
		t.Errorf("500 message %q leaks detail", got.Message)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Alice", "Alice", true},
		{"  Bob  ", "Bob", true},
		{"Zoë 🎮", "Zoë 🎮", true},
		{"", "", true},
		{"日本語の名前", "日本語の名前", true},
		{"a\nb", "", false},
		{"a\x00b", "", false},
		{"abc\u202edef", "", false}, // right-to-left override
		{"zero\u200bwidth", "", false},
		{string([]byte{0xff, 0xfe}), "", false},
		{"12345678901234567890123456789012", "12345678901234567890123456789012", true},
		{"123456789012345678901234567890123", "", false},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestGuestName(t *testing.T) {
	if got := guestName("p_abcdefghijklmnopqrst"); got != "Guest-QRST" {
		t.Errorf("guestName = %q", got)
	}
}

// TestHandleErrorShape checks the wire shape through a real Fiber app.
func TestHandleErrorShape(t *testing.T) {
	s := &Server{}
	app := fiber.New(fiber.Config{ErrorHandler: s.handleError})
	app.Get("/full", func(*fiber.Ctx) error { return match.ErrNoCapacity })
	app.Get("/auth", func(*fiber.Ctx) error { return auth.ErrInvalidToken })
	resp, err := app.Test(httpReq("/full"), -1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("no_capacity: %d Retry-After %q type %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
	}
	resp, err = app.Test(httpReq("/auth"), -1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("unauthorized: %d WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func httpReq(path string) *http.Request {
	r, _ := http.NewRequest("GET", "http://usher.test"+path, nil)
	return r
}
