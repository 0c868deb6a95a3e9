// Package sdk is a client for the Agones SDK sidecar's HTTP gateway (the grpc-gateway in
// front of the SDK server, on localhost:$AGONES_SDK_HTTP_PORT in every game server pod).
//
// It is written from the Agones SDK swagger files and reference, not from Agones' Go module,
// and depends on the standard library only. The gateway speaks protobuf-JSON: responses use
// proto field names (snake_case), int64 values as strings and explicit zero values; errors are
// {"code", "message", "details"} with counter and list errors as HTTP 500 (see IsNotFound,
// IsAlreadyExists, IsOutOfRange).
//
// Lifecycle and metadata calls are queued by the sidecar: success means "accepted", and the
// GameServer changes shortly after (watch it with WatchGameServer). Counter and list changes
// are batched (about a second); their GET endpoints return the projected value.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvHTTPPort is the variable Agones sets in every container of a game server pod (but the
// sidecar's) to the SDK gateway's port.
const EnvHTTPPort = "AGONES_SDK_HTTP_PORT"

// DefaultHTTPPort is the gateway's port when spec.sdkServer.httpPort is not set.
const DefaultHTTPPort = 9358

const maxErrorBody = 64 << 10

// Client calls the SDK gateway. Its methods are safe for concurrent use. Calls are bounded
// by their contexts only: give each a deadline (GET calls block in the real sidecar until its
// GameServer cache has synced).
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the gateway at baseURL, e.g. http://localhost:9358. A nil hc uses
// a client without an overall timeout, which WatchGameServer needs.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc}
}

// FromEnv returns a client for the gateway of this pod: http://localhost:$AGONES_SDK_HTTP_PORT.
func FromEnv() (*Client, error) {
	u, err := URLFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(u, nil), nil
}

// URLFromEnv returns http://localhost:$AGONES_SDK_HTTP_PORT, read through getenv, or the
// default port 9358 when the variable is unset. The gateway binds localhost only.
func URLFromEnv(getenv func(string) string) (string, error) {
	s := getenv(EnvHTTPPort)
	if s == "" {
		return "http://localhost:" + strconv.Itoa(DefaultHTTPPort), nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("%s=%q: want a port number", EnvHTTPPort, s)
	}
	return "http://localhost:" + strconv.Itoa(p), nil
}

// Ready tells Agones the game server accepts players (Scheduled → RequestReady → Ready).
// Called on an Allocated server, it makes it Ready again for reuse.
func (c *Client) Ready(ctx context.Context) error { return c.do(ctx, "POST", "/ready", empty, nil) }

// Health sends one health ping. Send one at least every spec.health.periodSeconds, from the
// start of the process, or the GameServer becomes Unhealthy. The body is {}: the gateway
// rejects an empty one.
func (c *Client) Health(ctx context.Context) error { return c.do(ctx, "POST", "/health", empty, nil) }

// Shutdown tells Agones the game server is done: the GameServer moves to Shutdown and is deleted.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, "POST", "/shutdown", empty, nil)
}

// Allocate marks the GameServer Allocated by itself (without a GameServerAllocation).
func (c *Client) Allocate(ctx context.Context) error {
	return c.do(ctx, "POST", "/allocate", empty, nil)
}

// Reserve marks the GameServer Reserved for d (rounded up to whole seconds), after which it
// returns to Ready; d == 0 reserves it until the next state change.
func (c *Client) Reserve(ctx context.Context, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("reserve %v: negative duration", d)
	}
	secs := int64(math.Ceil(d.Seconds()))
	return c.do(ctx, "POST", "/reserve", map[string]Int64{"seconds": Int64(secs)}, nil)
}

// SetLabel sets the label agones.dev/sdk-<key> on the GameServer (the sidecar adds the prefix).
func (c *Client) SetLabel(ctx context.Context, key, value string) error {
	return c.do(ctx, "PUT", "/metadata/label", keyValue{key, value}, nil)
}

// SetAnnotation sets the annotation agones.dev/sdk-<key> on the GameServer.
func (c *Client) SetAnnotation(ctx context.Context, key, value string) error {
	return c.do(ctx, "PUT", "/metadata/annotation", keyValue{key, value}, nil)
}

