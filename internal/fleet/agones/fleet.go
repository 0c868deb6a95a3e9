// Package agones is the fleet backend for Kubernetes: rooms are Agones GameServers.
//
// It keeps no state of its own. A room is an Allocated GameServer of the game's Fleet
// carrying the room label (contract.LabelRoom), set by the GameServerAllocation that
// created it; its seats are the values of the GameServer's players List. Create allocates a
// Ready server with the room label and the host's seat, Join re-allocates the Allocated
// server with that label and a free seat, adding the player in the same atomic step, and
// QuickJoin does the same for a public room, fullest first. Joins that arrive together go
// out together, several players in one allocation (seats.go says why). Room lookups,
// listings and metrics come from a watch on GameServers (an informer), so a restarted
// Usher, or several replicas, see the same rooms.
package agones

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/metrics"
)

// AnnotationRoomCreated is set (RFC3339Nano) by the allocation that creates a room. Rooms
// report it as their creation time: agones.dev/last-allocated changes at every join.
const AnnotationRoomCreated = "usher.dev/room-created"

// errNotSynced is returned (wrapping match.ErrNoCapacity, so callers answer 503 and retry)
// until the GameServer informers have synced: before that, room lookups would be wrong.
var errNotSynced = fmt.Errorf("game server cache not synced yet: %w", match.ErrNoCapacity)

// Fleet is the Agones fleet backend.
type Fleet struct {
	cfg       Config
	games     map[string]*Game // by id
	byFleet   map[string]*Game // by agonesv1.FleetKey(namespace, fleet)
	client    *agonesv1.Client
	informers map[string]cache.SharedIndexInformer // by namespace
	m         *metrics.Metrics
	clk       clock.Clock
	log       *slog.Logger

	running atomic.Bool
	synced  atomic.Bool

	metricsMu sync.Mutex // serialises publish, which informers of several namespaces call
	warned    sync.Map   // game ids whose capacity mismatch was logged
	q         queues     // joins waiting for a seat (seats.go)
}

var _ match.Fleet = (*Fleet)(nil)

// New checks cfg, applies its defaults and returns a fleet that allocates through client
// and watches the GameServers of every configured Fleet (one informer per namespace,
// filtered by the agones.dev/fleet label) once Run is called. A nil m records metrics on a
// registry of its own, a nil clk is the real clock and a nil log discards.
func New(cfg Config, client *agonesv1.Client, m *metrics.Metrics, clk clock.Clock, log *slog.Logger) (*Fleet, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agones fleet config: %w", err)
	}
	if client == nil {
		return nil, errors.New("agones fleet: nil client")
	}
	if m == nil {
		m = metrics.New(prometheus.NewRegistry())
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{
		cfg:       cfg,
		games:     map[string]*Game{},
		byFleet:   map[string]*Game{},
		client:    client,
		informers: map[string]cache.SharedIndexInformer{},
		m:         m,
		clk:       clk,
		log:       log,
		q:         queues{byKey: map[string]*seatQueue{}, inflight: map[string]int{}, known: map[string]knownList{}, creating: map[string]int{}},
	}
	if f.cfg.Retry.Clock == nil {
		f.cfg.Retry.Clock = clk
	}
	fleetsByNS := map[string][]string{}
	for i := range cfg.Games {
		g := &cfg.Games[i]
		f.games[g.ID] = g
		f.byFleet[agonesv1.FleetKey(g.Namespace, g.Fleet)] = g
		fleetsByNS[g.Namespace] = append(fleetsByNS[g.Namespace], g.Fleet)
	}
	for ns, fleets := range fleetsByNS {
		req, err := labels.NewRequirement(agonesv1.LabelFleet, selection.In, fleets)
		if err != nil {
			return nil, fmt.Errorf("agones fleet: selector for namespace %s: %w", ns, err)
		}
		inf := agonesv1.NewGameServerInformer(client, ns, cfg.Resync, labels.NewSelector().Add(*req).String())
		if _, err := inf.AddEventHandler(f.eventHandler()); err != nil {
			return nil, fmt.Errorf("agones fleet: %w", err)
		}
		f.informers[ns] = inf
	}
	for _, g := range cfg.Games {
		f.publish(&g)
	}
	return f, nil
}

