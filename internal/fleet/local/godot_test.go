//go:build unix

package local

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/usher-gg/usher/contract"
	"github.com/usher-gg/usher/internal/godotweb"
	"github.com/usher-gg/usher/internal/metrics"
)

// TestGodotUsherServerProtocol runs the Godot addon's UsherServer (godot/tests/server_test.gd)
// in the Godot web engine against this fleet's real bridge for one game server record, with the
// conformance recorder on: ready, heartbeats, the allocation long poll, players connected and
// disconnected exactly once (a replaced connection, a refused stranger), shutdown. Its WebSocket
// listener cannot run there, so the test scene raises the listener's events itself.
func TestGodotUsherServerProtocol(t *testing.T) {
	cfg := Config{Games: []Game{{ID: "g", MaxPlayers: 2, Command: []string{"unused"}, Buffer: 1}}, Conformance: true}.withDefaults()
	logs := &logSink{}
	st := newState(cfg, metrics.New(prometheus.NewRegistry()), clock.RealClock{}, slog.New(&captureHandler{sink: logs}))
	st.mu.Lock()
	s := st.addServerLocked(st.games["g"], st.clk.Now())
	st.mu.Unlock()
	current := func() contract.Allocation { a, _ := st.allocation(s); return a }

	mux := http.NewServeMux()
	mux.Handle("/test/bridge/", http.StripPrefix("/test/bridge", contract.NewHandler(backend{st: st, s: s})))
	mux.HandleFunc("POST /test/allocate", func(w http.ResponseWriter, _ *http.Request) {
		for deadline := time.Now().Add(10 * time.Second); current().State != StateReady; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				http.Error(w, "the server did not call /ready", http.StatusConflict)
				return
			}
		}
		if _, err := st.create("g", "K7QX", false, "p1"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := st.join("g", "K7QX", "p2"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	connected := func(want ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if got := current().Connected; !slices.Equal(got, want) {
				t.Errorf("connected = %q, want %q", got, want)
				http.Error(w, "wrong players", http.StatusConflict)
			}
		}
	}
	mux.HandleFunc("POST /test/connected-p1-p2", connected("p1", "p2"))
	mux.HandleFunc("POST /test/connected-none", connected())
	mux.HandleFunc("POST /test/check", func(w http.ResponseWriter, _ *http.Request) {
		var problems []string
		if a := current(); a.State != StateShutdown {
			problems = append(problems, "state "+a.State+", want Shutdown")
		}
		// The stranger Usher never seated is the one break the recorder must see: a game server
		// reporting players Usher did not send (say, its own peer ids) is what the rule catches.
		stranger := false
		st.mu.Lock()
		violations := slices.Clone(st.violations)
		st.mu.Unlock()
		for _, v := range violations {
			if v.Rule == RuleConnectedWithoutSeat && strings.Contains(v.Detail, "stranger") {
				stranger = true
				continue
			}
			problems = append(problems, v.String())
		}
		if !stranger {
			problems = append(problems, "the recorder did not report the stranger")
		}
		if len(problems) > 0 {
			t.Errorf("after the session: %s", strings.Join(problems, "; "))
			http.Error(w, fmt.Sprint(problems), http.StatusConflict)
		}
	})
	godotweb.RunTest(t, "../../..", "server", nil, mux, nil)
}
