package local

import (
	"context"

	"github.com/usher-gg/usher/contract"
)

// backend is the bridge of one game server: what its process tells Usher over its own
// loopback listener lands on its record in the fleet state.
type backend struct {
	st *state
	s  *server
}

var _ contract.Backend = backend{}

func (b backend) Ready(context.Context) error     { return b.st.ready(b.s) }
func (b backend) Heartbeat(context.Context) error { return b.st.heartbeat(b.s) }
func (b backend) Shutdown(context.Context) error  { return b.st.shutdown(b.s) }

func (b backend) PlayerConnected(_ context.Context, player string) error {
	return b.st.playerConnected(b.s, player)
}

func (b backend) PlayerDisconnected(_ context.Context, player, reason string) error {
	return b.st.playerDisconnected(b.s, player, reason)
}

func (b backend) Allocation(context.Context) (contract.Allocation, <-chan struct{}, error) {
	a, changed := b.st.allocation(b.s)
	return a, changed, nil
}