// Run starts the informers, waits for them to sync (Synced turns true), and runs until ctx
// is done, then stops them and returns nil. If the API server cannot be reached it keeps
// trying (Synced stays false) until ctx is done.
func (f *Fleet) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("agones fleet: Run called twice")
	}
	namespaces := slices.Sorted(maps.Keys(f.informers))
	f.log.Info("agones fleet starting", "games", len(f.games), "namespaces", namespaces)
	var wg sync.WaitGroup
	synced := make([]cache.InformerSynced, 0, len(f.informers))
	for _, inf := range f.informers {
		wg.Go(func() { inf.RunWithContext(ctx) })
		synced = append(synced, inf.HasSynced)
	}
	if cache.WaitForCacheSync(ctx.Done(), synced...) {
		f.synced.Store(true)
		for _, g := range f.games {
			f.publish(g)
		}
		f.log.Info("agones fleet synced", "gameservers", len(f.gameServers("")))
	}
	<-ctx.Done()
	wg.Wait()
	f.synced.Store(false)
	f.log.Info("agones fleet stopped")
	return nil
}

// Synced reports whether the GameServer caches are synced, for /readyz. Until they are,
// Create, Join, QuickJoin and Rooms fail with match.ErrNoCapacity.
func (f *Fleet) Synced() bool { return f.synced.Load() }

// Create allocates a Ready server of game's Fleet to a new room: the allocation labels it
// with the room code, public or not, and the game, and adds player to its players List.
// Errors: match.ErrUnknownGame, match.ErrRoomExists (a live room of any configured game
// has that code, as far as the watch knows), match.ErrNoCapacity (no Ready server with a
// free seat, or Contention on every attempt).
func (f *Fleet) Create(ctx context.Context, game, room string, public bool, player string) (match.Server, error) {
	g, err := f.game(game)
	if err != nil {
		return match.Server{}, fmt.Errorf("create room %s: %w", room, err)
	}
	if room == "" || player == "" {
		return match.Server{}, fmt.Errorf("create room %q for player %q: empty room or player", room, player)
	}
	if msgs := validLabelValue(room); msgs != nil {
		return match.Server{}, fmt.Errorf("create room %q: invalid room code: %v", room, msgs)
	}
	if !f.Synced() {
		return match.Server{}, fmt.Errorf("create room %s: %w", room, errNotSynced)
	}
	if gs := f.liveRoom(room); gs != nil {
		return match.Server{}, fmt.Errorf("create room %s: %w (gameserver %s/%s)", room, match.ErrRoomExists, gs.Namespace, gs.Name)
	}
	// No more creates in flight than Ready servers in the watch: the others could only
	// come back UnAllocated. They hear no capacity now and try again later (match.Retry).
	done, err := f.startCreate(g)
	if err != nil {
		return match.Server{}, fmt.Errorf("create room %s: %w", room, err)
	}
	defer done()
	var res *agonesv1.GameServerAllocation
	err = f.cfg.Retry.Do(ctx, func(context.Context) error {
		var err error
		res, err = f.allocateOnce(g, "create", "create room "+room, createAllocation(g, room, public, player, f.clk.Now()))
		if err == nil && res.Status.State == agonesv1.GameServerAllocationContention {
			return fmt.Errorf("create room %s of %s: %w: contention: %w", room, g.ID, match.ErrRetry, match.ErrNoCapacity)
		}
		return err
	})
	if err != nil {
		return match.Server{}, err
	}
	if res.Status.State == agonesv1.GameServerAllocationUnAllocated {
		f.m.AllocationPlayers.WithLabelValues(g.ID, "create", "refused").Inc()
		return match.Server{}, fmt.Errorf("create room %s of %s: no Ready game server with a free seat in fleet %s/%s: %w",
			room, g.ID, g.Namespace, g.Fleet, match.ErrNoCapacity)
	}
	srv, err := f.allocated(g, res, room, player)
	if errors.Is(err, errSeatDropped) {
		// The server is Allocated under our label without its host: seat the host there as
		// any joiner, or, if it cannot take them, take the label off, so that no room is
		// left with nobody in it.
		f.m.AllocationPlayers.WithLabelValues(g.ID, "create", "dropped").Inc()
		f.log.Warn("room created without its host: the players list dropped the value; seating the host again",
			"game", g.ID, "room", room, "gameserver", res.Status.GameServerName, "ns", g.Namespace, "player", player)
		srv, err = f.enqueue(ctx, g.ID+"/"+room, player, f.leadRoom(g, room))
		if err != nil {
			f.release(g, room, res.Status.GameServerName, err)
			return match.Server{}, fmt.Errorf("create room %s: host not seated: %w: %w", room, errSeatDropped, match.ErrNoCapacity)
		}
	} else if err == nil {
		f.m.AllocationPlayers.WithLabelValues(g.ID, "create", "seated").Inc()
	}
	if err != nil {
		return match.Server{}, fmt.Errorf("create room %s: %w", room, err)
	}
	if srv.MaxPlayers != g.MaxPlayers {
		if _, seen := f.warned.LoadOrStore(g.ID, true); !seen {
			f.log.Warn("players list capacity differs from the game's max players; rooms follow the Fleet",
				"game", g.ID, "gameserver", srv.Name, "ns", g.Namespace, "capacity", srv.MaxPlayers, "max_players", g.MaxPlayers)
		}
	}
	f.log.Info("room created", "game", g.ID, "room", room, "gameserver", srv.Name, "ns", g.Namespace, "public", public)
	return srv, nil
}

