package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests run the client against literal answers recorded in the Agones reference
// (AGONES.md §5), not against sdktest, so a bug shared by the fake and the client shows.

// gatewayGameServer is the GameServer JSON of AGONES.md §5.2, as the gateway returns it.
const gatewayGameServer = `{"object_meta":{"name":"ws-game-x7k2p-9bq4d","namespace":"default","uid":"...","resource_version":"123","generation":"1",
  "creation_timestamp":"1767261600","deletion_timestamp":"0","annotations":{},"labels":{"agones.dev/fleet":"ws-game"}},
 "spec":{"health":{"disabled":false,"period_seconds":5,"failure_threshold":3,"initial_delay_seconds":5}},
 "status":{"state":"Allocated","address":"203.0.113.10","addresses":[{"type":"ExternalIP","address":"203.0.113.10"}],
  "ports":[{"name":"ws","port":7203}],"players":null,
  "counters":{"sessions":{"count":"0","capacity":"4"}},"lists":{"players":{"capacity":"8","values":["player-1"]}}}}`

var wantGameServer = GameServer{
	ObjectMeta: ObjectMeta{
		Name: "ws-game-x7k2p-9bq4d", Namespace: "default", UID: "...", ResourceVersion: "123", Generation: 1,
		CreationTimestamp: 1767261600, Annotations: map[string]string{}, Labels: map[string]string{"agones.dev/fleet": "ws-game"},
	},
	Spec: Spec{Health: Health{PeriodSeconds: 5, FailureThreshold: 3, InitialDelaySeconds: 5}},
	Status: Status{
		State: "Allocated", Address: "203.0.113.10", Addresses: []Address{{Type: "ExternalIP", Address: "203.0.113.10"}},
		Ports:    []Port{{Name: "ws", Port: 7203}},
		Counters: map[string]CounterStatus{"sessions": {Count: 0, Capacity: 4}},
		Lists:    map[string]ListStatus{"players": {Capacity: 8, Values: []string{"player-1"}}},
	},
}

type recorded struct {
	Method, Path, Body string
}

// literalGateway answers each "METHOD /path" with a fixed status and body, and records requests.
type literalGateway struct {
	mu      sync.Mutex
	answers map[string]answer
	got     []recorded
}

type answer struct {
	status int
	body   string
}

func startLiteral(tb testing.TB, answers map[string]answer) (*Client, *literalGateway) {
	tb.Helper()
	g := &literalGateway{answers: answers}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.got = append(g.got, recorded{r.Method, r.URL.Path, string(b)})
		a, ok := g.answers[r.Method+" "+r.URL.Path]
		g.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"code":5,"message":"Not Found","details":[]}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	tb.Cleanup(srv.Close)
	return New(srv.URL+"/", srv.Client()), g
}

func (g *literalGateway) requests() []recorded {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recorded(nil), g.got...)
}

func TestGameServerDecodesGatewayJSON(t *testing.T) {
	c, _ := startLiteral(t, map[string]answer{"GET /gameserver": {200, gatewayGameServer}})
	got, err := c.GameServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&wantGameServer, got); diff != "" {
		t.Errorf("GameServer (-want +got):\n%s", diff)
	}
}

