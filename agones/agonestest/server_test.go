package agonestest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
)

const allocURL = "/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations"

type response struct {
	code        int
	contentType string
	body        string
}

func do(tb testing.TB, method, url, contentType, body string) response {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header.Get("Content-Type"), string(data)}
}

// TestAllocationHTTP checks the wire behaviour AGONES.md §1.1 describes.
func TestAllocationHTTP(t *testing.T) {
	const ok = `{"apiVersion":"allocation.agones.dev/v1","kind":"GameServerAllocation","spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"ws-game"}}]}}`
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		wantCode    int
		wantJSON    bool
		wantText    string
	}{
		{"allocated", "POST", "application/json", ok, 201, true, `"state":"Allocated"`},
		{"no content type", "POST", "", ok, 500, false, "deserializer"},
		{"undecodable body", "POST", "application/json", `{"spec":`, 500, false, "error decoding"},
		{"get is not allowed", "GET", "", "", 405, false, ""},
		{"misspelt field ignored, state defaults to Ready", "POST", "application/json",
			`{"spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"ws-game"},"gameserverState":"Allocated"}]}}`, 201, true, `"state":"Allocated"`},
		{"invalid state", "POST", "application/json",
			`{"spec":{"selectors":[{"gameServerState":"Reserved"}]}}`, 422, true, "GameServerState value can only be Allocated or Ready"},
		{"invalid label value", "POST", "application/json",
			`{"spec":{"selectors":[{}],"metadata":{"labels":{"usher.dev/room":"AB CD"}}}}`, 422, true, `"reason":"Invalid"`},
		{"invalid scheduling", "POST", "application/json", `{"spec":{"scheduling":"Spread"}}`, 422, true, "spec.scheduling"},
		{"unallocated", "POST", "application/json",
			`{"spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"nope"}}]}}`, 201, true, `"status":{"state":"UnAllocated","gameServerName":"","source":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := agonestest.NewServer(t)
			s.Add(agonestest.GameServer("default", "ws-game", "gs-1", "ws", 8))
			got := do(t, tt.method, s.URL()+allocURL, tt.contentType, tt.body)
			if got.code != tt.wantCode {
				t.Errorf("code = %d, want %d (%s)", got.code, tt.wantCode, got.body)
			}
			if isJSON := got.contentType == "application/json"; isJSON != tt.wantJSON {
				t.Errorf("Content-Type = %q, want JSON %v", got.contentType, tt.wantJSON)
			}
			if !strings.Contains(got.body, tt.wantText) {
				t.Errorf("body = %s, want it to contain %s", got.body, tt.wantText)
			}
		})
	}
}

// allocate posts gsa and decodes the answer.
func allocate(tb testing.TB, s *agonestest.Server, gsa string) agones.GameServerAllocation {
	tb.Helper()
	got := do(tb, "POST", s.URL()+allocURL, "application/json", gsa)
	if got.code != http.StatusCreated {
		tb.Fatalf("code %d: %s", got.code, got.body)
	}
	var out agones.GameServerAllocation
	if err := json.Unmarshal([]byte(got.body), &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

func withPlayers(gs *agones.GameServer, state agones.GameServerState, node string, players ...string) *agones.GameServer {
	gs.Status.State = state
	gs.Status.NodeName = node
	gs.Status.Lists = map[string]agones.ListStatus{"players": {Capacity: 4, Values: players}}
	return gs
}

// TestAllocationOrder checks which GameServer an allocation picks.
func TestAllocationOrder(t *testing.T) {
	gs := func(name string, state agones.GameServerState, node string, players ...string) *agones.GameServer {
		return withPlayers(agonestest.GameServer("default", "f", name, "ws", 4), state, node, players...)
	}
	tests := []struct {
		name    string
		servers []*agones.GameServer
		gsa     string
		want    string
	}{
		{"packed: the node with the most allocated servers first",
			[]*agones.GameServer{gs("a", "Ready", "n1"), gs("b", "Ready", "n2"), gs("c", "Allocated", "n2", "x")},
			`{"spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"f"}}]}}`, "b"},
		{"packed: allocated servers are searched first",
			[]*agones.GameServer{gs("a", "Ready", "n1"), gs("b", "Allocated", "n2", "x")},
			`{"spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"f"},"gameServerState":"Allocated"},{"matchLabels":{"agones.dev/fleet":"f"}}]}}`, "b"},
		{"the first selector that matches wins",
			[]*agones.GameServer{gs("a", "Ready", "n1"), gs("b", "Allocated", "n1", "x")},
			`{"spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"f"}},{"matchLabels":{"agones.dev/fleet":"f"},"gameServerState":"Allocated"}]}}`, "a"},
		{"distributed, list priority ascending: least available first",
			[]*agones.GameServer{gs("a", "Allocated", "n1", "x"), gs("b", "Allocated", "n1", "x", "y", "z"), gs("c", "Allocated", "n1", "x", "y")},
			`{"spec":{"scheduling":"Distributed","priorities":[{"type":"List","key":"players","order":"Ascending"}],"selectors":[{"gameServerState":"Allocated","lists":{"players":{"minAvailable":1}}}]}}`, "b"},
		{"distributed, list priority descending: most available first",
			[]*agones.GameServer{gs("a", "Allocated", "n1", "x", "y"), gs("b", "Allocated", "n1", "x", "y", "z"), gs("c", "Allocated", "n1", "x")},
			`{"spec":{"scheduling":"Distributed","priorities":[{"type":"List","key":"players","order":"Descending"}],"selectors":[{"gameServerState":"Allocated"}]}}`, "c"},
		{"minAvailable skips full servers",
			[]*agones.GameServer{gs("a", "Allocated", "n1", "w", "x", "y", "z"), gs("b", "Allocated", "n1", "x")},
			`{"spec":{"selectors":[{"gameServerState":"Allocated","lists":{"players":{"minAvailable":1}}}]}}`, "b"},
		{"containsValue",
			[]*agones.GameServer{gs("a", "Allocated", "n1", "x"), gs("b", "Allocated", "n1", "y")},
			`{"spec":{"selectors":[{"gameServerState":"Allocated","lists":{"players":{"containsValue":"y"}}}]}}`, "b"},
		{"a list the server lacks does not match",
			[]*agones.GameServer{gs("a", "Ready", "n1")},
			`{"spec":{"selectors":[{"lists":{"rooms":{"minAvailable":0}}}]}}`, ""},
		{"other namespaces are not searched",
			[]*agones.GameServer{withPlayers(agonestest.GameServer("other", "f", "a", "ws", 4), "Ready", "n1")},
			`{"spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"f"}}]}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := agonestest.NewServer(t)
			for _, gs := range tt.servers {
				s.Add(gs)
			}
			got := allocate(t, s, tt.gsa)
			if got.Status.GameServerName != tt.want {
				t.Errorf("allocated %q (%s), want %q", got.Status.GameServerName, got.Status.State, tt.want)
			}
		})
	}
}

// TestAllocationActions checks what an allocation does to the GameServer.
func TestAllocationActions(t *testing.T) {
	s := agonestest.NewServer(t)
	now := time.Date(2026, 1, 1, 10, 0, 0, 123456789, time.UTC)
	s.SetNow(func() time.Time { return now })
	gs := agonestest.GameServer("default", "f", "gs-1", "ws", 2)
	gs.Spec.Counters = map[string]agones.CounterStatus{"rooms": {Count: 9, Capacity: 10}}
	gs.Labels["keep"] = "me"
	s.Add(gs)
	got := allocate(t, s, `{"spec":{"selectors":[{}],
	  "metadata":{"labels":{"room":"A"},"annotations":{"host":"p1"}},
	  "counters":{"rooms":{"action":"Increment","amount":5},"missing":{"action":"Increment","amount":1}},
	  "lists":{"players":{"addValues":["p1","p1","p2","p3"]}}}}`)
	if got.Status.State != agones.GameServerAllocationAllocated || got.Name != "gs-1" || got.Status.Source != "local" {
		t.Fatalf("allocation = %s %q (source %q), want Allocated gs-1 from local", got.Status.State, got.Name, got.Status.Source)
	}
	stored, _ := s.Get("default", "gs-1")
	checks := []struct {
		name      string
		got, want any
	}{
		{"state", stored.Status.State, agones.GameServerStateAllocated},
		{"labels merged", stored.Labels["keep"] + "," + stored.Labels["room"], "me,A"},
		{"annotation patched", stored.Annotations["host"], "p1"},
		{"last allocated", stored.Annotations[agones.AnnotationLastAllocated], "2026-01-01T10:00:00.123456789Z"},
		{"counter clamped", stored.Status.Counters["rooms"], agones.CounterStatus{Count: 10, Capacity: 10}},
		{"duplicates ignored, past capacity dropped", stored.Status.Lists["players"].Values, []string{"p1", "p2"}},
		{"status reports the lists", got.Status.Lists["players"].Values, []string{"p1", "p2"}},
		{"status reports the labels", got.Status.Metadata.Labels["room"], "A"},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	// Re-allocation of an Allocated server keeps it Allocated and updates last-allocated.
	now = now.Add(time.Minute)
	again := allocate(t, s, `{"spec":{"selectors":[{"gameServerState":"Allocated","matchLabels":{"room":"A"}}],"lists":{"players":{"capacity":3,"addValues":["p4"]}}}}`)
	stored, _ = s.Get("default", "gs-1")
	if again.Status.GameServerName != "gs-1" || !slices.Equal(stored.Status.Lists["players"].Values, []string{"p1", "p2", "p4"}) ||
		stored.Annotations[agones.AnnotationLastAllocated] != "2026-01-01T10:01:00.123456789Z" {
		t.Errorf("re-allocation: %q, players %v, last allocated %s", again.Status.GameServerName,
			stored.Status.Lists["players"].Values, stored.Annotations[agones.AnnotationLastAllocated])
	}
}

func TestInjectedOutcomes(t *testing.T) {
	s := agonestest.NewServer(t)
	s.Add(agonestest.GameServer("default", "f", "gs-1", "ws", 2))
	const gsa = `{"spec":{"selectors":[{}]}}`
	s.Contend(1)
	if got := allocate(t, s, gsa); got.Status.State != agones.GameServerAllocationContention {
		t.Errorf("state = %s, want Contention", got.Status.State)
	}
	s.FailNext(500, "boom")
	if got := do(t, "POST", s.URL()+allocURL, "application/json", gsa); got.code != 500 || !strings.Contains(got.body, "boom") {
		t.Errorf("FailNext: %d %q", got.code, got.body)
	}
	s.RejectNext("nope")
	if got := do(t, "POST", s.URL()+allocURL, "application/json", gsa); got.code != 422 || !strings.Contains(got.body, `"message":"nope"`) {
		t.Errorf("RejectNext: %d %q", got.code, got.body)
	}
	if got := allocate(t, s, gsa); got.Status.State != agones.GameServerAllocationAllocated {
		t.Errorf("after the injections: state = %s, want Allocated", got.Status.State)
	}
	if n := len(s.Requests()); n != 4 {
		t.Errorf("recorded %d requests, want 4", n)
	}
}

// TestServedObjectsValidate: what the fake serves as GameServers is valid against the
// real CRD, CRD-defaulted fields and nulls included.
func TestServedObjectsValidate(t *testing.T) {
	crds := agonestest.FindCRDs(t)
	s := agonestest.NewServer(t)
	s.Add(agonestest.GameServer("default", "f", "gs-1", "ws", 8))
	allocate(t, s, `{"spec":{"selectors":[{}],"metadata":{"labels":{"usher.dev/room":"ABCD"}},"lists":{"players":{"addValues":["p1"]}}}}`)
	got := do(t, "GET", s.URL()+"/apis/agones.dev/v1/namespaces/default/gameservers", "", "")
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(got.body), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v, %s", err, got.body)
	}
	if dig(list.Items[0], "spec", "immutableReplicas") == nil || !hasKey(list.Items[0]["status"], "reservedUntil") {
		t.Errorf("served object lacks the CRD-defaulted fields and nulls: %v", list.Items[0])
	}
	crds.MustValidate(t, list.Items[0])
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	return v
}

func hasKey(v any, key string) bool {
	m, _ := v.(map[string]any)
	_, ok := m[key]
	return ok
}
