package agonestest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
)

// allocateAll sends the allocations at once, with the allocator held until all of them
// are queued, so that they are served in one batch; it returns the answers in order.
func allocateAll(t *testing.T, s *agonestest.Server, bodies []string) []agones.GameServerAllocation {
	t.Helper()
	s.Hold()
	out := make([]agones.GameServerAllocation, len(bodies))
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			got := postRaw(s, body)
			if got.code != http.StatusCreated {
				errs[i] = fmt.Errorf("code %d: %s", got.code, got.body)
				return
			}
			errs[i] = json.Unmarshal([]byte(got.body), &out[i])
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Pending() < len(bodies) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	s.Release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	return out
}

func postRaw(s *agonestest.Server, body string) response {
	req, _ := http.NewRequest("POST", s.URL()+allocURL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{code: -1, body: err.Error()}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header.Get("Content-Type"), string(b)}
}

func states(allocs []agones.GameServerAllocation) map[agones.GameServerAllocationState]int {
	n := map[agones.GameServerAllocationState]int{}
	for _, a := range allocs {
		n[a.Status.State]++
	}
	return n
}

func joinBody(player string) string {
	return fmt.Sprintf(`{"spec":{"selectors":[{"gameServerState":"Allocated","matchLabels":{"room":"ABCD"},
	  "lists":{"players":{"minAvailable":1}}}],"lists":{"players":{"addValues":[%q]}}}}`, player)
}

// TestBatchAllocatesAServerOnce: Agones removes a chosen GameServer from the batch's list
// and its cache, so in one batch a room is allocated once: of twelve joins to a room with
// three free seats, one is Allocated and eleven UnAllocated. In the next batch the room is
// back (its update was seen) and allocatable again.
func TestBatchAllocatesAServerOnce(t *testing.T) {
	s := agonestest.NewServer(t)
	room := withPlayers(agonestest.GameServer("default", "f", "gs-1", "ws", 4), agones.GameServerStateAllocated, "node-1", "host")
	room.Labels["room"] = "ABCD"
	s.Add(room)
	var bodies []string
	for i := range 12 {
		bodies = append(bodies, joinBody(fmt.Sprintf("p%d", i)))
	}
	before := s.Batches()
	got := states(allocateAll(t, s, bodies))
	want := map[agones.GameServerAllocationState]int{agones.GameServerAllocationAllocated: 1, agones.GameServerAllocationUnAllocated: 11}
	if !maps.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if n := s.Batches() - before; n != 1 {
		t.Errorf("served in %d batches, want 1", n)
	}
	if again := allocate(t, s, joinBody("late")); again.Status.State != agones.GameServerAllocationAllocated {
		t.Errorf("next batch: %s, want Allocated", again.Status.State)
	}
	stored, _ := s.Get("default", "gs-1")
	if n := len(stored.Status.Lists["players"].Values); n != 3 {
		t.Errorf("players %v, want host and two joiners", stored.Status.Lists["players"].Values)
	}
}

// TestBatchReadyServers: creates in one batch each take a different Ready server, until
// none is left.
func TestBatchReadyServers(t *testing.T) {
	s := agonestest.NewServer(t)
	for i := range 3 {
		s.Add(agonestest.GameServer("default", "f", fmt.Sprintf("gs-%d", i), "ws", 4))
	}
	var bodies []string
	for i := range 5 {
		bodies = append(bodies, fmt.Sprintf(`{"spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"f"}}],
		  "metadata":{"labels":{"room":"R%d"}},"lists":{"players":{"addValues":["h%d"]}}}}`, i, i))
	}
	allocs := allocateAll(t, s, bodies)
	if got := states(allocs); got[agones.GameServerAllocationAllocated] != 3 || got[agones.GameServerAllocationUnAllocated] != 2 {
		t.Errorf("outcomes %v, want 3 Allocated and 2 UnAllocated", got)
	}
	var names []string
	for _, a := range allocs {
		if a.Status.GameServerName != "" {
			names = append(names, a.Status.GameServerName)
		}
	}
	slices.Sort(names)
	if !slices.Equal(slices.Compact(names), []string{"gs-0", "gs-1", "gs-2"}) {
		t.Errorf("allocated %v, want each server once", names)
	}
}

// TestBatchSeveralPlayers: one allocation may add several players; they are appended in
// order, duplicates skipped, and those past the capacity dropped silently
// (GameServer.AppendListValues).
func TestBatchSeveralPlayers(t *testing.T) {
	s := agonestest.NewServer(t)
	room := withPlayers(agonestest.GameServer("default", "f", "gs-1", "ws", 4), agones.GameServerStateAllocated, "node-1", "host")
	room.Labels["room"] = "ABCD"
	s.Add(room)
	got := allocate(t, s, `{"spec":{"selectors":[{"gameServerState":"Allocated","matchLabels":{"room":"ABCD"},
	  "lists":{"players":{"minAvailable":1}}}],"lists":{"players":{"addValues":["a","host","b","a","c","d","e"]}}}}`)
	if got.Status.State != agones.GameServerAllocationAllocated {
		t.Fatalf("state %s", got.Status.State)
	}
	if v := got.Status.Lists["players"].Values; !slices.Equal(v, []string{"host", "a", "b", "c"}) {
		t.Errorf("players %v, want host, a, b, c (d and e dropped)", v)
	}
}
