package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/contract"
	fleetagones "github.com/usher-gg/usher/internal/fleet/agones"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
)

// gameServerFactory makes GameServers of the example Fleet the way Agones would (the Fleet's
// template spec, its template labels plus agones.dev/fleet), with the status we choose, and
// writes them with strict validation, so they also prove the Fleet's template is a valid
// GameServer spec.
type gameServerFactory struct {
	t     *testing.T
	ri    dynamic.ResourceInterface
	fleet *unstructured.Unstructured
}

// gsState is what a test says about one GameServer.
type gsState struct {
	state   agonesv1.GameServerState
	labels  map[string]string // added to the template's
	players []string          // the players List's values
	podIP   string
}

func (f gameServerFactory) object(name string, s gsState) *unstructured.Unstructured {
	f.t.Helper()
	tmpl, _, _ := unstructured.NestedMap(f.fleet.Object, "spec", "template")
	spec, _ := tmpl["spec"].(map[string]any)
	labels := map[string]string{agonesv1.LabelFleet: f.fleet.GetName()}
	tl, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "labels")
	for k, v := range tl {
		labels[k] = v
	}
	for k, v := range s.labels {
		labels[k] = v
	}
	capacity, _, _ := unstructured.NestedFieldCopy(spec, "lists", contract.PlayersList, "capacity")
	players := make([]any, 0, len(s.players))
	for _, p := range s.players {
		players = append(players, p)
	}
	status := map[string]any{
		"state":    string(s.state),
		"nodeName": "node-1",
		"address":  "172.18.0.2",
		"ports":    []any{map[string]any{"name": "ws", "port": int64(7777)}},
		"addresses": []any{
			map[string]any{"type": "InternalIP", "address": "172.18.0.2"},
			map[string]any{"type": "PodIP", "address": s.podIP},
		},
		"lists": map[string]any{contract.PlayersList: map[string]any{"capacity": capacity, "values": players}},
	}
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": agonesv1.GroupVersion.String(),
		"kind":       "GameServer",
		"metadata":   map[string]any{"name": name, "namespace": f.fleet.GetNamespace()},
		"spec":       runtimeDeepCopy(spec),
		"status":     status,
	}}
	o.SetLabels(labels)
	return o
}

func runtimeDeepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}

// put creates or replaces (GameServer status is no subresource) the GameServer name.
func (f gameServerFactory) put(ctx context.Context, name string, s gsState) {
	f.t.Helper()
	o := f.object(name, s)
	cur, err := f.ri.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		o.SetResourceVersion(cur.GetResourceVersion())
		_, err = f.ri.Update(ctx, o, metav1.UpdateOptions{FieldValidation: "Strict"})
	} else {
		_, err = f.ri.Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"})
	}
	if err != nil {
		f.t.Fatalf("put GameServer %s: %v", name, err)
	}
}

