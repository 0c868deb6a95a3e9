package agones

import (
	"fmt"
	"time"

	"k8s.io/client-go/tools/cache"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/match"
)

// What the watch knows. The informers' objects are shared: never modify them.

// game returns the configured game with that id.
func (f *Fleet) game(id string) (*Game, error) {
	g, ok := f.games[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", match.ErrUnknownGame, id)
	}
	return g, nil
}

// gameOf is the configured game gs belongs to (by namespace and Fleet), or nil.
func (f *Fleet) gameOf(gs *agonesv1.GameServer) *Game {
	return f.byFleet[agonesv1.FleetKey(gs.Namespace, gs.Labels[agonesv1.LabelFleet])]
}

// gameServers returns the GameServers of game's Fleet, or of every configured Fleet when
// game is "".
func (f *Fleet) gameServers(game string) []*agonesv1.GameServer {
	var out []*agonesv1.GameServer
	for _, g := range f.games {
		if game != "" && g.ID != game {
			continue
		}
		objs, _ := f.informers[g.Namespace].GetIndexer().ByIndex(agonesv1.IndexByFleet, agonesv1.FleetKey(g.Namespace, g.Fleet))
		for _, obj := range objs {
			if gs, ok := obj.(*agonesv1.GameServer); ok {
				out = append(out, gs)
			}
		}
	}
	return out
}

// liveRoom returns the GameServer holding the live room with that code in any configured
// game, or nil.
func (f *Fleet) liveRoom(room string) *agonesv1.GameServer {
	for _, inf := range f.informers {
		objs, _ := inf.GetIndexer().ByIndex(agonesv1.IndexByRoom, room)
		for _, obj := range objs {
			if gs, ok := obj.(*agonesv1.GameServer); ok && isLiveRoom(gs) && f.gameOf(gs) != nil {
				return gs
			}
		}
	}
	return nil
}

// isLiveRoom: a room is an Allocated GameServer, not being deleted, with a room label.
// The label alone proves nothing: labels outlive the room when a server returns to Ready.
func isLiveRoom(gs *agonesv1.GameServer) bool {
	return gs.Status.State == agonesv1.GameServerStateAllocated && gs.DeletionTimestamp == nil &&
		gs.Labels[contract.LabelRoom] != ""
}

// seats are the players holding seats: the values of the players List.
func seats(gs *agonesv1.GameServer) []string {
	return gs.Status.Lists[contract.PlayersList].Values
}

// maxPlayers is the players List's capacity, or the game's max players without one.
func maxPlayers(g *Game, gs *agonesv1.GameServer) int {
	if l, ok := gs.Status.Lists[contract.PlayersList]; ok && l.Capacity > 0 {
		return int(l.Capacity)
	}
	return g.MaxPlayers
}

// roomCreated is when the room was created: AnnotationRoomCreated, else (for a room made
// by something other than Usher) the last allocation, else the GameServer's creation.
func roomCreated(gs *agonesv1.GameServer) time.Time {
	for _, key := range []string{AnnotationRoomCreated, agonesv1.AnnotationLastAllocated} {
		if t, err := time.Parse(time.RFC3339Nano, gs.Annotations[key]); err == nil {
			return t
		}
	}
	return gs.CreationTimestamp.Time
}

// ---- metrics and logs, driven by the watch ----

func (f *Fleet) eventHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if gs, ok := obj.(*agonesv1.GameServer); ok {
				f.changed(nil, gs)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, _ := oldObj.(*agonesv1.GameServer)
			gs, ok := newObj.(*agonesv1.GameServer)
			if ok {
				f.changed(old, gs)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if gs, ok := obj.(*agonesv1.GameServer); ok {
				f.changed(gs, nil)
			}
		},
	}
}

// changed logs rooms starting and ending and republishes the gauges of the games touched.
func (f *Fleet) changed(old, gs *agonesv1.GameServer) {
	var g *Game
	for _, x := range []*agonesv1.GameServer{old, gs} {
		if x != nil && f.gameOf(x) != nil {
			g = f.gameOf(x)
		}
	}
	if g == nil {
		return
	}
	wasRoom := old != nil && isLiveRoom(old)
	isRoom := gs != nil && isLiveRoom(gs)
	switch {
	case isRoom:
		f.forget(gs.Labels[contract.LabelRoom], gs)
	case wasRoom:
		f.forget(old.Labels[contract.LabelRoom], nil)
	}
	switch {
	case wasRoom && (!isRoom || old.Labels[contract.LabelRoom] != gs.Labels[contract.LabelRoom]):
		state := "Deleted"
		if gs != nil {
			state = string(gs.Status.State)
		}
		f.log.Info("room ended", "game", g.ID, "room", old.Labels[contract.LabelRoom], "gameserver", old.Name,
			"ns", old.Namespace, "state", state)
	}
	if f.Synced() {
		f.publish(g)
	}
}

// publish recomputes the gauges of g from the watch, so they stay exact. usher_players
// counts seats (the players Lists of live rooms): Agones knows seats, not connections.
func (f *Fleet) publish(g *Game) {
	f.metricsMu.Lock()
	defer f.metricsMu.Unlock()
	counts := map[agonesv1.GameServerState]int{}
	rooms, players := 0, 0
	for _, gs := range f.gameServers(g.ID) {
		counts[gs.Status.State]++
		if isLiveRoom(gs) {
			rooms++
			players += len(seats(gs))
		}
	}
	for _, st := range agonesv1.GameServerStates {
		f.m.GameServers.WithLabelValues(g.ID, string(st)).Set(float64(counts[st]))
	}
	f.m.Rooms.WithLabelValues(g.ID).Set(float64(rooms))
	f.m.Players.WithLabelValues(g.ID).Set(float64(players))
}
