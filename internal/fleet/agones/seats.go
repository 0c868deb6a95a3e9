package agones

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/match"
)

// Seats in live rooms, and Agones' batches.
//
// Agones serves allocations in batches (every 500 ms by default). A GameServer chosen in
// a batch leaves the allocator's cache until its update is seen, so in one batch a room
// can be allocated once: every other allocation that only that room can satisfy comes
// back UnAllocated, free seats or not. So Usher does not send one allocation per joiner.
// Joins to one room wait in the room's queue; one goroutine (the queue's leader) sends
// them as one GameServerAllocation adding several players (at most the free seats the
// watch shows, less the seats in flight), and each joiner learns from the returned
// players List whether their id landed. Quick matches queue per game and go out the same
// way, one allocation per candidate room, the fullest first.
//
// An UnAllocated answer for a room the watch shows with a free seat means "busy": the
// queue backs off (match.Retry) and tries again, up to each joiner's deadline. A joiner
// hears room_full only when the room is full.

// seatRequest is one player waiting in a queue.
type seatRequest struct {
	player   string
	deadline time.Time
	done     chan seatResult // buffered: the leader never blocks on it
	canceled atomic.Bool     // the joiner gave up: skip it unless already sent
	lastErr  error           // why the last try failed (leader only)
}

type seatResult struct {
	srv match.Server
	err error
}

func (r *seatRequest) finish(srv match.Server, err error) {
	select {
	case r.done <- seatResult{srv, err}:
	default: // finished already
	}
}

// seatQueue is the queue of one room (join by code) or one game (quick match).
// Its leader removes it from queues.byKey, under queues.mu, when it finds it empty.
type seatQueue struct {
	key     string
	waiting []*seatRequest
}

// queues holds the seat queues and the seats in flight, by room code.
type queues struct {
	mu       sync.Mutex
	byKey    map[string]*seatQueue
	inflight map[string]int       // room code → players in allocations not yet answered
	known    map[string]knownList // room code → its players List as the last allocation returned it
	creating map[string]int       // game id → creates in flight
}

// knownList is a room's players List as an Allocated response showed it. The response
// is newer than the watch until the watch shows that allocation (its
// agones.dev/last-allocated); until then Usher counts free seats from it.
type knownList struct {
	allocated time.Time // the response's agones.dev/last-allocated
	values    int
	capacity  int
}

// maxListValues is the most values an Agones List holds.
const maxListValues = 1000

// errBusy: Agones answered UnAllocated for a room the watch shows with a free seat.
var errBusy = errors.New("room busy: its game server is being allocated")

// enqueue adds a request for player to the queue under key, starting its leader with
// lead if the queue was idle, and waits for the answer.
func (f *Fleet) enqueue(ctx context.Context, key, player string, lead func(*seatQueue)) (match.Server, error) {
	deadline, ok := match.Deadline(ctx)
	if !ok {
		deadline = f.clk.Now().Add(f.cfg.Retry.Wait)
	}
	r := &seatRequest{player: player, deadline: deadline, done: make(chan seatResult, 1)}
	f.q.mu.Lock()
	q, running := f.q.byKey[key]
	if !running {
		q = &seatQueue{key: key}
		f.q.byKey[key] = q
	}
	q.waiting = append(q.waiting, r)
	f.q.mu.Unlock()
	if !running {
		go lead(q)
	}
	select {
	case res := <-r.done:
		return res.srv, res.err
	case <-ctx.Done():
		r.canceled.Store(true)
		select {
		case res := <-r.done:
			return res.srv, res.err
		default:
		}
		return match.Server{}, ctx.Err()
	}
}

// takeLocked removes the canceled requests from q, fails those whose deadline has passed
// with their last error, and returns the rest (q keeps them). When none is left it
// retires q (its leader must return).
func (f *Fleet) takeLocked(q *seatQueue) []*seatRequest { return f.pruneLocked(q, f.clk.Now()) }

// pruneLocked is takeLocked for a try at time at: requests whose deadline is before it
// are failed.
func (f *Fleet) pruneLocked(q *seatQueue, at time.Time) []*seatRequest {
	live := q.waiting[:0]
	for _, r := range q.waiting {
		switch {
		case r.canceled.Load():
		case r.lastErr != nil && at.After(r.deadline):
			r.finish(match.Server{}, r.lastErr)
		default:
			live = append(live, r)
		}
	}
	clear(q.waiting[len(live):])
	q.waiting = live
	if len(live) == 0 {
		delete(f.q.byKey, q.key)
	}
	return live
}

