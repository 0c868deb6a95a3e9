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

// slotting is the time slots a generator sends in when the paths' windows are interleaved
// (--interleave): time from base is cut into slots of length ns, dealt in turn to of paths, and
// this generator sends only in the slots of path at (slot k is path k mod of; slots before base
// too, for the warm-up). A zero slotting (length 0) sends at any time.
type slotting struct {
	base, length int64
	of, at       int
}

// next returns the first time ≥ t in one of the generator's slots, moved from t by whole
// rounds of slots so it keeps its offset within a slot: a connection that sends at some phase
// of its period keeps that phase, and the sends stay spread evenly over the slots.
func (sl slotting) next(t int64) int64 {
	if sl.length <= 0 || sl.of < 2 {
		return t
	}
	behind := (sl.owner(t) - sl.at + sl.of) % sl.of // slots since ours began
	if behind == 0 {
		return t
	}
	return t + int64(sl.of-behind)*sl.length
}

// abs returns when the generator's a-th nanosecond of sending time falls, counted from base:
// its slots laid end to end.
func (sl slotting) abs(a int64) int64 {
	if sl.length <= 0 || sl.of < 2 {
		return sl.base + a
	}
	k := a / sl.length
	return sl.base + (k*int64(sl.of)+int64(sl.at))*sl.length + a%sl.length
}

// owner returns the path (0 … of−1) whose slot t falls in.
func (sl slotting) owner(t int64) int {
	if sl.length <= 0 || sl.of < 2 {
		return sl.at
	}
	k := (t - sl.base) / sl.length
	if (t-sl.base)%sl.length < 0 {
		k-- // floor: t before base (the warm-up)
	}
	return int((k%int64(sl.of) + int64(sl.of)) % int64(sl.of))
}
