package agones_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/contract"
)

// allocatedResponse is the response of AGONES.md §1.4 (trimmed spec).
const allocatedResponse = `{
  "kind": "GameServerAllocation",
  "apiVersion": "allocation.agones.dev/v1",
  "metadata": {"name": "ws-game-x7k2p-9bq4d", "namespace": "default", "creationTimestamp": "2026-01-01T10:00:00Z"},
  "spec": {"selectors": [{"matchLabels": {"agones.dev/fleet": "ws-game"}, "gameServerState": "Ready", "lists": {"players": {"containsValue": "", "minAvailable": 1, "maxAvailable": 0}}}], "scheduling": "Packed"},
  "status": {
    "state": "Allocated",
    "gameServerName": "ws-game-x7k2p-9bq4d",
    "ports": [{"name": "ws", "port": 7203}],
    "address": "203.0.113.10",
    "addresses": [{"type": "ExternalIP", "address": "203.0.113.10"}, {"type": "PodIP", "address": "10.4.1.7"}],
    "nodeName": "node-1",
    "source": "local",
    "metadata": {"labels": {"agones.dev/fleet": "ws-game", "game.example.com/room": "ABCD12"}, "annotations": {"agones.dev/last-allocated": "2026-01-01T10:00:00.123456789Z"}},
    "lists": {"players": {"capacity": 8, "values": ["player-1"]}},
    "someFutureField": {"x": 1}
  }
}`

func roomAllocation() *agones.GameServerAllocation {
	ready := agones.GameServerStateReady
	return &agones.GameServerAllocation{Spec: agones.GameServerAllocationSpec{
		Selectors: []agones.GameServerSelector{{
			LabelSelector:   metav1.LabelSelector{MatchLabels: map[string]string{agones.LabelFleet: "ws-game"}},
			GameServerState: &ready,
			Lists:           map[string]agones.ListSelector{contract.PlayersList: {MinAvailable: 1}},
		}},
		MetaPatch: agones.MetaPatch{Labels: map[string]string{contract.LabelRoom: "ABCD12"}},
		Lists:     map[string]agones.ListAction{contract.PlayersList: {AddValues: []string{"player-1"}}},
	}}
}

// TestAllocateRequest checks what goes on the wire and what comes back.
func TestAllocateRequest(t *testing.T) {
	var gotMethod, gotPath, gotType string
	var gotBody map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotMethod, gotPath, gotType = r.Method, r.URL.Path, r.Header.Get("Content-Type")
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &gotBody)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, allocatedResponse)
	}))
	defer srv.Close()
	c, err := agones.NewClientForURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Allocate(context.Background(), "default", roomAllocation())
	if err != nil {
		t.Fatal(err)
	}
	if gotMethod != http.MethodPost || gotPath != "/apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations" {
		t.Errorf("request = %s %s, want POST /apis/allocation.agones.dev/v1/namespaces/default/gameserverallocations", gotMethod, gotPath)
	}
	if gotType != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", gotType)
	}
	wantBody := map[string]any{
		"apiVersion": "allocation.agones.dev/v1",
		"kind":       "GameServerAllocation",
		"metadata":   map[string]any{},
		"spec": map[string]any{
			"selectors": []any{map[string]any{
				"matchLabels":     map[string]any{"agones.dev/fleet": "ws-game"},
				"gameServerState": "Ready",
				"lists":           map[string]any{"players": map[string]any{"containsValue": "", "minAvailable": 1.0, "maxAvailable": 0.0}},
			}},
			"metadata": map[string]any{"labels": map[string]any{"usher.dev/room": "ABCD12"}},
			"lists":    map[string]any{"players": map[string]any{"addValues": []any{"player-1"}}},
		},
	}
	if diff := cmp.Diff(wantBody, gotBody); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
	want := agones.GameServerAllocationStatus{
		State:          agones.GameServerAllocationAllocated,
		GameServerName: "ws-game-x7k2p-9bq4d",
		Ports:          []agones.GameServerStatusPort{{Name: "ws", Port: 7203}},
		Address:        "203.0.113.10",
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeExternalIP, Address: "203.0.113.10"}, {Type: agones.AddressTypePodIP, Address: "10.4.1.7"},
		},
		NodeName: "node-1",
		Source:   "local",
		Metadata: &agones.GameServerMetadata{
			Labels:      map[string]string{"agones.dev/fleet": "ws-game", "game.example.com/room": "ABCD12"},
			Annotations: map[string]string{agones.AnnotationLastAllocated: "2026-01-01T10:00:00.123456789Z"},
		},
		Lists: map[string]agones.ListStatus{"players": {Capacity: 8, Values: []string{"player-1"}}},
	}
	if diff := cmp.Diff(want, got.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if got.Name != "ws-game-x7k2p-9bq4d" {
		t.Errorf("metadata.name = %q, want the GameServer's name", got.Name)
	}
}