// backoff waits the next step of b, first failing (with their last error) the requests
// of q that cannot be tried again in time. It returns false, having retired q, if q has
// no request left.
func (f *Fleet) backoff(q *seatQueue, b *backoffState) bool {
	d := b.next()
	f.q.mu.Lock()
	n := len(f.pruneLocked(q, f.clk.Now().Add(d)))
	f.q.mu.Unlock()
	if n == 0 {
		return false
	}
	_ = f.cfg.Retry.Sleep(context.Background(), d)
	return true
}

// backoffState steps the retry policy's backoff; a round that seats someone resets it.
type backoffState struct {
	f *Fleet
	b *wait.Backoff
}

func (b *backoffState) next() time.Duration {
	if b.b == nil {
		bo := b.f.cfg.Retry.Backoff
		b.b = &bo
	}
	return b.b.Step()
}

func (b *backoffState) reset() { b.b = nil }

// freeLocked is how many seats room has free, less those in flight: from its players
// List as the watch shows it in gs (capacity less values; the game's max players without
// a List), or as the last allocation returned it if the watch has not seen that one yet.
// gs may be nil (the watch does not know the room): then the game's max players, or the
// last allocation's List.
func (f *Fleet) freeLocked(g *Game, gs *agonesv1.GameServer, room string) int {
	capacity, values := g.MaxPlayers, 0
	if gs != nil {
		if l, ok := gs.Status.Lists[contract.PlayersList]; ok {
			capacity = int(l.Capacity)
		}
		values = len(seats(gs))
	}
	if k, ok := f.q.known[room]; ok {
		if !caughtUp(gs, k) {
			capacity, values = k.capacity, k.values
		} else {
			delete(f.q.known, room)
		}
	}
	return capacity - values - f.q.inflight[room]
}

func (f *Fleet) knownLocked(room string) bool {
	_, ok := f.q.known[room]
	return ok
}

// forget drops what allocations told of room once the watch shows gs at least as new
// (or gone), so that known holds only rooms whose watch lags.
func (f *Fleet) forget(room string, gs *agonesv1.GameServer) {
	f.q.mu.Lock()
	defer f.q.mu.Unlock()
	k, ok := f.q.known[room]
	if !ok {
		return
	}
	if gs == nil || caughtUp(gs, k) {
		delete(f.q.known, room)
	}
}

// caughtUp reports whether the watch's gs shows the allocation k was learnt from (or a
// later one): its agones.dev/last-allocated is later, or the same with the same number of
// seats (two allocations in one clock tick cannot be told apart by time alone).
func caughtUp(gs *agonesv1.GameServer, k knownList) bool {
	if gs == nil {
		return false
	}
	seen, err := time.Parse(time.RFC3339Nano, gs.Annotations[agonesv1.AnnotationLastAllocated])
	if err != nil {
		return false
	}
	return seen.After(k.allocated) || (seen.Equal(k.allocated) && len(seats(gs)) == k.values)
}

// learnLocked records the players List of an Allocated response for freeLocked.
func (f *Fleet) learnLocked(room string, res *agonesv1.GameServerAllocation) {
	if res.Status.Metadata == nil {
		return
	}
	at, err := time.Parse(time.RFC3339Nano, res.Status.Metadata.Annotations[agonesv1.AnnotationLastAllocated])
	l, ok := res.Status.Lists[contract.PlayersList]
	if err != nil || !ok {
		return
	}
	if k, ok := f.q.known[room]; ok && k.allocated.After(at) {
		return
	}
	f.q.known[room] = knownList{allocated: at, values: len(l.Values), capacity: int(l.Capacity)}
}

// gather waits the coalescing window before a queue's first round, so that players who
// ask at the same moment go out in one allocation.
func (f *Fleet) gather() {
	if f.cfg.Coalesce > 0 {
		_ = f.cfg.Retry.Sleep(context.Background(), f.cfg.Coalesce)
	}
}

