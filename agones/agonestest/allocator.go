package agonestest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/usher-gg/usher/agones"
)

// The allocator, modelled on Agones 1.56's pkg/gameserverallocations: allocator.go
// (Allocate, allocateFromLocalCluster, ListenAndAllocate, allocationUpdateWorkers) and
// allocation_cache.go (AllocationCache). What it keeps of them:
//
//   - Requests are served in batches by one loop. While requests are pending, each is
//     matched against the batch's list: a sorted snapshot of the allocation cache taken at
//     the batch's first request (and again after 100 requests, or when the priorities
//     change). When nothing is pending the loop drops the list and sleeps BatchWait (500 ms
//     by default, the extensions' allocationBatchWaitTime), so requests that arrive
//     together land in one batch.
//   - A GameServer chosen for a request is removed from the batch's list and from the
//     cache. It returns to the cache only when the watch delivers the updated GameServer
//     (the cache's UpdateFunc), and to a list only when a new batch starts. So, in one
//     batch, a GameServer is allocated at most once: every other request that only it
//     could satisfy — another player joining the same room at the same moment — gets
//     UnAllocated, although the room may have free seats.
//   - A chosen GameServer already gone from the cache answers Contention
//     (ErrConflictInGameServerSelection).
//   - The allocation is applied to the cached copy and written with its resource version:
//     if the stored object changed since (a sidecar write the cache has not seen), the
//     write conflicts and the request is retried (allocationRetry: 5 steps, 10 ms apart),
//     then fails with a 500 carrying the conflict.
//   - List actions append in order, skip duplicates and drop what passes the capacity
//     (GameServer.AppendListValues): one allocation may add several players and seat only
//     the first ones.
const (
	// DefaultBatchWait is Agones' allocationBatchWaitTime default.
	DefaultBatchWait = 500 * time.Millisecond
	// maxBatchBeforeRefresh: the list is rebuilt after this many requests in one batch.
	maxBatchBeforeRefresh = 100
	// maxBatchQueue is the size of the pending requests queue.
	maxBatchQueue = 100
	// conflictRetries and conflictRetryWait are allocationRetry's steps and duration.
	conflictRetries   = 5
	conflictRetryWait = 10 * time.Millisecond
)

// allocRequest is a valid, defaulted allocation waiting for the batch loop.
type allocRequest struct {
	gsa     *agones.GameServerAllocation // namespace set
	stale   bool                         // StaleCache: skip counter and list filters, never conflict
	attempt int
	resp    chan allocResult
}

type allocResult struct {
	gs  *agones.GameServer // the allocated GameServer; nil for UnAllocated or Contention
	err error              // a write that conflicted on every attempt: 500
	// contention: the chosen GameServer had left the cache already.
	contention bool
}

// SetBatchWait sets how long the allocator sleeps when no request is pending
// (DefaultBatchWait unless set). Zero makes it wait for the next request instead, so a
// batch is whatever arrived while the previous one was served.
func (s *Server) SetBatchWait(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batchWait = d
}

// Hold stops the allocator before its next batch until Release, so that a test can queue
// requests (see Pending) and have them served in one batch, whatever the timing.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

// Release lets a held allocator go on.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

// Pending is how many allocation requests wait for the allocator.
func (s *Server) Pending() int { return len(s.pending) }

// Batches returns how many batches the allocator has started serving (a batch is the
// requests served between two sleeps), for tests that check requests were coalesced.
func (s *Server) Batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches
}

// cacheLocked updates the allocation cache from a stored change, as the cache's informer
// handlers do: a GameServer being deleted leaves it, a Ready or Allocated one is stored,
// and one that stopped being either leaves it.
func (s *Server) cacheLocked(gs *agones.GameServer, typ watch.EventType) {
	key := gs.Namespace + "/" + gs.Name
	switch {
	case typ == watch.Deleted, gs.DeletionTimestamp != nil:
		delete(s.cache, key)
	case gs.Status.State == agones.GameServerStateReady || gs.Status.State == agones.GameServerStateAllocated:
		s.cache[key] = gs.DeepCopy()
	default:
		delete(s.cache, key)
	}
}

