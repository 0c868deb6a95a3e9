package bench

// Frames sent carry, in their payload: magic "ubm1", the send time (ns since the generator's
// base, little-endian), the connection id, then padding. In echo mode the game server returns
// the payload unchanged to the same connection; in broadcast mode (a room profile) it relays it
// unchanged to the other players of the room, all driven by the same generator. Either way the
// latency is measured on one clock: at each receiver, from the send time in the payload.
const (
	payloadMagic   = "ubm1"
	minPayloadSize = 16
	maskKey        = 0x5a3c96e1 // any key is valid; a fixed one keeps frames pre-built
)

// loadMode is what the workers do with their connections.
type loadMode uint8

const (
	modeIdle     loadMode = iota // read, answer pings, send nothing
	modePaced                    // each connection sends every period, whether answered or not
	modeSaturate                 // each connection sends when its previous message came back
	modeClosing                  // close handshake in progress
)

// connState is a connection's life.
type connState uint8

const (
	stOpen connState = iota
	stClosing
	stClosed
)

// genStats is what a worker counted since the last reset.
type genStats struct {
	Sent, Recv       uint64 // all data messages
	SentWin, RecvWin uint64 // messages sent inside the window
	Unexpected       uint64 // connections that ended outside the close phase
	CloseCodes       map[int]uint64
	ProtocolErrors   uint64
	Misrouted        uint64 // a message arrived on a connection it was not for (see routedRight)
	Lagged           uint64 // sends skipped because the generator fell more than 1 s behind
	Backlogged       uint64 // sends queued behind a full socket buffer
	CloseTimeouts    uint64 // connections force-closed after the close grace
	hist             histogram
}

func (s *genStats) add(o *genStats) {
	s.Sent += o.Sent
	s.Recv += o.Recv
	s.SentWin += o.SentWin
	s.RecvWin += o.RecvWin
	s.Unexpected += o.Unexpected
	s.ProtocolErrors += o.ProtocolErrors
	s.Misrouted += o.Misrouted
	s.Lagged += o.Lagged
	s.Backlogged += o.Backlogged
	s.CloseTimeouts += o.CloseTimeouts
	for k, v := range o.CloseCodes {
		if s.CloseCodes == nil {
			s.CloseCodes = map[int]uint64{}
		}
		s.CloseCodes[k] += v
	}
	s.hist.merge(&o.hist)
}

// routedRight reports whether a message sent by connection from may arrive on connection to,
// with players in rooms of room (connections id/room; < 2: echo mode): in echo mode only its
// sender gets it back, in broadcast mode only the other players of the sender's room get it.
func routedRight(room int, from, to uint32) bool {
	if room < 2 {
		return from == to
	}
	r := uint32(room)
	return from != to && from/r == to/r
}