// answerSeatedLocked answers the waiting players of q whom the watch already shows seated
// (seatedIn returns their GameServer, or nil) with that server, and returns the others,
// which q keeps.
func (f *Fleet) answerSeatedLocked(q *seatQueue, g *Game, seatedIn func(player string) *agonesv1.GameServer) []*seatRequest {
	kept := q.waiting[:0]
	for _, r := range q.waiting {
		if gs := seatedIn(r.player); gs != nil {
			srv, err := f.server(g, gs)
			r.finish(srv, err)
			continue
		}
		kept = append(kept, r)
	}
	clear(q.waiting[len(kept):])
	q.waiting = kept
	return kept
}

// answeredLocked takes the n players of an answered allocation to room out of the seats
// in flight and learns the room's List from an Allocated answer, which it reports.
func (f *Fleet) answeredLocked(room string, n int, res *agonesv1.GameServerAllocation, err error) (allocated bool) {
	if f.q.inflight[room] -= n; f.q.inflight[room] == 0 {
		delete(f.q.inflight, room)
	}
	if err != nil || res.Status.State != agonesv1.GameServerAllocationAllocated {
		return false
	}
	f.learnLocked(room, res)
	return true
}

func playersOf(batch []*seatRequest) []string {
	players := make([]string, len(batch))
	for i, r := range batch {
		players[i] = r.player
	}
	return players
}

// ---- join by code ----

// leadRoom serves the join queue of room until it is empty: each round sends the
// waiting players (at most the free seats) in one allocation.
func (f *Fleet) leadRoom(g *Game, room string) func(*seatQueue) {
	return func(q *seatQueue) {
		b := backoffState{f: f}
		full := false // this queue's last allocation found the room full
		f.gather()
		for {
			f.q.mu.Lock()
			waiting := f.takeLocked(q)
			if len(waiting) == 0 {
				f.q.mu.Unlock()
				return
			}
			gs := f.liveRoom(room)
			if gs != nil && f.gameOf(gs) != g {
				for _, r := range waiting {
					r.finish(match.Server{}, fmt.Errorf("join room %s of %s: %w", room, g.ID, match.ErrRoomNotFound))
				}
				q.waiting = nil
				f.q.mu.Unlock()
				return
			}
			n := len(waiting)
			if gs != nil {
				waiting = f.answerSeatedLocked(q, g, func(player string) *agonesv1.GameServer {
					if slices.Contains(seats(gs), player) {
						return gs
					}
					return nil
				})
			}
			free := f.freeLocked(g, gs, room)
			_, fresh := f.q.known[room]
			switch {
			case free > 0:
				n = min(len(waiting), free) // at most the free seats
			case (fresh || full) && f.q.inflight[room] == 0:
				// Agones itself just answered that the room is full, and the watch shows
				// no seat freed since.
				for _, r := range waiting {
					r.finish(match.Server{}, fmt.Errorf("join room %s: %w", room, match.ErrRoomFull))
				}
				f.m.AllocationPlayers.WithLabelValues(g.ID, "join", "refused").Add(float64(len(waiting)))
				q.waiting = nil
				f.q.mu.Unlock()
				continue
			default:
				// The watch shows no free seat: ask with everyone, so that one answer
				// settles them all (an Agones List holds at most 1000 values).
				n = min(len(waiting), maxListValues)
			}
			batch := slices.Clone(waiting[:n])
			q.waiting = slices.Delete(q.waiting, 0, n)
			f.q.inflight[room] += n
			f.q.mu.Unlock()

			res, err := f.allocateOnce(g, "join", "join room "+room, joinAllocation(g, room, playersOf(batch)...))

			f.q.mu.Lock()
			if f.answeredLocked(room, n, res, err) {
				l := res.Status.Lists[contract.PlayersList]
				full = int64(len(l.Values)) >= l.Capacity
			}
			requeue, seated := f.joinOutcome(g, room, batch, res, err)
			q.waiting = append(requeue, q.waiting...)
			f.q.mu.Unlock()
			if seated > 0 || len(requeue) == 0 {
				b.reset()
				continue
			}
			if !f.backoff(q, &b) {
				return
			}
		}
	}
}