// allocator is the batch loop (ListenAndAllocate). It runs until the server closes.
func (s *Server) allocator() {
	var list []*agones.GameServer // the batch's list; nil between batches
	var sortKey string
	count := 0
	served := false
	// The answers of the batch so far. Agones' update workers answer once each write is
	// done, which takes longer than choosing the rest of the batch: a client's next
	// request cannot land in the batch that served its last one. So the answers go out
	// when the batch ends (or its list is refreshed).
	type answer struct {
		req *allocRequest
		res allocResult
	}
	var answers []answer
	deliver := func() {
		for i, a := range answers {
			a.req.resp <- a.res
			answers[i] = answer{}
		}
		answers = answers[:0]
	}
	for {
		if list == nil { // between batches: wait while the test holds the allocator
			s.mu.Lock()
			held := s.held
			s.mu.Unlock()
			if held != nil {
				select {
				case <-held:
				case <-s.closed:
					return
				}
			}
		}
		var req *allocRequest
		select {
		case req = <-s.pending:
		case <-s.closed:
			return
		default:
			// Nothing pending: the batch ends; sleep to let the next one gather.
			list, count = nil, 0
			served = false
			deliver()
			s.mu.Lock()
			wait := s.batchWait
			s.mu.Unlock()
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-s.closed:
					t.Stop()
					return
				}
				continue
			}
			select {
			case req = <-s.pending:
			case <-s.closed:
				return
			}
		}
		s.mu.Lock()
		if !served { // the first request of a batch
			served = true
			s.batches++
		}
		count++
		key := priorityKey(req.gsa)
		if count >= maxBatchBeforeRefresh || key != sortKey {
			list, count = nil, 0
			s.mu.Unlock()
			deliver()
			s.mu.Lock()
		}
		sortKey = key
		if list == nil {
			list = s.listLocked()
		}
		var res allocResult
		list, res = s.allocateLocked(list, req)
		s.mu.Unlock()
		if res.err != nil && req.attempt < conflictRetries-1 {
			// allocateFromLocalCluster's Retry: the request goes round again.
			req.attempt++
			time.AfterFunc(conflictRetryWait, func() { s.enqueue(req) })
			continue
		}
		answers = append(answers, answer{req, res})
	}
}

// enqueue puts req on the pending queue unless the server has closed.
func (s *Server) enqueue(req *allocRequest) {
	select {
	case s.pending <- req:
	case <-s.closed:
	}
}

// listLocked is a new batch's list: the cached GameServers in a fresh slice.
func (s *Server) listLocked() []*agones.GameServer {
	list := make([]*agones.GameServer, 0, len(s.cache))
	for _, gs := range s.cache {
		list = append(list, gs)
	}
	return list
}