// GameServer returns the GameServer as the sidecar currently sees it.
func (c *Client) GameServer(ctx context.Context) (*GameServer, error) {
	var gs GameServer
	if err := c.do(ctx, "GET", "/gameserver", nil, &gs); err != nil {
		return nil, err
	}
	return &gs, nil
}

// ErrStreamEnded is returned by WatchGameServer when the sidecar ends the stream.
var ErrStreamEnded = errors.New("agones sdk: watch stream ended")

// WatchGameServer streams the GameServer: fn is called with the current one at once, then
// after every change, until ctx is done (it then returns ctx.Err()), the stream ends
// (ErrStreamEnded), or the stream reports an error (*Error). Reconnecting is the caller's
// job. fn runs on the caller's goroutine and must not block for long.
func (c *Client) WatchGameServer(ctx context.Context, fn func(*GameServer)) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/watch/gameserver", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agones sdk: watch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	// The stream is newline-delimited JSON, one {"result": GameServer} or {"error": Status}
	// per line; a JSON decoder reads consecutive objects whatever the whitespace between.
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Result *GameServer  `json:"result"`
			Error  *streamError `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return ErrStreamEnded
			}
			return fmt.Errorf("agones sdk: watch: %w", err)
		}
		switch {
		case msg.Error != nil:
			return msg.Error.toError()
		case msg.Result != nil:
			fn(msg.Result)
		}
	}
}

// streamError is the error object of a gateway stream; grpc-gateway v1 used grpc_code and
// http_code, v2 code.
type streamError struct {
	Code       *int   `json:"code"`
	GRPCCode   *int   `json:"grpc_code"`
	HTTPCode   int    `json:"http_code"`
	Message    string `json:"message"`
	HTTPStatus string `json:"http_status"`
}

func (e *streamError) toError() *Error {
	out := &Error{HTTPStatus: e.HTTPCode, Message: e.Message}
	switch {
	case e.Code != nil:
		out.Code = *e.Code
	case e.GRPCCode != nil:
		out.Code = *e.GRPCCode
	}
	return out
}

// GetCounter returns the counter name (Beta CountsAndLists), with pending changes applied.
func (c *Client) GetCounter(ctx context.Context, name string) (*Counter, error) {
	var out Counter
	if err := c.do(ctx, "GET", "/v1beta1/counters/"+url.PathEscape(name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateCounter adds countDiff (negative to subtract) to the counter name and returns the
// projected counter. A result outside [0, capacity] is an out of range error (IsOutOfRange).
func (c *Client) UpdateCounter(ctx context.Context, name string, countDiff int64) (*Counter, error) {
	var out Counter
	// The field is countDiff: the gateway silently ignores count_diff.
	body := map[string]Int64{"countDiff": Int64(countDiff)}
	if err := c.do(ctx, "PATCH", "/v1beta1/counters/"+url.PathEscape(name), body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetList returns the list name (Beta CountsAndLists), with pending changes applied.
func (c *Client) GetList(ctx context.Context, name string) (*List, error) {
	var out List
	if err := c.do(ctx, "GET", "/v1beta1/lists/"+url.PathEscape(name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddListValue adds value to the list name and returns the projected list. A value already
// there is IsAlreadyExists; a full list is IsOutOfRange; an unknown list is IsNotFound.
func (c *Client) AddListValue(ctx context.Context, name, value string) (*List, error) {
	return c.listValue(ctx, name, ":addValue", value)
}

// RemoveListValue removes value from the list name and returns the projected list. A value
// (or list) that is not there is IsNotFound.
func (c *Client) RemoveListValue(ctx context.Context, name, value string) (*List, error) {
	return c.listValue(ctx, name, ":removeValue", value)
}

func (c *Client) listValue(ctx context.Context, name, op, value string) (*List, error) {
	var out List
	body := map[string]string{"value": value}
	if err := c.do(ctx, "POST", "/v1beta1/lists/"+url.PathEscape(name)+op, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

var empty = struct{}{}

// do sends one unary call. in is JSON-encoded when not nil; out, when not nil, receives the
// decoded answer.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agones sdk: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("agones sdk: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// readError turns a non-2xx answer into an *Error.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{HTTPStatus: resp.StatusCode}
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &st) == nil && (st.Code != 0 || st.Message != "") {
		e.Code, e.Message = st.Code, st.Message
	} else {
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return e
}