// joinOutcome answers the players of one join allocation and returns those to try
// again, and how many were seated. Called with f.q.mu held.
func (f *Fleet) joinOutcome(g *Game, room string, batch []*seatRequest, res *agonesv1.GameServerAllocation, err error) (requeue []*seatRequest, seated int) {
	fail := func(err error) {
		for _, r := range batch {
			r.finish(match.Server{}, err)
		}
	}
	switch {
	case err != nil:
		fail(fmt.Errorf("join room %s: %w", room, err))
		return nil, 0
	case res.Status.State == agonesv1.GameServerAllocationContention:
		for _, r := range batch {
			r.lastErr = fmt.Errorf("join room %s of %s: contention: %w", room, g.ID, match.ErrNoCapacity)
		}
		return batch, 0
	case res.Status.State == agonesv1.GameServerAllocationUnAllocated:
		gs := f.liveRoom(room)
		switch {
		case gs != nil && f.gameOf(gs) != g:
			fail(fmt.Errorf("join room %s of %s: %w", room, g.ID, match.ErrRoomNotFound))
			return nil, 0
		case gs == nil && !f.knownLocked(room):
			fail(fmt.Errorf("join room %s of %s: %w", room, g.ID, match.ErrRoomNotFound))
			return nil, 0
		case f.freeLocked(g, gs, room) > 0: // gs may be nil: a room just allocated, not in the watch yet
			for _, r := range batch {
				r.lastErr = fmt.Errorf("join room %s: %w: %w", room, errBusy, match.ErrNoCapacity)
			}
			return batch, 0
		default:
			f.m.AllocationPlayers.WithLabelValues(g.ID, "join", "refused").Add(float64(len(batch)))
			fail(fmt.Errorf("join room %s: %w", room, match.ErrRoomFull))
			return nil, 0
		}
	}
	return f.seat(g, "join", room, batch, res, true)
}

// seat answers the players of an Allocated result: those in the players List have their
// seat; the others were dropped past the capacity, and are answered room_full if the
// List is full, else returned to try again.
//
// For quick match (refuseFull false) a player dropped from a full room is returned too:
// another room may have a seat.
func (f *Fleet) seat(g *Game, op, room string, batch []*seatRequest, res *agonesv1.GameServerAllocation, refuseFull bool) (requeue []*seatRequest, seated int) {
	list := res.Status.Lists[contract.PlayersList]
	for _, r := range batch {
		srv, err := f.allocated(g, res, room, r.player)
		switch {
		case err == nil:
			seated++
			r.finish(srv, nil)
		case errors.Is(err, errSeatDropped) && refuseFull && int64(len(list.Values)) >= list.Capacity:
			f.m.AllocationPlayers.WithLabelValues(g.ID, op, "dropped").Inc()
			r.finish(match.Server{}, fmt.Errorf("room %s: %w: %w", room, match.ErrRoomFull, err))
		case errors.Is(err, errSeatDropped):
			f.m.AllocationPlayers.WithLabelValues(g.ID, op, "dropped").Inc()
			r.lastErr = fmt.Errorf("room %s: %w: %w", room, match.ErrNoCapacity, err)
			requeue = append(requeue, r)
		default:
			r.finish(match.Server{}, fmt.Errorf("room %s: %w", room, err))
		}
	}
	f.m.AllocationPlayers.WithLabelValues(g.ID, op, "seated").Add(float64(seated))
	return requeue, seated
}

// ---- quick match ----