// allocateLocked serves one request against the batch's list, returning the list
// without the chosen GameServer.
func (s *Server) allocateLocked(list []*agones.GameServer, req *allocRequest) ([]*agones.GameServer, allocResult) {
	i := s.findLocked(list, req.gsa, req.stale)
	if i < 0 {
		return list, allocResult{}
	}
	chosen := list[i]
	list = slices.Delete(slices.Clone(list), i, i+1)
	key := chosen.Namespace + "/" + chosen.Name
	if _, ok := s.cache[key]; !ok {
		return list, allocResult{contention: true}
	}
	delete(s.cache, key)
	stored, ok := s.gameServers[key]
	if !ok {
		return list, allocResult{err: apierrors.NewNotFound(schema.GroupResource{Group: agones.GroupVersion.Group, Resource: "gameservers"}, chosen.Name)}
	}
	base := chosen
	if req.stale {
		base = stored // the actions run on the current object: nothing conflicts
	}
	if base.ResourceVersion != stored.ResourceVersion {
		return list, allocResult{err: fmt.Errorf("error updating allocated gameserver: %w",
			apierrors.NewConflict(schema.GroupResource{Group: agones.GroupVersion.Group, Resource: "gameservers"}, chosen.Name,
				fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again")))}
	}
	return list, allocResult{gs: s.applyLocked(stored, req.gsa)}
}

// priorityKey identifies the sort order a request needs (gsa.SortKey in Agones).
func priorityKey(gsa *agones.GameServerAllocation) string {
	return fmt.Sprint(gsa.Spec.Scheduling, gsa.Spec.Priorities)
}

// findLocked returns the index in list of the GameServer the allocation picks, or -1:
// candidates are the listed GameServers of the request's namespace, in Agones' order;
// the first selector with a match wins. With stale, counter and list filters are not
// applied.
func (s *Server) findLocked(list []*agones.GameServer, gsa *agones.GameServerAllocation, stale bool) int {
	// Node counts come from every GameServer the controller knows (PerNodeCounter).
	type nodeCount struct{ allocated, ready int }
	nodes := map[string]*nodeCount{}
	for _, gs := range s.gameServers {
		c := nodes[gs.Status.NodeName]
		if c == nil {
			c = &nodeCount{}
			nodes[gs.Status.NodeName] = c
		}
		switch gs.Status.State {
		case agones.GameServerStateAllocated:
			c.allocated++
		case agones.GameServerStateReady:
			c.ready++
		}
	}
	idx := make([]int, 0, len(list))
	for i, gs := range list {
		if gs.Namespace == gsa.Namespace {
			idx = append(idx, i)
		}
	}
	prio := func(a, b *agones.GameServer) int { return comparePriorities(gsa.Spec.Priorities, a, b) }
	count := func(gs *agones.GameServer) nodeCount {
		if c := nodes[gs.Status.NodeName]; c != nil {
			return *c
		}
		return nodeCount{}
	}
	slices.SortFunc(idx, func(i, j int) int {
		a, b := list[i], list[j]
		if gsa.Spec.Scheduling == agones.Packed {
			// Allocated first, then the nodes with the most Allocated, then the most Ready
			// servers; priorities only break ties.
			if a.Status.State != b.Status.State {
				if a.Status.State == agones.GameServerStateAllocated {
					return -1
				}
				return 1
			}
			na, nb := count(a), count(b)
			if na.allocated != nb.allocated {
				return nb.allocated - na.allocated
			}
			if na.ready != nb.ready {
				return nb.ready - na.ready
			}
		}
		if c := prio(a, b); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, sel := range gsa.Spec.Selectors {
		for _, i := range idx {
			if matches(&sel, list[i], stale) {
				return i
			}
		}
	}
	return -1
}

// applyLocked allocates gs, in Agones' order: labels and annotations merged,
// agones.dev/last-allocated set, state Allocated, then counter and list actions (silently
// clamped, or appended in order with duplicates skipped and values past capacity
// dropped), all in one write. It returns the stored object.
func (s *Server) applyLocked(old *agones.GameServer, gsa *agones.GameServerAllocation) *agones.GameServer {
	gs := old.DeepCopy()
	if gs.Labels == nil {
		gs.Labels = map[string]string{}
	}
	maps.Copy(gs.Labels, gsa.Spec.MetaPatch.Labels)
	if gs.Annotations == nil {
		gs.Annotations = map[string]string{}
	}
	maps.Copy(gs.Annotations, gsa.Spec.MetaPatch.Annotations)
	gs.Annotations[agones.AnnotationLastAllocated] = s.now().UTC().Format(time.RFC3339Nano)
	gs.Status.State = agones.GameServerStateAllocated
	for k, a := range gsa.Spec.Counters {
		c, ok := gs.Status.Counters[k]
		if !ok {
			continue // Agones only emits a Warning event
		}
		if a.Capacity != nil {
			c.Capacity = *a.Capacity
		}
		if a.Amount != nil {
			switch a.Action {
			case agones.CounterIncrement:
				c.Count += *a.Amount
			case agones.CounterDecrement:
				c.Count -= *a.Amount
			}
		}
		c.Count = min(max(c.Count, 0), c.Capacity)
		gs.Status.Counters[k] = c
	}
	for k, a := range gsa.Spec.Lists {
		l, ok := gs.Status.Lists[k]
		if !ok {
			continue
		}
		if a.Capacity != nil {
			l.Capacity = *a.Capacity
			if int64(len(l.Values)) > l.Capacity {
				l.Values = l.Values[:l.Capacity]
			}
		}
		l.Values = slices.DeleteFunc(l.Values, func(v string) bool { return slices.Contains(a.DeleteValues, v) })
		for _, v := range a.AddValues {
			if slices.Contains(l.Values, v) || int64(len(l.Values)) >= l.Capacity {
				continue // duplicates ignored; past capacity dropped with only a Warning event
			}
			l.Values = append(l.Values, v)
		}
		gs.Status.Lists[k] = l
	}
	s.storeLocked(gs, old, watch.Modified)
	return gs.DeepCopy()
}

// allocationStatus is the response status for an allocated GameServer.
func allocationStatus(gs *agones.GameServer) agones.GameServerAllocationStatus {
	return agones.GameServerAllocationStatus{
		State:          agones.GameServerAllocationAllocated,
		GameServerName: gs.Name,
		Ports:          gs.Status.Ports,
		Address:        gs.Status.Address,
		Addresses:      gs.Status.Addresses,
		NodeName:       gs.Status.NodeName,
		Source:         "local",
		Metadata:       &agones.GameServerMetadata{Labels: gs.Labels, Annotations: gs.Annotations},
		Counters:       gs.Status.Counters,
		Lists:          gs.Status.Lists,
	}
}
