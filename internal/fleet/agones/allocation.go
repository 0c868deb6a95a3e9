package agones

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/contract"
)

// The GameServerAllocations Usher sends. Every one filters on a free seat (minAvailable 1
// on the players List) and adds the player in the same step, because Agones drops list
// values past capacity silently; the result is checked all the same.

// createAllocation takes a Ready server of g's Fleet for a new room: the room, public and
// game labels (public is always set, since labels outlive rooms on reused servers), the
// room's creation time, and the host's seat.
func createAllocation(g *Game, room string, public bool, player string, now time.Time) *agonesv1.GameServerAllocation {
	return &agonesv1.GameServerAllocation{Spec: agonesv1.GameServerAllocationSpec{
		Selectors: []agonesv1.GameServerSelector{{
			LabelSelector:   metav1.LabelSelector{MatchLabels: map[string]string{agonesv1.LabelFleet: g.Fleet}},
			GameServerState: ptr(agonesv1.GameServerStateReady),
			Lists:           freeSeat(),
		}},
		Scheduling: agonesv1.Packed,
		MetaPatch: agonesv1.MetaPatch{
			Labels: map[string]string{
				contract.LabelRoom:   room,
				contract.LabelPublic: boolLabel(public),
				contract.LabelGame:   g.ID,
			},
			Annotations: map[string]string{AnnotationRoomCreated: now.UTC().Format(time.RFC3339Nano)},
		},
		Lists: addPlayers(player),
	}}
}

// joinAllocation re-allocates the Allocated server of g's Fleet carrying the room label,
// if it has a free seat, adding players in order (Agones seats as many as fit and drops
// the rest silently; the caller checks the returned List).
func joinAllocation(g *Game, room string, players ...string) *agonesv1.GameServerAllocation {
	return &agonesv1.GameServerAllocation{Spec: agonesv1.GameServerAllocationSpec{
		Selectors: []agonesv1.GameServerSelector{{
			LabelSelector: metav1.LabelSelector{MatchLabels: map[string]string{
				agonesv1.LabelFleet: g.Fleet,
				contract.LabelRoom:  room,
			}},
			GameServerState: ptr(agonesv1.GameServerStateAllocated),
			Lists:           freeSeat(),
		}},
		Scheduling: agonesv1.Packed,
		Lists:      addPlayers(players...),
	}}
}

// quickAllocation is joinAllocation for quick match: the room must also still be
// public. Usher picks the room (the fullest with a free seat, from the watch) rather
// than letting Agones pick among all public rooms, so that players who quick-match at
// the same moment go out together in one allocation per room, each room's seats counted.
func quickAllocation(g *Game, room string, players ...string) *agonesv1.GameServerAllocation {
	gsa := joinAllocation(g, room, players...)
	gsa.Spec.Selectors[0].LabelSelector.MatchLabels[contract.LabelPublic] = "true"
	return gsa
}

// releaseAllocation takes the room label off a room that holds nobody and cannot seat its
// host (a create whose host Agones dropped): it stops being a room, so nobody is sent to
// it, and its game server, allocated with no players, ends it as the contract says (an
// empty room). It adds nobody and needs no free seat.
func releaseAllocation(g *Game, room string) *agonesv1.GameServerAllocation {
	return &agonesv1.GameServerAllocation{Spec: agonesv1.GameServerAllocationSpec{
		Selectors: []agonesv1.GameServerSelector{{
			LabelSelector: metav1.LabelSelector{MatchLabels: map[string]string{
				agonesv1.LabelFleet: g.Fleet,
				contract.LabelRoom:  room,
			}},
			GameServerState: ptr(agonesv1.GameServerStateAllocated),
		}},
		Scheduling: agonesv1.Packed,
		MetaPatch: agonesv1.MetaPatch{Labels: map[string]string{
			contract.LabelRoom:   "",
			contract.LabelPublic: "false",
		}},
	}}
}

func freeSeat() map[string]agonesv1.ListSelector {
	return map[string]agonesv1.ListSelector{contract.PlayersList: {MinAvailable: 1}}
}

func addPlayers(players ...string) map[string]agonesv1.ListAction {
	return map[string]agonesv1.ListAction{contract.PlayersList: {AddValues: players}}
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// validLabelValue returns why s cannot be a label value (a room code), or nil.
func validLabelValue(s string) []string { return validation.IsValidLabelValue(s) }

func ptr[T any](v T) *T { return &v }