func TestGameServerAcceptsLowerCamelKeys(t *testing.T) {
	const camel = `{"objectMeta":{"name":"gs","resourceVersion":"9","creationTimestamp":12,"deletionTimestamp":"0","labels":{"a":"b"}},
		"spec":{"health":{"periodSeconds":5,"failureThreshold":3,"initialDelaySeconds":7}},
		"status":{"state":"Ready","lists":{"players":{"capacity":8,"values":null}}}}`
	var got GameServer
	if err := json.Unmarshal([]byte(camel), &got); err != nil {
		t.Fatal(err)
	}
	want := GameServer{
		ObjectMeta: ObjectMeta{Name: "gs", ResourceVersion: "9", CreationTimestamp: 12, Labels: map[string]string{"a": "b"}},
		Spec:       Spec{Health: Health{PeriodSeconds: 5, FailureThreshold: 3, InitialDelaySeconds: 7}},
		Status:     Status{State: "Ready", Lists: map[string]ListStatus{"players": {Capacity: 8}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GameServer (-want +got):\n%s", diff)
	}
}

func TestInt64(t *testing.T) {
	tests := []struct {
		in      string
		want    Int64
		wantErr bool
	}{
		{in: `"3"`, want: 3},
		{in: `3`, want: 3},
		{in: `"-42"`, want: -42},
		{in: `null`, want: 0},
		{in: `"9223372036854775807"`, want: 9223372036854775807},
		{in: `1e3`, want: 1000},
		{in: `"x"`, wantErr: true},
		{in: `1.5`, wantErr: true},
		{in: `true`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Int64(7)
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("Unmarshal(%s) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
	b, err := json.Marshal(Int64(-5))
	if err != nil || string(b) != `"-5"` {
		t.Errorf(`Marshal(-5) = %s, %v; want "-5"`, b, err)
	}
}

// TestCallsSendWhatTheGatewayExpects checks the method, path and body of every call.
func TestCallsSendWhatTheGatewayExpects(t *testing.T) {
	ok := answer{200, `{}`}
	list := answer{200, `{"name":"players","capacity":"8","values":["a"]}`}
	counter := answer{200, `{"name":"rooms","count":"1","capacity":"10"}`}
	c, g := startLiteral(t, map[string]answer{
		"POST /ready": ok, "POST /health": ok, "POST /shutdown": ok, "POST /allocate": ok, "POST /reserve": ok,
		"PUT /metadata/label": ok, "PUT /metadata/annotation": ok,
		"GET /v1beta1/lists/players": list, "POST /v1beta1/lists/players:addValue": list,
		"POST /v1beta1/lists/players:removeValue": list,
		"GET /v1beta1/counters/rooms":             counter, "PATCH /v1beta1/counters/rooms": counter,
	})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want recorded
	}{
		{"ready", func() error { return c.Ready(ctx) }, recorded{"POST", "/ready", `{}`}},
		// Health needs a non-empty body: the gateway answers 400 to an empty one.
		{"health", func() error { return c.Health(ctx) }, recorded{"POST", "/health", `{}`}},
		{"shutdown", func() error { return c.Shutdown(ctx) }, recorded{"POST", "/shutdown", `{}`}},
		{"allocate", func() error { return c.Allocate(ctx) }, recorded{"POST", "/allocate", `{}`}},
		{"reserve rounds up", func() error { return c.Reserve(ctx, 1500*time.Millisecond) },
			recorded{"POST", "/reserve", `{"seconds":"2"}`}},
		{"reserve forever", func() error { return c.Reserve(ctx, 0) }, recorded{"POST", "/reserve", `{"seconds":"0"}`}},
		{"label", func() error { return c.SetLabel(ctx, "room", "K7QX") },
			recorded{"PUT", "/metadata/label", `{"key":"room","value":"K7QX"}`}},
		{"annotation", func() error { return c.SetAnnotation(ctx, "k", "v") },
			recorded{"PUT", "/metadata/annotation", `{"key":"k","value":"v"}`}},
		{"get list", func() error { _, err := c.GetList(ctx, "players"); return err },
			recorded{"GET", "/v1beta1/lists/players", ``}},
		{"add value", func() error { _, err := c.AddListValue(ctx, "players", "p-1"); return err },
			recorded{"POST", "/v1beta1/lists/players:addValue", `{"value":"p-1"}`}},
		{"remove value", func() error { _, err := c.RemoveListValue(ctx, "players", "p-1"); return err },
			recorded{"POST", "/v1beta1/lists/players:removeValue", `{"value":"p-1"}`}},
		{"get counter", func() error { _, err := c.GetCounter(ctx, "rooms"); return err },
			recorded{"GET", "/v1beta1/counters/rooms", ``}},
		// countDiff, spelt so: the gateway ignores count_diff.
		{"update counter", func() error { _, err := c.UpdateCounter(ctx, "rooms", -1); return err },
			recorded{"PATCH", "/v1beta1/counters/rooms", `{"countDiff":"-1"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(g.requests())
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			reqs := g.requests()
			if len(reqs) != before+1 {
				t.Fatalf("%d requests, want 1", len(reqs)-before)
			}
			if diff := cmp.Diff(tt.want, reqs[before]); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
	if err := c.Reserve(ctx, -time.Second); err == nil {
		t.Error("Reserve(-1s) succeeded, want an error")
	}
}

func TestListAndCounterDecode(t *testing.T) {
	c, _ := startLiteral(t, map[string]answer{
		"GET /v1beta1/lists/players":   {200, `{"name":"players","capacity":"8","values":["a"]}`},
		"GET /v1beta1/counters/rooms":  {200, `{"name":"rooms","count":"1","capacity":"10"}`},
		"GET /v1beta1/lists/empty":     {200, `{"name":"","capacity":"0","values":[]}`},
		"PATCH /v1beta1/counters/room": {200, "{\n \"name\": \"room\",\n \"count\": 2,\n \"capacity\": \"10\"\n}"},
	})
	ctx := context.Background()
	l, err := c.GetList(ctx, "players")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&List{Name: "players", Capacity: 8, Values: []string{"a"}}, l); diff != "" {
		t.Errorf("GetList (-want +got):\n%s", diff)
	}
	if !l.Contains("a") || l.Contains("b") {
		t.Errorf("Contains: a=%v b=%v, want true false", l.Contains("a"), l.Contains("b"))
	}
	cn, err := c.GetCounter(ctx, "rooms")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Counter{Name: "rooms", Count: 1, Capacity: 10}, cn); diff != "" {
		t.Errorf("GetCounter (-want +got):\n%s", diff)
	}
	cn, err = c.UpdateCounter(ctx, "room", 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Counter{Name: "room", Count: 2, Capacity: 10}, cn); diff != "" {
		t.Errorf("UpdateCounter (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name                         string
		status                       int
		body                         string
		want                         Error
		notFound, exists, outOfRange bool
	}{
		{
			name: "list not found", status: 500,
			body:     `{"code":2,"message":"not found. players List not found","details":[]}`,
			want:     Error{HTTPStatus: 500, Code: 2, Message: "not found. players List not found"},
			notFound: true,
		},
		{
			name: "already exists", status: 500,
			body:   `{"code":2, "message":"already exists. Value: p1 already in List: players", "details":[]}`,
			want:   Error{HTTPStatus: 500, Code: 2, Message: "already exists. Value: p1 already in List: players"},
			exists: true,
		},
		{
			name: "out of range", status: 500,
			body:       `{"code":2,"message":"out of range. No available capacity. Current Capacity: 2, List Size: 2","details":[]}`,
			want:       Error{HTTPStatus: 500, Code: 2, Message: "out of range. No available capacity. Current Capacity: 2, List Size: 2"},
			outOfRange: true,
		},
		{
			name: "a later Agones with real codes", status: 404,
			body:     `{"code":5,"message":"not found. players List not found","details":[]}`,
			want:     Error{HTTPStatus: 404, Code: 5, Message: "not found. players List not found"},
			notFound: true,
		},
		{
			// The gateway's own 404 for an unknown route is not a missing list value.
			name: "unknown route", status: 404,
			body: `{"code":5,"message":"Not Found","details":[]}`,
			want: Error{HTTPStatus: 404, Code: 5, Message: "Not Found"},
		},
		{
			name: "bad request", status: 400,
			body: `{"code":3,"message":"unexpected EOF","details":[]}`,
			want: Error{HTTPStatus: 400, Code: 3, Message: "unexpected EOF"},
		},
		{
			name: "plain text", status: 500,
			body: "Internal Server Error\n",
			want: Error{HTTPStatus: 500, Message: "Internal Server Error"},
		},
		{
			name: "empty body", status: 503,
			want: Error{HTTPStatus: 503, Message: "Service Unavailable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := startLiteral(t, map[string]answer{"POST /v1beta1/lists/players:addValue": {tt.status, tt.body}})
			_, err := c.AddListValue(context.Background(), "players", "p1")
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("Error (-want +got):\n%s", diff)
			}
			wrapped := fmt.Errorf("add: %w", err)
			if g := IsNotFound(wrapped); g != tt.notFound {
				t.Errorf("IsNotFound = %v, want %v", g, tt.notFound)
			}
			if g := IsAlreadyExists(wrapped); g != tt.exists {
				t.Errorf("IsAlreadyExists = %v, want %v", g, tt.exists)
			}
			if g := IsOutOfRange(wrapped); g != tt.outOfRange {
				t.Errorf("IsOutOfRange = %v, want %v", g, tt.outOfRange)
			}
		})
	}
	if IsNotFound(errors.New("not found")) || IsNotFound(nil) {
		t.Error("IsNotFound is true for an error that is not an *Error")
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := New(url, nil).Ready(context.Background())
	var e *Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("Ready on a closed port = %v, want a transport error", err)
	}
}

// streamGateway answers /watch/gameserver with lines, flushing each, then waits for hold.
func streamGateway(tb testing.TB, status int, lines []string, hold <-chan struct{}) *Client {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/watch/gameserver" || r.Method != "GET" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		for _, l := range lines {
			_, _ = io.WriteString(w, l)
			w.(http.Flusher).Flush()
		}
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}))
	tb.Cleanup(srv.Close)
	return New(srv.URL, nil)
}

func TestWatchGameServer(t *testing.T) {
	second := strings.Replace(gatewayGameServer, `"resource_version":"123"`, `"resource_version":"124"`, 1)
	tests := []struct {
		name     string
		status   int
		lines    []string
		wantRV   []string
		wantErr  error
		wantCode int
	}{
		{
			name:    "results then end",
			status:  200,
			lines:   []string{`{"result":` + gatewayGameServer + "}\n", `{"result": ` + second + " }\n"},
			wantRV:  []string{"123", "124"},
			wantErr: ErrStreamEnded,
		},
		{
			name:   "error line",
			status: 200,
			lines: []string{`{"result":` + gatewayGameServer + "}\n",
				`{"error":{"code":14,"message":"sidecar stopping","details":[]}}` + "\n"},
			wantRV:   []string{"123"},
			wantCode: 14,
		},
		{
			name:     "grpc-gateway v1 error line",
			status:   200,
			lines:    []string{`{"error":{"grpc_code":2,"http_code":500,"message":"boom","http_status":"Internal Server Error"}}` + "\n"},
			wantCode: 2,
		},
		{
			name:     "not 200",
			status:   503,
			lines:    []string{`{"code":14,"message":"unavailable","details":[]}`},
			wantCode: 14,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := streamGateway(t, tt.status, tt.lines, nil)
			var got []string
			err := c.WatchGameServer(context.Background(), func(gs *GameServer) {
				got = append(got, gs.ObjectMeta.ResourceVersion)
			})
			if diff := cmp.Diff(tt.wantRV, got); diff != "" {
				t.Errorf("resource versions seen (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantCode != 0 {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.wantCode {
					t.Errorf("error %v, want *Error with code %d", err, tt.wantCode)
				}
			}
		})
	}
}

func TestWatchGameServerStopsWithContext(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	c := streamGateway(t, 200, []string{`{"result":` + gatewayGameServer + "}\n"}, hold)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.WatchGameServer(ctx, func(gs *GameServer) { got <- gs.Status.State })
	}()
	select {
	case s := <-got:
		if s != "Allocated" {
			t.Errorf("state %q, want Allocated", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no GameServer from the stream")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WatchGameServer = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchGameServer did not return after cancel")
	}
}

func TestURLFromEnv(t *testing.T) {
	tests := []struct {
		env     string
		want    string
		wantErr bool
	}{
		{env: "", want: "http://localhost:9358"},
		{env: "9400", want: "http://localhost:9400"},
		{env: "x", wantErr: true},
		{env: "70000", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			got, err := URLFromEnv(func(k string) string {
				if k == EnvHTTPPort {
					return tt.env
				}
				return ""
			})
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("URLFromEnv(%q) = %q, %v; want %q, error %v", tt.env, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