// leadQuick serves the quick-match queue of g until it is empty. Each round deals the
// waiting players to the public rooms the watch shows with free seats, the fullest first,
// and sends one allocation per room, all at once. Players left over when every such room
// is dealt out are answered match.ErrRoomNotFound (the caller creates a room). A room
// that seated nobody in a round is skipped until the queue has backed off.
func (f *Fleet) leadQuick(g *Game) func(*seatQueue) {
	return func(q *seatQueue) {
		b := backoffState{f: f}
		skip := map[string]bool{}
		f.gather()
		for {
			f.q.mu.Lock()
			waiting := f.takeLocked(q)
			if len(waiting) == 0 {
				f.q.mu.Unlock()
				return
			}
			type candidate struct {
				gs   *agonesv1.GameServer
				room string
				free int
			}
			var cands []candidate
			waiting = f.answerSeatedLocked(q, g, func(player string) *agonesv1.GameServer { return f.seatedPublic(g, player) })
			skipped := false
			for _, gs := range f.gameServers(g.ID) {
				if !isLiveRoom(gs) || gs.Labels[contract.LabelPublic] != "true" {
					continue
				}
				room := gs.Labels[contract.LabelRoom]
				free := f.freeLocked(g, gs, room)
				if free <= 0 {
					continue
				}
				if skip[room] {
					skipped = true
					continue
				}
				cands = append(cands, candidate{gs, room, free})
			}
			slices.SortFunc(cands, func(a, b candidate) int {
				return cmp.Or(cmp.Compare(a.free, b.free), roomCreated(a.gs).Compare(roomCreated(b.gs)), cmp.Compare(a.room, b.room))
			})
			type deal struct {
				room  string
				batch []*seatRequest
				res   *agonesv1.GameServerAllocation
				err   error
			}
			var deals []*deal
			next := 0
			for _, c := range cands {
				if next == len(waiting) {
					break
				}
				k := min(c.free, len(waiting)-next)
				deals = append(deals, &deal{room: c.room, batch: slices.Clone(waiting[next : next+k])})
				f.q.inflight[c.room] += k
				next += k
			}
			if next < len(waiting) && !skipped {
				// More players than free seats in public rooms: the rest make new rooms.
				for _, r := range waiting[next:] {
					r.finish(match.Server{}, fmt.Errorf("quick join %s: no public room with a free seat: %w", g.ID, match.ErrRoomNotFound))
				}
				q.waiting = nil
			} else {
				q.waiting = slices.Clone(waiting[next:])
			}
			f.q.mu.Unlock()
			if len(deals) == 0 {
				// Every room with a free seat was busy: back off, then try them again.
				clear(skip)
				if !f.backoff(q, &b) {
					return
				}
				continue
			}

			var wg sync.WaitGroup
			for _, d := range deals {
				wg.Go(func() {
					d.res, d.err = f.allocateOnce(g, "quick", "quick join "+g.ID+" room "+d.room, quickAllocation(g, d.room, playersOf(d.batch)...))
				})
			}
			wg.Wait()

			f.q.mu.Lock()
			var requeue []*seatRequest
			seated := 0
			for _, d := range deals {
				f.answeredLocked(d.room, len(d.batch), d.res, d.err)
				again, n := f.quickOutcome(g, d.room, d.batch, d.res, d.err)
				if n == 0 {
					skip[d.room] = true
				}
				seated += n
				requeue = append(requeue, again...)
			}
			q.waiting = append(requeue, q.waiting...)
			f.q.mu.Unlock()
			if seated > 0 || len(requeue) == 0 {
				b.reset()
				continue
			}
			// Nobody seated: the rooms left to try are those not skipped. Back off first
			// only if none is left, as the next round would otherwise find none.
			if f.hasCandidate(g, skip) {
				continue
			}
			clear(skip)
			if !f.backoff(q, &b) {
				return
			}
		}
	}
}

// quickOutcome is joinOutcome for a quick-match allocation: every player not seated is
// tried again (in another room, or this one after a back-off), never refused.
func (f *Fleet) quickOutcome(g *Game, room string, batch []*seatRequest, res *agonesv1.GameServerAllocation, err error) (requeue []*seatRequest, seated int) {
	switch {
	case err != nil:
		for _, r := range batch {
			r.finish(match.Server{}, fmt.Errorf("quick join %s: %w", g.ID, err))
		}
		return nil, 0
	case res.Status.State != agonesv1.GameServerAllocationAllocated:
		for _, r := range batch {
			r.lastErr = fmt.Errorf("quick join %s: room %s %s: %w: %w", g.ID, room, res.Status.State, errBusy, match.ErrNoCapacity)
		}
		return batch, 0
	}
	return f.seat(g, "quick", room, batch, res, false)
}

// hasCandidate reports whether the watch shows a public room of g with a free seat that
// skip does not name. Called with f.q.mu held.
func (f *Fleet) hasCandidate(g *Game, skip map[string]bool) bool {
	for _, gs := range f.gameServers(g.ID) {
		room := gs.Labels[contract.LabelRoom]
		if isLiveRoom(gs) && gs.Labels[contract.LabelPublic] == "true" && !skip[room] && f.freeLocked(g, gs, room) > 0 {
			return true
		}
	}
	return false
}

// seatedPublic is the public live room of g where the watch shows player seated, or nil.
func (f *Fleet) seatedPublic(g *Game, player string) *agonesv1.GameServer {
	for _, gs := range f.gameServers(g.ID) {
		if isLiveRoom(gs) && gs.Labels[contract.LabelPublic] == "true" && slices.Contains(seats(gs), player) {
			return gs
		}
	}
	return nil
}
