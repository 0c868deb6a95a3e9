package sdktest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests speak raw HTTP to the fake and check its answers against the gateway's
// documented wire format (AGONES.md §5), independently of package sdk.

type reply struct {
	status int
	body   map[string]any
}

func do(tb testing.TB, s *Server, method, path, body string) reply {
	tb.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, b, err)
	}
	return reply{resp.StatusCode, m}
}

func rpcErr(code int, msg string) map[string]any {
	return map[string]any{"code": float64(code), "message": msg, "details": []any{}}
}

func TestGameServerWireFormat(t *testing.T) {
	s := New(t, DefaultGameServer())
	got := do(t, s, "GET", "/gameserver", "")
	want := map[string]any{
		"object_meta": map[string]any{
			"name": "demo-ml6gc-55ngm", "namespace": "default", "uid": "7c0d5a4e-0000-4000-8000-000000000001",
			"resource_version": "1", "generation": "1", "creation_timestamp": "1767261600", "deletion_timestamp": "0",
			"annotations": map[string]any{"agones.dev/sdk-version": "1.57.0"},
			"labels":      map[string]any{"agones.dev/fleet": "demo", "agones.dev/gameserverset": "demo-ml6gc"},
		},
		"spec": map[string]any{"health": map[string]any{
			"disabled": false, "period_seconds": float64(5), "failure_threshold": float64(3), "initial_delay_seconds": float64(5),
		}},
		"status": map[string]any{
			"state": "Scheduled", "address": "10.0.0.5",
			"addresses": []any{
				map[string]any{"type": "InternalIP", "address": "10.0.0.5"},
				map[string]any{"type": "PodIP", "address": "10.244.0.7"},
			},
			"ports":    []any{map[string]any{"name": "ws", "port": float64(7777)}},
			"players":  nil,
			"counters": map[string]any{},
			"lists":    map[string]any{"players": map[string]any{"capacity": "8", "values": []any{}}},
		},
	}
	if diff := cmp.Diff(reply{200, want}, got, cmp.AllowUnexported(reply{})); diff != "" {
		t.Errorf("GET /gameserver (-want +got):\n%s", diff)
	}
}