// Join reserves a seat for player in the live room with that code by re-allocating its
// GameServer with the player added to the players List; players joining the room at the
// same moment are added in the same allocation. A player the watch already shows in the
// room gets the server back without an allocation. Errors: match.ErrUnknownGame,
// match.ErrRoomNotFound (also for a room of another game, or a code that cannot be a
// label value), match.ErrRoomFull (the room has no free seat), match.ErrNoCapacity (the
// room stayed busy, or Contention, until the retry policy's deadline).
func (f *Fleet) Join(ctx context.Context, game, room, player string) (match.Server, error) {
	g, err := f.game(game)
	if err != nil {
		return match.Server{}, fmt.Errorf("join room %s: %w", room, err)
	}
	if player == "" {
		return match.Server{}, fmt.Errorf("join room %s: empty player", room)
	}
	if room == "" || validLabelValue(room) != nil {
		return match.Server{}, fmt.Errorf("join room %q of %s: %w", room, g.ID, match.ErrRoomNotFound)
	}
	if !f.Synced() {
		return match.Server{}, fmt.Errorf("join room %s: %w", room, errNotSynced)
	}
	if gs := f.liveRoom(room); gs != nil {
		if f.gameOf(gs) != g {
			return match.Server{}, fmt.Errorf("join room %s of %s: %w", room, g.ID, match.ErrRoomNotFound)
		}
		if slices.Contains(seats(gs), player) {
			return f.server(g, gs)
		}
	}
	return f.enqueue(ctx, g.ID+"/"+room, player, f.leadRoom(g, room))
}

// QuickJoin reserves a seat for player in a live public room of game with a free seat,
// preferring the fullest (see leadQuick), or returns the public room where the watch
// shows player already seated. Errors: match.ErrUnknownGame, match.ErrRoomNotFound (no
// such room: the caller creates one), match.ErrNoCapacity (every such room stayed busy
// until the retry policy's deadline).
func (f *Fleet) QuickJoin(ctx context.Context, game, player string) (match.Server, error) {
	g, err := f.game(game)
	if err != nil {
		return match.Server{}, fmt.Errorf("quick join: %w", err)
	}
	if player == "" {
		return match.Server{}, fmt.Errorf("quick join %s: empty player", game)
	}
	if !f.Synced() {
		return match.Server{}, fmt.Errorf("quick join %s: %w", game, errNotSynced)
	}
	if gs := f.seatedPublic(g, player); gs != nil {
		return f.server(g, gs)
	}
	return f.enqueue(ctx, "quick/"+g.ID, player, f.leadQuick(g))
}

// Release does nothing: Usher may only create allocations and read GameServers, so it
// cannot take a value off a players List. The seat of a player who joined another room
// is released by the bridge when its ticket goes unused (Usher refuses it at /connect),
// or when the game server reports the player gone.
func (f *Fleet) Release(context.Context, string, string, string) error { return nil }