// TestAllocateResponses: 201 whatever the outcome; 422 and 500 are errors.
func TestAllocateResponses(t *testing.T) {
	tests := []struct {
		name        string
		code        int
		contentType string
		body        string
		wantState   agones.GameServerAllocationState
		wantErr     string // substring; "" for no error
		wantInvalid bool
	}{
		{"allocated", 201, "application/json", allocatedResponse, agones.GameServerAllocationAllocated, "", false},
		{"unallocated", 201, "application/json",
			`{"kind":"GameServerAllocation","apiVersion":"allocation.agones.dev/v1","metadata":{},"spec":{},"status":{"state":"UnAllocated","gameServerName":"","source":""}}`,
			agones.GameServerAllocationUnAllocated, "", false},
		{"contention", 201, "application/json",
			`{"kind":"GameServerAllocation","apiVersion":"allocation.agones.dev/v1","metadata":{},"spec":{},"status":{"state":"Contention","gameServerName":"","source":""}}`,
			agones.GameServerAllocationContention, "", false},
		{"invalid", 422, "application/json",
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"GameServerAllocation.allocation.agones.dev \"\" is invalid: spec.selectors[0].gameServerState: Invalid value: \"Reserved\": GameServerState value can only be Allocated or Ready","reason":"Invalid","code":422}`,
			"", "GameServerState value can only be Allocated or Ready", true},
		{"server error in plain text", 500, "text/plain; charset=utf-8", "Could not find deserializer for media type\n", "", "Could not find deserializer", false},
		{"no state", 201, "application/json", `{"kind":"GameServerAllocation","apiVersion":"allocation.agones.dev/v1","status":{}}`, "", "no status.state", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.code)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c, err := agones.NewClientForURL(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Allocate(context.Background(), "default", roomAllocation())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if apierrors.IsInvalid(err) != tt.wantInvalid {
					t.Errorf("apierrors.IsInvalid(%v) = %v, want %v", err, !tt.wantInvalid, tt.wantInvalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.State != tt.wantState {
				t.Errorf("state = %q, want %q", got.Status.State, tt.wantState)
			}
		})
	}
}

// TestAllocateFake runs the client against the fake allocator: the same requests a real
// Agones would accept or refuse.
func TestAllocateFake(t *testing.T) {
	reserved := agones.GameServerStateReserved
	tests := []struct {
		name        string
		mutate      func(*agones.GameServerAllocation)
		wantState   agones.GameServerAllocationState
		wantInvalid bool
	}{
		{"allocated", func(*agones.GameServerAllocation) {}, agones.GameServerAllocationAllocated, false},
		{"no match", func(gsa *agones.GameServerAllocation) {
			gsa.Spec.Selectors[0].MatchLabels[agones.LabelFleet] = "other"
		}, agones.GameServerAllocationUnAllocated, false},
		{"state Reserved is invalid", func(gsa *agones.GameServerAllocation) {
			gsa.Spec.Selectors[0].GameServerState = &reserved
		}, "", true},
		{"room code with a space is invalid", func(gsa *agones.GameServerAllocation) {
			gsa.Spec.MetaPatch.Labels[contract.LabelRoom] = "AB CD"
		}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := agonestest.NewServer(t)
			fake.Add(agonestest.GameServer("default", "ws-game", "ws-game-1", "ws", 8))
			gsa := roomAllocation()
			tt.mutate(gsa)
			got, err := fake.Client().Allocate(context.Background(), "default", gsa)
			if tt.wantInvalid {
				if !apierrors.IsInvalid(err) {
					t.Fatalf("err = %v, want a 422 Invalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.State != tt.wantState {
				t.Errorf("state = %q, want %q", got.Status.State, tt.wantState)
			}
		})
	}
}

// TestGameServerInformer runs the informer against the fake API server: it lists, then
// follows a watch, decodes into *GameServer despite CRD-defaulted and unknown fields, and
// keeps the room and fleet indexes.
func TestGameServerInformer(t *testing.T) {
	fake := agonestest.NewServer(t)
	fake.Add(agonestest.GameServer("default", "ws-game", "ws-game-1", "ws", 8))
	fake.Add(agonestest.GameServer("default", "other", "other-1", "ws", 8))       // filtered by label
	fake.Add(agonestest.GameServer("elsewhere", "ws-game", "ws-game-9", "ws", 8)) // other namespace

	c := fake.Client()
	inf := agones.NewGameServerInformer(c, "default", 0, agones.LabelFleet+"=ws-game")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("cache did not sync")
	}
	names := func() []string {
		var out []string
		for _, obj := range inf.GetStore().List() {
			gs := obj.(*agones.GameServer)
			out = append(out, gs.Namespace+"/"+gs.Name)
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff([]string{"default/ws-game-1"}, names()); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}

	// A watch event: a new server, then an allocation tagging a room.
	fake.Add(agonestest.GameServer("default", "ws-game", "ws-game-2", "ws", 8))
	if _, err := c.Allocate(ctx, "default", roomAllocation()); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		objs, _ := inf.GetIndexer().ByIndex(agones.IndexByRoom, "ABCD12")
		return len(names()) == 2 && len(objs) == 1
	})
	objs, _ := inf.GetIndexer().ByIndex(agones.IndexByRoom, "ABCD12")
	gs := objs[0].(*agones.GameServer)
	if gs.Status.State != agones.GameServerStateAllocated || !slices.Equal(gs.Status.Lists[contract.PlayersList].Values, []string{"player-1"}) {
		t.Errorf("room server = %s %v, want Allocated with [player-1]", gs.Status.State, gs.Status.Lists)
	}
	if byFleet, _ := inf.GetIndexer().ByIndex(agones.IndexByFleet, agones.FleetKey("default", "ws-game")); len(byFleet) != 2 {
		t.Errorf("fleet index holds %d servers, want 2", len(byFleet))
	}

	fake.Delete("default", gs.Name)
	eventually(t, func() bool {
		objs, _ := inf.GetIndexer().ByIndex(agones.IndexByRoom, "ABCD12")
		return len(objs) == 0 && len(names()) == 1
	})
}

// TestGameServerInformerLenient decodes a list as a real API server sends it: nulls,
// CRD-defaulted fields, and fields this package does not know.
func TestGameServerInformerLenient(t *testing.T) {
	const list = `{"apiVersion":"agones.dev/v1","kind":"GameServerList","metadata":{"resourceVersion":"7"},"items":[
	 {"apiVersion":"agones.dev/v1","kind":"GameServer",
	  "metadata":{"name":"gs-1","namespace":"default","resourceVersion":"7","labels":{"agones.dev/fleet":"ws-game","usher.dev/room":"WXYZ"},"finalizers":["agones.dev/controller"],
	   "managedFields":[{"manager":"controller","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:status":{}}}]},
	  "spec":{"immutableReplicas":1,"players":null,"eviction":{"safe":"Never"},"scheduling":"Packed","ports":[{"name":"ws","portPolicy":"None","containerPort":7777,"protocol":"TCP","range":"default"}],
	   "template":{"metadata":{"creationTimestamp":null},"spec":{"containers":[{"name":"game","image":"x","resources":{}}]}}},
	  "status":{"immutableReplicas":1,"state":"Allocated","ports":[{"name":"ws","port":7777}],"address":"192.0.2.1","addresses":null,"nodeName":"n","reservedUntil":null,"players":null,
	   "counters":null,"lists":{"players":{"capacity":8,"values":["p1"]}},"eviction":{"safe":"Never"},"someFutureField":true}}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") != "" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		io.WriteString(w, list)
	}))
	defer srv.Close()
	c, err := agones.NewClientForURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	inf := agones.NewGameServerInformer(c, "default", 0, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("cache did not sync")
	}
	objs, err := inf.GetIndexer().ByIndex(agones.IndexByRoom, "WXYZ")
	if err != nil || len(objs) != 1 {
		t.Fatalf("room index = %v, %v; want one server", objs, err)
	}
	gs := objs[0].(*agones.GameServer)
	want := agones.GameServerStatus{
		State:    agones.GameServerStateAllocated,
		Ports:    []agones.GameServerStatusPort{{Name: "ws", Port: 7777}},
		Address:  "192.0.2.1",
		NodeName: "n",
		Lists:    map[string]agones.ListStatus{"players": {Capacity: 8, Values: []string{"p1"}}},
	}
	if diff := cmp.Diff(want, gs.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if gs.Spec.Ports[0].PortPolicy != agones.PortPolicyNone {
		t.Errorf("port policy = %q, want None", gs.Spec.Ports[0].PortPolicy)
	}
	if gs.ManagedFields != nil {
		t.Errorf("managed fields kept in the cache: %v", gs.ManagedFields)
	}
}

// eventually waits for cond, which the informer makes true asynchronously.
func eventually(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
