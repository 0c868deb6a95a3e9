package agones

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	agonesv1 "github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/gdsdk-bridge/bridgeapi"
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
				bridgeapi.LabelRoom:   room,
				bridgeapi.LabelPublic: boolLabel(public),
				bridgeapi.LabelGame:   g.ID,
			},
			Annotations: map[string]string{AnnotationRoomCreated: now.UTC().Format(time.RFC3339Nano)},
		},
		Lists: addPlayer(player),
	}}
}

// joinAllocation re-allocates the Allocated server of g's Fleet carrying the room label,
// if it has a free seat.
func joinAllocation(g *Game, room, player string) *agonesv1.GameServerAllocation {
	return &agonesv1.GameServerAllocation{Spec: agonesv1.GameServerAllocationSpec{
		Selectors: []agonesv1.GameServerSelector{{
			LabelSelector: metav1.LabelSelector{MatchLabels: map[string]string{
				agonesv1.LabelFleet: g.Fleet,
				bridgeapi.LabelRoom: room,
			}},
			GameServerState: ptr(agonesv1.GameServerStateAllocated),
			Lists:           freeSeat(),
		}},
		Scheduling: agonesv1.Packed,
		Lists:      addPlayer(player),
	}}
}

// quickAllocation re-allocates an Allocated public room of g's Fleet with a free seat,
// the fullest first. Agones sorts allocation candidates by spec.priorities on available
// capacity (capacity - len(values) for a List), Ascending putting the least available
// first. With Packed scheduling priorities only break ties after node packing (servers on
// the busiest nodes first); with Distributed (and CountsAndLists, Beta and on) candidates
// are searched purely in priority order, so the fullest public room wins. Distributed has
// no other effect on an allocation, and this one never takes a Ready server, so packing
// is not at stake.
func quickAllocation(g *Game, player string) *agonesv1.GameServerAllocation {
	return &agonesv1.GameServerAllocation{Spec: agonesv1.GameServerAllocationSpec{
		Selectors: []agonesv1.GameServerSelector{{
			LabelSelector: metav1.LabelSelector{
				MatchLabels: map[string]string{
					agonesv1.LabelFleet:   g.Fleet,
					bridgeapi.LabelPublic: "true",
				},
				MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: bridgeapi.LabelRoom, Operator: metav1.LabelSelectorOpExists,
				}},
			},
			GameServerState: ptr(agonesv1.GameServerStateAllocated),
			Lists:           freeSeat(),
		}},
		Scheduling: agonesv1.Distributed,
		Priorities: []agonesv1.Priority{{Type: agonesv1.PriorityList, Key: bridgeapi.PlayersList, Order: agonesv1.Ascending}},
		Lists:      addPlayer(player),
	}}
}

func freeSeat() map[string]agonesv1.ListSelector {
	return map[string]agonesv1.ListSelector{bridgeapi.PlayersList: {MinAvailable: 1}}
}

func addPlayer(player string) map[string]agonesv1.ListAction {
	return map[string]agonesv1.ListAction{bridgeapi.PlayersList: {AddValues: []string{player}}}
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