// TestAgonesBackendWatch runs Usher's Agones fleet backend (internal/fleet/agones), as Usher's
// own ServiceAccount with the manifests' Role, against GameServer objects created directly in a
// real API server: the watch must list, see every change, and answer room lookups, /games room
// listings and the metrics from what it saw. (Allocations need Agones' own API server, which no
// CRD provides; the backend's allocation path is tested against agones/agonestest.)
func TestAgonesBackendWatch(t *testing.T) {
	c := requireCluster(t)
	c.applyOverlay(t, "kind")
	const ns = "usher-games"
	objs := objectsOf(t, "kind")
	gsf := gameServerFactory{t: t, ri: c.dyn.Resource(agonesv1.GameServerResource).Namespace(ns), fleet: find(t, objs, "Fleet", ns, "example")}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	room := func(code string, public bool) map[string]string {
		return map[string]string{contract.LabelRoom: code, contract.LabelPublic: fmt.Sprint(public), contract.LabelGame: "example"}
	}
	// Before Usher starts: two Ready servers, one room, and a room of a Fleet Usher does not serve.
	gsf.put(ctx, "example-ready-1", gsState{state: agonesv1.GameServerStateReady, podIP: "10.244.0.11"})
	gsf.put(ctx, "example-ready-2", gsState{state: agonesv1.GameServerStateReady, podIP: "10.244.0.12"})
	gsf.put(ctx, "example-k7qx", gsState{state: agonesv1.GameServerStateAllocated, labels: room("K7QX", false), players: []string{"p1", "p2"}, podIP: "10.244.0.13"})
	gsf.put(ctx, "other-zzzz", gsState{state: agonesv1.GameServerStateAllocated, labels: map[string]string{agonesv1.LabelFleet: "other", contract.LabelRoom: "ZZZZ"}, podIP: "10.244.0.14"})

	// Usher, as its ServiceAccount: what the Role allows must be enough for the watch.
	ucfg := rest.CopyConfig(c.cfg)
	ucfg.Impersonate = rest.ImpersonationConfig{UserName: usherSA.user, Groups: usherSA.groups}
	client, err := agonesv1.NewClient(ucfg)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	fleet, err := fleetagones.New(fleetagones.Config{Games: []fleetagones.Game{{
		ID: "example", MaxPlayers: 4, Namespace: ns, Fleet: "example", PortName: "ws", Dial: fleetagones.DialPod,
	}}}, client, m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fleet.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("fleet Run: %v", err)
		}
	}()
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) { return fleet.Synced(), nil }); err != nil {
		t.Fatalf("the GameServer watch never synced (RBAC or list/watch failure): %v", err)
	}

	// eventually waits until the watch shows want (room code → seats) and the metrics agree:
	// the informer updates its store before its handlers recompute the gauges, so both are
	// polled together.
	eventually := func(step string, want map[string]int, ready float64) {
		t.Helper()
		seats := 0
		for _, n := range want {
			seats += n
		}
		wantMetrics := fmt.Sprint([]float64{float64(len(want)), float64(seats), ready, float64(len(want))})
		var got map[string]int
		var gotMetrics string
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			rooms, err := fleet.Rooms(ctx, "example")
			if err != nil {
				return false, err
			}
			got = map[string]int{}
			for _, r := range rooms {
				got[r.Code] = r.Seats
			}
			gotMetrics = fmt.Sprint([]float64{
				testutil.ToFloat64(m.Rooms.WithLabelValues("example")),
				testutil.ToFloat64(m.Players.WithLabelValues("example")),
				testutil.ToFloat64(m.GameServers.WithLabelValues("example", "Ready")),
				testutil.ToFloat64(m.GameServers.WithLabelValues("example", "Allocated")),
			})
			return fmt.Sprint(got) == fmt.Sprint(want) && gotMetrics == wantMetrics, nil
		})
		if err != nil {
			t.Fatalf("%s: rooms %v, want %v; usher_rooms, usher_players, usher_gameservers{Ready,Allocated} = %s, want %s (%v)",
				step, got, want, gotMetrics, wantMetrics, err)
		}
	}

	eventually("initial list", map[string]int{"K7QX": 2}, 2)
	rooms, _ := fleet.Rooms(ctx, "")
	if len(rooms) != 1 || rooms[0].MaxPlayers != 4 || rooms[0].Public || rooms[0].Server != "example-k7qx" {
		t.Errorf("rooms %+v: want only K7QX, private, 4 seats, on example-k7qx (the other Fleet's room is not ours)", rooms)
	}
	var names []string
	for _, s := range fleet.Servers() {
		names = append(names, s.Name)
		if s.Name == "example-k7qx" && s.Addr != "10.244.0.13:7777" {
			t.Errorf("server %s dialled at %q, want the pod IP and containerPort 10.244.0.13:7777", s.Name, s.Addr)
		}
	}
	if want := []string{"example-k7qx", "example-ready-1", "example-ready-2"}; !slices.Equal(names, want) {
		t.Errorf("servers %v, want %v", names, want)
	}

	// Room lookups come from the watch: a seated player is sent back to the room's server
	// without an allocation, and a live code cannot be created again.
	srv, err := fleet.Join(ctx, "example", "K7QX", "p2")
	if err != nil || srv.Addr != "10.244.0.13:7777" || srv.Room != "K7QX" {
		t.Errorf("Join K7QX as seated p2: %+v, %v; want the room's server at 10.244.0.13:7777", srv, err)
	}
	if _, err := fleet.Create(ctx, "example", "K7QX", true, "p9"); !errors.Is(err, match.ErrRoomExists) {
		t.Errorf("Create K7QX again: %v, want ErrRoomExists", err)
	}

	// Every change arrives through the watch.
	gsf.put(ctx, "example-k7qx", gsState{state: agonesv1.GameServerStateAllocated, labels: room("K7QX", false), players: []string{"p1", "p2", "p3"}, podIP: "10.244.0.13"})
	eventually("a seat taken", map[string]int{"K7QX": 3}, 2)

	gsf.put(ctx, "example-ready-1", gsState{state: agonesv1.GameServerStateAllocated, labels: room("ABCD", true), players: []string{"p7"}, podIP: "10.244.0.11"})
	eventually("a public room allocated", map[string]int{"K7QX": 3, "ABCD": 1}, 1)
	if srv, err := fleet.QuickJoin(ctx, "example", "p7"); err != nil || srv.Room != "ABCD" {
		t.Errorf("QuickJoin as p7, seated in public room ABCD: %+v, %v", srv, err)
	}

	// A server back to Ready keeps its old labels; it is no room any more.
	gsf.put(ctx, "example-k7qx", gsState{state: agonesv1.GameServerStateReady, labels: room("K7QX", false), podIP: "10.244.0.13"})
	eventually("a room over, its server Ready again", map[string]int{"ABCD": 1}, 2)

	if err := gsf.ri.Delete(ctx, "example-ready-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("a room's server deleted", map[string]int{}, 2)
}
