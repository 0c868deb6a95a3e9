package sdk

import (
	"errors"
	"fmt"
	"strings"
)

// gRPC status codes the gateway puts in error bodies.
const (
	CodeUnknown         = 2
	CodeInvalidArgument = 3
	CodeNotFound        = 5
	CodeAlreadyExists   = 6
	CodeOutOfRange      = 11
	CodeUnavailable     = 14
)

// Error is an error answer from the SDK gateway: its HTTP status and the gRPC status in the
// body ({"code": 2, "message": "...", "details": []}). A body that is not JSON (a proxy, a
// crash) leaves Code 0 and puts the text in Message. For an error inside a WatchGameServer
// stream HTTPStatus is the status the stream reports, or 0.
type Error struct {
	HTTPStatus int
	Code       int
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("agones sdk: http %d, code %d: %s", e.HTTPStatus, e.Code, e.Message)
}

// The counter and list errors of the SDK server are plain Go errors, so the gateway returns
// them as HTTP 500 with gRPC code 2 (Unknown); only their message tells them apart. The
// helpers below match the message prefix, and also accept the specific gRPC code in case a
// later Agones returns it (the proto comments promise NOT_FOUND, ALREADY_EXISTS, OUT_OF_RANGE).
const (
	prefixNotFound      = "not found"
	prefixAlreadyExists = "already exists"
	prefixOutOfRange    = "out of range"
)

// IsNotFound reports whether err is the SDK's "not found" error: an unknown counter or list,
// or a list value that is not there.
func IsNotFound(err error) bool { return is(err, prefixNotFound, CodeNotFound) }

// IsAlreadyExists reports whether err is the SDK's "already exists" error: a list value that
// is already there.
func IsAlreadyExists(err error) bool { return is(err, prefixAlreadyExists, CodeAlreadyExists) }

// IsOutOfRange reports whether err is the SDK's "out of range" error: a full list, or a
// counter update outside [0, capacity].
func IsOutOfRange(err error) bool { return is(err, prefixOutOfRange, CodeOutOfRange) }

func is(err error, prefix string, code int) bool {
	var e *Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Message, prefix) {
		return false
	}
	// The gateway's own "Not Found" for an unknown route has a capital N and code 5 with
	// HTTP 404: the case-sensitive prefix keeps it out.
	return e.HTTPStatus == 500 || e.Code == code
}
