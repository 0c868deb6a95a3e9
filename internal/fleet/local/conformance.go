package local

import (
	"fmt"
	"time"
)

// The conformance recorder (`usher dev --bridge-conformance`) watches what each game server
// says over its bridge, like Agones' local SDK server, and reports every break of the contract
// of docs/game-servers.md: a warning in the log per break, and Fleet.Violations for tests. It
// never changes what the fleet does: a game server that breaks a rule is treated as without it.

// Rules the recorder checks, the Rule of a Violation.
const (
	// RuleHeartbeat: more than ConformanceHeartbeatGap without a heartbeat, from /ready on.
	RuleHeartbeat = "heartbeat"
	// RuleDisconnectedTwice: a player reported disconnected again, with no connect in between.
	// (A player reported connected again while connected is allowed: it is how a game server
	// reports the newer connection that replaced an older one, 4002.)
	RuleDisconnectedTwice = "disconnected_twice"
	// RuleDisconnectedUnknown: a player reported disconnected who was never reported connected.
	RuleDisconnectedUnknown = "disconnected_unknown"
	// RuleConnectedWithoutSeat: a player reported connected who holds no seat (Usher did not
	// send them, or their seat had expired).
	RuleConnectedWithoutSeat = "connected_without_seat"
	// RuleConnectedNotAllocated: a player reported connected while the server hosts no room.
	RuleConnectedNotAllocated = "connected_not_allocated"
	// RuleNoExitAfterShutdown: still running StopTimeout after /shutdown (or the Shutdown state).
	RuleNoExitAfterShutdown = "no_exit_after_shutdown"
	// RuleExitWithoutShutdown: exited without calling /shutdown first, or with a non-zero code.
	RuleExitWithoutShutdown = "exit_without_shutdown"
)

// ConformanceHeartbeatGap is the longest gap between heartbeats the recorder lets pass: the
// contract's 2 s interval plus 1 s for a busy machine.
const ConformanceHeartbeatGap = 3 * time.Second

// Violation is one break of the game-server contract.
type Violation struct {
	Game   string
	Server string
	Rule   string
	Detail string
	At     time.Time
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s: %s: %s", v.Game, v.Server, v.Rule, v.Detail)
}

// violateLocked records a violation by s if the recorder is on. Called with st.mu held.
func (st *state) violateLocked(s *server, rule, format string, args ...any) {
	if !st.cfg.Conformance {
		return
	}
	v := Violation{Game: s.game, Server: s.name, Rule: rule, Detail: fmt.Sprintf(format, args...), At: st.clk.Now()}
	st.violations = append(st.violations, v)
	st.log.Warn("game server broke the bridge contract (docs/game-servers.md)", "game", s.game, "gameserver", s.name,
		"room", s.room, "rule", rule, "detail", v.Detail)
}

// heartbeatGapLocked checks the time since the last heartbeat of s at now, once per gap.
func (st *state) heartbeatGapLocked(s *server, now time.Time) {
	if !st.cfg.Conformance || s.heartbeatAt.IsZero() || s.gapReported {
		return
	}
	if gap := now.Sub(s.heartbeatAt); gap > ConformanceHeartbeatGap {
		s.gapReported = true
		st.violateLocked(s, RuleHeartbeat, "no heartbeat for %s (the contract asks for one at least every 2s)", gap.Round(100*time.Millisecond))
	}
}

// Violations returns the contract breaks recorded so far, oldest first (none unless
// Config.Conformance is on).
func (f *Fleet) Violations() []Violation {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	return append([]Violation(nil), f.st.violations...)
}