func TestStateCalls(t *testing.T) {
	tests := []struct {
		name  string
		from  string
		path  string
		body  string
		want  string
		wantS int
	}{
		{name: "ready", from: "Scheduled", path: "/ready", body: "{}", want: "Ready", wantS: 200},
		{name: "ready, empty body", from: "Scheduled", path: "/ready", want: "Ready", wantS: 200},
		{name: "allocate", from: "Ready", path: "/allocate", body: "{}", want: "Allocated", wantS: 200},
		{name: "ready again reuses", from: "Allocated", path: "/ready", body: "{}", want: "Ready", wantS: 200},
		{name: "shutdown", from: "Allocated", path: "/shutdown", body: "{}", want: "Shutdown", wantS: 200},
		{name: "shutdown is terminal", from: "Shutdown", path: "/ready", body: "{}", want: "Shutdown", wantS: 200},
		{name: "unhealthy is terminal", from: "Unhealthy", path: "/allocate", body: "{}", want: "Unhealthy", wantS: 200},
		{name: "reserve", from: "Ready", path: "/reserve", body: `{"seconds":"0"}`, want: "Reserved", wantS: 200},
		{name: "bad json", from: "Scheduled", path: "/ready", body: "{", want: "Scheduled", wantS: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gs := DefaultGameServer()
			gs.State = tt.from
			s := New(t, gs)
			r := do(t, s, "POST", tt.path, tt.body)
			if r.status != tt.wantS {
				t.Errorf("status %d, want %d (%v)", r.status, tt.wantS, r.body)
			}
			if got := s.GameServer().State; got != tt.want {
				t.Errorf("state %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReserveReturnsToReady(t *testing.T) {
	gs := DefaultGameServer()
	gs.State = "Ready"
	s := New(t, gs)
	if r := do(t, s, "POST", "/reserve", `{"seconds": 1}`); r.status != 200 {
		t.Fatalf("reserve: %v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.GameServer().State != "Ready" {
		if time.Now().After(deadline) {
			t.Fatalf("state %q 5s after a 1s reserve, want Ready", s.GameServer().State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealth(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := New(t, DefaultGameServer(), WithClock(func() time.Time { return now }))
	if r := do(t, s, "POST", "/health", ""); r.status != 400 || r.body["code"] != float64(3) {
		t.Errorf("empty health body: %v, want 400 code 3", r)
	}
	if r := do(t, s, "POST", "/health", "{}"); r.status != 200 {
		t.Errorf("health {}: %v, want 200", r)
	}
	now = now.Add(time.Second)
	// A client stream over REST: two objects are two pings.
	if r := do(t, s, "POST", "/health", "{}\n{}"); r.status != 200 {
		t.Errorf("health {}{}: %v, want 200", r)
	}
	want := []time.Time{now.Add(-time.Second), now, now}
	if diff := cmp.Diff(want, s.Pings()); diff != "" {
		t.Errorf("pings (-want +got):\n%s", diff)
	}
}

func TestMetadata(t *testing.T) {
	s := New(t, DefaultGameServer())
	tests := []struct {
		path, body string
		wantStatus int
	}{
		{"/metadata/label", `{"key":"room","value":"K7QX"}`, 200},
		{"/metadata/annotation", `{"key":"note","value":"any text at all"}`, 200},
		{"/metadata/label", `{"key":"bad key","value":"x"}`, 400},
		{"/metadata/label", `{"key":"ok","value":"bad value!"}`, 400},
	}
	for _, tt := range tests {
		if r := do(t, s, "PUT", tt.path, tt.body); r.status != tt.wantStatus {
			t.Errorf("PUT %s %s: %v, want %d", tt.path, tt.body, r, tt.wantStatus)
		}
	}
	gs := s.GameServer()
	if got := gs.Labels["agones.dev/sdk-room"]; got != "K7QX" {
		t.Errorf("label agones.dev/sdk-room = %q, want K7QX (the sidecar prefixes keys)", got)
	}
	if got := gs.Annotations["agones.dev/sdk-note"]; got != "any text at all" {
		t.Errorf("annotation agones.dev/sdk-note = %q", got)
	}
}

func TestListRules(t *testing.T) {
	gs := DefaultGameServer()
	gs.Lists["players"] = List{Capacity: 2, Values: []string{"p1"}}
	s := New(t, gs)
	steps := []struct {
		path, body string
		want       reply
	}{
		{"/v1beta1/lists/players:addValue", `{"value":"p1"}`,
			reply{500, rpcErr(2, "already exists. Value: p1 already in List: players")}},
		{"/v1beta1/lists/players:addValue", `{"value":"p2"}`,
			reply{200, map[string]any{"name": "players", "capacity": "2", "values": []any{"p1", "p2"}}}},
		// Full: "out of range" comes first, even for a value already there.
		{"/v1beta1/lists/players:addValue", `{"value":"p3"}`,
			reply{500, rpcErr(2, "out of range. No available capacity. Current Capacity: 2, List Size: 2")}},
		{"/v1beta1/lists/players:addValue", `{"value":"p1"}`,
			reply{500, rpcErr(2, "out of range. No available capacity. Current Capacity: 2, List Size: 2")}},
		{"/v1beta1/lists/players:removeValue", `{"value":"p1"}`,
			reply{200, map[string]any{"name": "players", "capacity": "2", "values": []any{"p2"}}}},
		{"/v1beta1/lists/players:removeValue", `{"value":"p1"}`,
			reply{500, rpcErr(2, "not found. Value: p1 not found in List: players")}},
		{"/v1beta1/lists/seats:addValue", `{"value":"p1"}`,
			reply{500, rpcErr(2, "not found. seats List not found")}},
		{"/v1beta1/lists/players:addValue", `{"value":`, reply{400, nil}},
	}
	for _, st := range steps {
		got := do(t, s, "POST", st.path, st.body)
		if st.want.body == nil { // only the status and code matter
			if got.status != st.want.status || got.body["code"] != float64(3) {
				t.Errorf("POST %s %s = %v, want %d code 3", st.path, st.body, got, st.want.status)
			}
			continue
		}
		if diff := cmp.Diff(st.want, got, cmp.AllowUnexported(reply{})); diff != "" {
			t.Errorf("POST %s %s (-want +got):\n%s", st.path, st.body, diff)
		}
	}
	if got := do(t, s, "GET", "/v1beta1/lists/players", ""); got.body["values"] == nil {
		t.Errorf("GET list = %v", got)
	}
	if diff := cmp.Diff([]string{"p2"}, s.GameServer().Lists["players"].Values); diff != "" {
		t.Errorf("committed values (-want +got):\n%s", diff)
	}
}

func TestBatchedListChanges(t *testing.T) {
	s := New(t, DefaultGameServer(), Batched())
	if r := do(t, s, "POST", "/v1beta1/lists/players:addValue", `{"value":"p1"}`); r.status != 200 {
		t.Fatalf("add: %v", r)
	}
	// The GameServer lags; the list endpoint answers the projected list, including the
	// pending value, and checks against it.
	if got := s.GameServer().Lists["players"].Values; len(got) != 0 {
		t.Errorf("committed values before Flush = %v, want none", got)
	}
	if r := do(t, s, "POST", "/v1beta1/lists/players:addValue", `{"value":"p1"}`); r.status != 500 {
		t.Errorf("second add of a pending value: %v, want 500 already exists", r)
	}
	if r := do(t, s, "GET", "/v1beta1/lists/players", ""); cmp.Diff([]any{"p1"}, r.body["values"]) != "" {
		t.Errorf("projected list = %v, want [p1]", r.body)
	}
	if s.Pending() != 1 {
		t.Errorf("Pending = %d, want 1", s.Pending())
	}
	s.Flush()
	if diff := cmp.Diff([]string{"p1"}, s.GameServer().Lists["players"].Values); diff != "" {
		t.Errorf("committed values after Flush (-want +got):\n%s", diff)
	}
}

func TestCounters(t *testing.T) {
	gs := DefaultGameServer()
	gs.Counters["rooms"] = Counter{Count: 1, Capacity: 3}
	s := New(t, gs)
	steps := []struct {
		method, body string
		want         reply
	}{
		{"GET", "", reply{200, map[string]any{"name": "rooms", "count": "1", "capacity": "3"}}},
		{"PATCH", `{"countDiff": 2}`, reply{200, map[string]any{"name": "rooms", "count": "3", "capacity": "3"}}},
		{"PATCH", `{"countDiff": "1"}`,
			reply{500, rpcErr(2, "out of range. Count must be within range [0,Capacity]. Found Count: 4, Capacity: 3")}},
		// count_diff is not the field's JSON name and is ignored, as by the real gateway.
		{"PATCH", `{"count_diff": -3}`, reply{200, map[string]any{"name": "rooms", "count": "3", "capacity": "3"}}},
		{"PATCH", `{"countDiff": -3}`, reply{200, map[string]any{"name": "rooms", "count": "0", "capacity": "3"}}},
		{"PATCH", `{"capacity": "10", "count": 5}`, reply{200, map[string]any{"name": "rooms", "count": "5", "capacity": "10"}}},
	}
	for _, st := range steps {
		got := do(t, s, st.method, "/v1beta1/counters/rooms", st.body)
		if diff := cmp.Diff(st.want, got, cmp.AllowUnexported(reply{})); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", st.method, st.body, diff)
		}
	}
	if got := do(t, s, "GET", "/v1beta1/counters/nope", ""); cmp.Diff(reply{500, rpcErr(2, "not found. nope Counter not found")}, got, cmp.AllowUnexported(reply{})) != "" {
		t.Errorf("unknown counter: %v", got)
	}
}

func TestRoutingErrors(t *testing.T) {
	s := New(t, DefaultGameServer())
	if got := do(t, s, "GET", "/nope", ""); got.status != 404 || got.body["code"] != float64(5) {
		t.Errorf("unknown path: %v, want 404 code 5", got)
	}
	if got := do(t, s, "GET", "/ready", ""); got.status != 501 {
		t.Errorf("GET /ready: %v, want 501", got)
	}
}

// watchLines opens a watch stream and returns its lines, decoded.
func watchLines(tb testing.TB, s *Server) (<-chan map[string]any, context.CancelFunc) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"/watch/gameserver", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != 200 {
		tb.Fatalf("watch: status %d", resp.StatusCode)
	}
	out := make(chan map[string]any, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"bad line": sc.Text()}
			}
			out <- m
		}
	}()
	tb.Cleanup(cancel)
	return out, cancel
}

func next(tb testing.TB, lines <-chan map[string]any) map[string]any {
	tb.Helper()
	select {
	case m, ok := <-lines:
		if !ok {
			tb.Fatal("watch stream ended")
		}
		return m
	case <-time.After(5 * time.Second):
		tb.Fatal("no watch line within 5s")
	}
	return nil
}

func stateOf(m map[string]any) string {
	r, _ := m["result"].(map[string]any)
	st, _ := r["status"].(map[string]any)
	s, _ := st["state"].(string)
	return s
}

func TestWatchStreamsEveryChange(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := New(t, DefaultGameServer(), WithClock(func() time.Time { return now }))
	lines, _ := watchLines(t, s)
	if got := stateOf(next(t, lines)); got != "Scheduled" {
		t.Errorf("first line state %q, want Scheduled (the current GameServer, at once)", got)
	}
	do(t, s, "POST", "/ready", "{}")
	if got := stateOf(next(t, lines)); got != "Ready" {
		t.Errorf("after ready: %q", got)
	}
	s.Allocate(Allocation{
		Labels:    map[string]string{"usher.dev/room": "K7QX"},
		AddValues: map[string][]string{"players": {"p1", "p1", "p2"}},
	})
	m := next(t, lines)
	r := m["result"].(map[string]any)
	meta := r["object_meta"].(map[string]any)
	if got := meta["labels"].(map[string]any)["usher.dev/room"]; got != "K7QX" || stateOf(m) != "Allocated" {
		t.Errorf("after Allocate: state %q, room label %v", stateOf(m), got)
	}
	if got := meta["annotations"].(map[string]any)["agones.dev/last-allocated"]; got != "2026-01-01T10:00:00Z" {
		t.Errorf("last-allocated = %v", got)
	}
	values := r["status"].(map[string]any)["lists"].(map[string]any)["players"].(map[string]any)["values"]
	if diff := cmp.Diff([]any{"p1", "p2"}, values); diff != "" {
		t.Errorf("players after Allocate (-want +got):\n%s", diff)
	}
	do(t, s, "POST", "/v1beta1/lists/players:removeValue", `{"value":"p1"}`)
	m = next(t, lines)
	values = m["result"].(map[string]any)["status"].(map[string]any)["lists"].(map[string]any)["players"].(map[string]any)["values"]
	if diff := cmp.Diff([]any{"p2"}, values); diff != "" {
		t.Errorf("players after remove (-want +got):\n%s", diff)
	}

	s.FailWatches(14, "going away")
	if got := next(t, lines); cmp.Diff(map[string]any{"error": rpcErr(14, "going away")}, got) != "" {
		t.Errorf("error line = %v", got)
	}
	if _, ok := <-lines; ok {
		t.Error("stream still open after FailWatches")
	}
}

func TestAllocateDropsValuesPastCapacity(t *testing.T) {
	gs := DefaultGameServer()
	gs.State = "Ready"
	gs.Lists["players"] = List{Capacity: 2, Values: []string{"p1"}}
	s := New(t, gs)
	s.Allocate(Allocation{AddValues: map[string][]string{"players": {"p2", "p3"}}})
	if diff := cmp.Diff([]string{"p1", "p2"}, s.GameServer().Lists["players"].Values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}

func TestLateStartAndRestart(t *testing.T) {
	s := NewLate(t, DefaultGameServer())
	if _, err := http.Post(s.URL()+"/ready", "application/json", strings.NewReader("{}")); err == nil {
		t.Fatal("request to a server not started yet succeeded")
	}
	s.Start()
	if r := do(t, s, "POST", "/ready", "{}"); r.status != 200 {
		t.Fatalf("ready after Start: %v", r)
	}
	lines, _ := watchLines(t, s)
	next(t, lines)
	s.Stop()
	for range lines { // the stream ends with the server
	}
	if _, err := http.Post(s.URL()+"/health", "application/json", strings.NewReader("{}")); err == nil {
		t.Fatal("request to a stopped server succeeded")
	}
	s.Start()
	if got := do(t, s, "GET", "/gameserver", ""); stateOf(map[string]any{"result": got.body}) != "Ready" {
		t.Errorf("state after restart: %v", got.body)
	}
}

func TestPausedWatchesCatchUp(t *testing.T) {
	s := New(t, DefaultGameServer())
	lines, _ := watchLines(t, s)
	next(t, lines)
	s.PauseWatches()
	do(t, s, "POST", "/ready", "{}")
	do(t, s, "POST", "/allocate", "{}")
	if got := s.GameServer().State; got != "Allocated" {
		t.Fatalf("state while paused = %q, want Allocated (only the stream lags)", got)
	}
	select {
	case m := <-lines:
		t.Fatalf("watch line while paused: %v", m)
	default:
	}
	s.ResumeWatches()
	if got := stateOf(next(t, lines)); got != "Allocated" {
		t.Errorf("line after resume: state %q, want the current Allocated", got)
	}
}
