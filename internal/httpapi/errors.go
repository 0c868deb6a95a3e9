package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/redis"
	"github.com/usher-gg/usher/internal/ticket"
)

// Error is an answer Usher gives on purpose: an HTTP status, a stable machine-readable code
// and a human message. Handlers return one (or a sentinel the table below knows) as an error.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sets Retry-After when > 0
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The stable error codes of the public API (docs/api.md lists them).
const (
	CodeInvalidRequest    = "invalid_request"
	CodeUnauthorized      = "unauthorized"
	CodeUnknownGame       = "unknown_game"
	CodeRoomNotFound      = "room_not_found"
	CodeRoomFull          = "room_full"
	CodeRateLimited       = "rate_limited"
	CodeNoCapacity        = "no_capacity"
	CodeTicketInvalid     = "ticket_invalid"
	CodeOriginForbidden   = "origin_forbidden"
	CodeServerUnavailable = "server_unavailable"
	CodeNotFound          = "not_found"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeTooLarge          = "request_too_large"
	CodeUnavailable       = "unavailable"
	CodeInternal          = "internal"
)

func invalid(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: msg}
}

// errorFor is the one table from errors to answers.
func errorFor(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var fe *fiber.Error
	switch {
	case errors.Is(err, auth.ErrInvalidToken):
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing, invalid or expired token: send Authorization: Bearer <token from POST /request_token>"}
	case errors.Is(err, match.ErrInvalidRoomCode):
		return invalid(err.Error())
	case errors.Is(err, match.ErrUnknownGame):
		return &Error{Status: http.StatusNotFound, Code: CodeUnknownGame, Message: "no such game: see GET /games"}
	case errors.Is(err, match.ErrRoomNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeRoomNotFound, Message: "no live room with that code in this game"}
	case errors.Is(err, match.ErrRoomFull):
		return &Error{Status: http.StatusConflict, Code: CodeRoomFull, Message: "that room is full"}
	case errors.Is(err, match.ErrNoCapacity):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeNoCapacity, Message: "no game server is free right now; try again shortly", RetryAfter: 5 * time.Second}
	case errors.Is(err, ticket.ErrInvalid):
		return &Error{Status: http.StatusUnauthorized, Code: CodeTicketInvalid, Message: "ticket missing, unknown, expired or already used: join again for a new one"}
	case errors.Is(err, ticket.ErrStoreFull):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "too many pending connections; try again shortly", RetryAfter: 2 * time.Second}
	case errors.Is(err, redis.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "a shared store is unavailable; try again shortly", RetryAfter: 2 * time.Second}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the request took too long; try again", RetryAfter: time.Second}
	case errors.As(err, &fe):
		switch fe.Code {
		case fiber.StatusNotFound:
			return &Error{Status: fe.Code, Code: CodeNotFound, Message: "no such endpoint"}
		case fiber.StatusMethodNotAllowed:
			return &Error{Status: fe.Code, Code: CodeMethodNotAllowed, Message: "method not allowed on this endpoint"}
		case fiber.StatusRequestEntityTooLarge, fiber.StatusRequestHeaderFieldsTooLarge:
			return &Error{Status: fe.Code, Code: CodeTooLarge, Message: "request too large"}
		case fiber.StatusBadRequest:
			return invalid("malformed request")
		case fiber.StatusRequestTimeout:
			return &Error{Status: fe.Code, Code: CodeInvalidRequest, Message: "request timed out"}
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handleError is the Fiber ErrorHandler: every error answer of the public API goes through it.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	e := errorFor(err)
	if e.Status >= 500 && e.Code == CodeInternal {
		s.Log.LogAttrs(c.UserContext(), slog.LevelError, "request failed",
			slog.String("route", routeLabel(c)), slog.String("request_id", requestID(c)), slog.Any("err", err))
	}
	if e.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if e.Status == http.StatusUnauthorized && e.Code == CodeUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="usher"`)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(e.Status).JSON(errorBody{Error: errorDetail{Code: e.Code, Message: e.Message}})
}