// Rooms lists the live rooms of game (every game when game is ""), oldest first, from the
// watch. Seats and Connected are both the length of the players List: Agones knows seats,
// not connections (the bridge keeps the List to the players holding or taking a seat).
// Errors: match.ErrUnknownGame, match.ErrNoCapacity (not synced yet).
func (f *Fleet) Rooms(ctx context.Context, game string) ([]match.Room, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if game != "" {
		if _, err := f.game(game); err != nil {
			return nil, fmt.Errorf("rooms: %w", err)
		}
	}
	if !f.Synced() {
		return nil, fmt.Errorf("rooms: %w", errNotSynced)
	}
	var rooms []match.Room
	for _, gs := range f.gameServers(game) {
		if !isLiveRoom(gs) {
			continue
		}
		g := f.gameOf(gs)
		n := len(seats(gs))
		rooms = append(rooms, match.Room{
			Code: gs.Labels[contract.LabelRoom], Game: g.ID, Server: gs.Name,
			Public: gs.Labels[contract.LabelPublic] == "true", MaxPlayers: maxPlayers(g, gs),
			Seats: n, Connected: n, CreatedAt: roomCreated(gs),
		})
	}
	slices.SortFunc(rooms, func(a, b match.Room) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Code, b.Code))
	})
	return rooms, nil
}

// ServerInfo describes one GameServer for the admin page, like local.ServerInfo.
type ServerInfo struct {
	Name      string
	Namespace string
	Game      string
	State     string // the Agones state: Ready, Allocated, Shutdown, ...
	Room      string // "" unless it holds a live room
	Public    bool
	Addr      string // where Usher dials it; "" until Agones reports the address and port
	Node      string
	// MaxPlayers is the players List's capacity; Seats its length, and Connected the same,
	// since Agones knows seats, not connections.
	MaxPlayers int
	Seats      int
	Connected  int
	Started    time.Time // the GameServer's creation
	Allocated  time.Time // its last allocation (agones.dev/last-allocated); zero if never
}

