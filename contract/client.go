package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client speaks the bridge protocol for a game server written in Go.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the bridge at baseURL (the value of USHER_BRIDGE_URL).
// A nil hc uses a client with no overall timeout (calls are bounded by their contexts).
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bridge url %q: want http://host:port", baseURL)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: hc}, nil
}

// StatusError is a non-2xx answer from the bridge.
type StatusError struct {
	Status  int
	Code    string
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("bridge: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is lets errors.Is(err, ErrRoomFull) and ErrBadState work across the wire.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrRoomFull:
		return e.Code == "room_full"
	case ErrBadState:
		return e.Code == "bad_state"
	}
	return false
}

// Ready tells the bridge the game server accepts players.
func (c *Client) Ready(ctx context.Context) error { return c.post(ctx, PathReady, struct{}{}) }

// Heartbeat tells the bridge the game server is alive.
func (c *Client) Heartbeat(ctx context.Context) error { return c.post(ctx, PathHeartbeat, struct{}{}) }

// Shutdown tells the bridge the game server is done.
func (c *Client) Shutdown(ctx context.Context) error { return c.post(ctx, PathShutdown, struct{}{}) }

// PlayerConnected reports that a player's connection arrived. errors.Is(err, ErrRoomFull)
// means the player holds no seat and none is free: close that connection.
func (c *Client) PlayerConnected(ctx context.Context, player string) error {
	return c.post(ctx, PathConnected, PlayerRequest{Player: player})
}

// PlayerDisconnected reports that a player's connection ended, for reason: ReasonLeft, or
// ReasonLost to keep the seat for the reconnect grace (DisconnectReason picks it from the
// close code).
func (c *Client) PlayerDisconnected(ctx context.Context, player, reason string) error {
	return c.post(ctx, PathDisconnected, PlayerRequest{Player: player, Reason: reason})
}

// Allocation reads the current allocation.
func (c *Client) Allocation(ctx context.Context) (Allocation, error) {
	return c.getAllocation(ctx, PathAllocation)
}

// WaitAllocation blocks until the allocation's version differs from after, or wait passes
// (capped by the bridge at MaxWait), and returns the allocation then. A negative wait is 0.
func (c *Client) WaitAllocation(ctx context.Context, after uint64, wait time.Duration) (Allocation, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatUint(after, 10))
	q.Set("wait", strconv.FormatFloat(max(wait, 0).Seconds(), 'f', -1, 64))
	return c.getAllocation(ctx, PathAllocation+"?"+q.Encode())
}

func (c *Client) getAllocation(ctx context.Context, path string) (Allocation, error) {
	var a Allocation
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return a, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return a, fmt.Errorf("bridge allocation: %w", err)
	}
	defer resp.Body.Close()
	if err := checkStatus(resp); err != nil {
		return a, err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a); err != nil {
		return a, fmt.Errorf("bridge allocation: decode: %w", err)
	}
	return a, nil
}

func (c *Client) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := checkStatus(resp); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	return nil
}

func checkStatus(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	se := &StatusError{Status: resp.StatusCode}
	var eb ErrorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&eb); err == nil {
		se.Code, se.Message = eb.Error.Code, eb.Error.Message
	}
	return se
}