// Servers returns every GameServer of the configured Fleets the watch knows, by game and
// then name.
func (f *Fleet) Servers() []ServerInfo {
	var out []ServerInfo
	for _, gs := range f.gameServers("") {
		g := f.gameOf(gs)
		si := ServerInfo{
			Name: gs.Name, Namespace: gs.Namespace, Game: g.ID, State: string(gs.Status.State),
			Node: gs.Status.NodeName, MaxPlayers: maxPlayers(g, gs), Started: gs.CreationTimestamp.Time,
		}
		if isLiveRoom(gs) {
			si.Room = gs.Labels[contract.LabelRoom]
			si.Public = gs.Labels[contract.LabelPublic] == "true"
			si.Seats = len(seats(gs))
			si.Connected = si.Seats
		}
		si.Addr, _ = endpoint(g, gs.Status.Address, gs.Status.Addresses, gs.Status.Ports)
		si.Allocated, _ = time.Parse(time.RFC3339Nano, gs.Annotations[agonesv1.AnnotationLastAllocated])
		out = append(out, si)
	}
	slices.SortFunc(out, func(a, b ServerInfo) int {
		return cmp.Or(cmp.Compare(a.Game, b.Game), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// ---- allocation ----

// errSeatDropped: Agones allocated the server but the player is not in its players List.
// Allocation list actions drop values past capacity silently.
var errSeatDropped = errors.New("player not in the players list after allocation")

// allocateOnce sends gsa once and returns the result, whatever its state (Allocated,
// UnAllocated or Contention), or an error: 422, 500, timeouts and transport errors are
// not retried (a timed-out POST may have allocated). op (create, join, quick, release)
// labels the metrics; desc the errors.
func (f *Fleet) allocateOnce(g *Game, op, desc string, gsa *agonesv1.GameServerAllocation) (*agonesv1.GameServerAllocation, error) {
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.AllocateTimeout)
	defer cancel()
	res, err := f.client.Allocate(ctx, g.Namespace, gsa)
	if err != nil {
		f.m.Allocations.WithLabelValues(g.ID, op, "error").Inc()
		return nil, fmt.Errorf("%s of %s: %w", desc, g.ID, err)
	}
	switch st := res.Status.State; st {
	case agonesv1.GameServerAllocationAllocated, agonesv1.GameServerAllocationUnAllocated, agonesv1.GameServerAllocationContention:
		f.m.Allocations.WithLabelValues(g.ID, op, string(st)).Inc()
		return res, nil
	default:
		f.m.Allocations.WithLabelValues(g.ID, op, "error").Inc()
		return nil, fmt.Errorf("%s of %s: unknown allocation state %q", desc, g.ID, st)
	}
}

// startCreate counts a create of g in flight, unless as many are in flight as the watch
// shows Ready servers of g's Fleet: then it returns match.ErrNoCapacity. Call done
// when the create is answered.
func (f *Fleet) startCreate(g *Game) (done func(), err error) {
	ready := 0
	for _, gs := range f.gameServers(g.ID) {
		if gs.Status.State == agonesv1.GameServerStateReady && gs.DeletionTimestamp == nil {
			ready++
		}
	}
	f.q.mu.Lock()
	defer f.q.mu.Unlock()
	if n := f.q.creating[g.ID]; n >= ready {
		return nil, fmt.Errorf("no Ready game server free in fleet %s/%s (%d Ready in the watch, %d being allocated): %w",
			g.Namespace, g.Fleet, ready, n, match.ErrNoCapacity)
	}
	f.q.creating[g.ID]++
	return func() {
		f.q.mu.Lock()
		defer f.q.mu.Unlock()
		if f.q.creating[g.ID]--; f.q.creating[g.ID] == 0 {
			delete(f.q.creating, g.ID)
		}
	}, nil
}

// release takes the room label off room (releaseAllocation) after its host could not be
// seated (why), logging the outcome: best effort, the room holds nobody.
func (f *Fleet) release(g *Game, room, gameServer string, why error) {
	res, err := f.allocateOnce(g, "release", "release room "+room, releaseAllocation(g, room))
	if err == nil && res.Status.State != agonesv1.GameServerAllocationAllocated {
		err = fmt.Errorf("release room %s: %s", room, res.Status.State)
	}
	if err != nil {
		f.log.Error("room without its host could not be released; its game server ends it when it finds it empty",
			"game", g.ID, "room", room, "gameserver", gameServer, "ns", g.Namespace, "why", why, "err", err)
		return
	}
	f.log.Error("room created without its host was released", "game", g.ID, "room", room,
		"gameserver", gameServer, "ns", g.Namespace, "why", why)
}

// allocated turns an Allocated result into a Server, checking that player got a seat.
func (f *Fleet) allocated(g *Game, res *agonesv1.GameServerAllocation, room, player string) (match.Server, error) {
	st := res.Status
	list, ok := st.Lists[contract.PlayersList]
	if !ok || !slices.Contains(list.Values, player) {
		return match.Server{}, fmt.Errorf("gameserver %s/%s, player %s, list %v: %w", g.Namespace, st.GameServerName, player, list, errSeatDropped)
	}
	if room == "" {
		return match.Server{}, fmt.Errorf("gameserver %s/%s allocated without a room label", g.Namespace, st.GameServerName)
	}
	addr, err := endpoint(g, st.Address, st.Addresses, st.Ports)
	if err != nil {
		return match.Server{}, fmt.Errorf("gameserver %s/%s: %w", g.Namespace, st.GameServerName, err)
	}
	var public bool
	if st.Metadata != nil {
		public = st.Metadata.Labels[contract.LabelPublic] == "true"
	}
	mp := g.MaxPlayers
	if list.Capacity > 0 {
		mp = int(list.Capacity)
	}
	return match.Server{Name: st.GameServerName, Game: g.ID, Room: room, Addr: addr, Public: public, MaxPlayers: mp}, nil
}

// server is the Server of a live room the watch knows.
func (f *Fleet) server(g *Game, gs *agonesv1.GameServer) (match.Server, error) {
	addr, err := endpoint(g, gs.Status.Address, gs.Status.Addresses, gs.Status.Ports)
	if err != nil {
		return match.Server{}, fmt.Errorf("gameserver %s/%s: %w", gs.Namespace, gs.Name, err)
	}
	return match.Server{
		Name: gs.Name, Game: g.ID, Room: gs.Labels[contract.LabelRoom], Addr: addr,
		Public: gs.Labels[contract.LabelPublic] == "true", MaxPlayers: maxPlayers(g, gs),
	}, nil
}

// endpoint is where Usher dials a game server: the node address (DialAddress) or the pod
// IP (DialPod), and the port named g.PortName.
func endpoint(g *Game, address string, addresses []corev1.NodeAddress, ports []agonesv1.GameServerStatusPort) (string, error) {
	var port int32
	for _, p := range ports {
		if p.Name == g.PortName {
			port = p.Port
			break
		}
	}
	if port == 0 {
		return "", fmt.Errorf("no port named %q in status ports %v", g.PortName, ports)
	}
	host := address
	if g.Dial == DialPod {
		host = ""
		for _, a := range addresses {
			if a.Type == agonesv1.AddressTypePodIP {
				host = a.Address
				break
			}
		}
	}
	if host == "" {
		return "", fmt.Errorf("no address to dial (%s) in status", g.Dial)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}
