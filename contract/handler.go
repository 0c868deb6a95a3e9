package contract

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode"
)

// MaxWait is the longest GET /allocation?wait= may block.
const MaxWait = 60 * time.Second

// MaxPlayerIDLen bounds player ids on the wire.
const MaxPlayerIDLen = 128

const maxBody = 4 << 10

// NewHandler serves the bridge protocol over b. It is meant for a localhost listener that only
// the game server can reach.
func NewHandler(b Backend) http.Handler {
	h := &handler{b: b}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathReady, h.action(b.Ready))
	mux.HandleFunc("POST "+PathHeartbeat, h.action(b.Heartbeat))
	mux.HandleFunc("POST "+PathShutdown, h.action(b.Shutdown))
	mux.HandleFunc("POST "+PathConnected, h.player(func(ctx context.Context, player, reason string) error {
		if reason != "" {
			return errNoReason
		}
		return b.PlayerConnected(ctx, player)
	}))
	mux.HandleFunc("POST "+PathDisconnected, h.player(func(ctx context.Context, player, reason string) error {
		switch reason {
		case "":
			reason = ReasonLeft
		case ReasonLeft, ReasonLost:
		default:
			return errBadReason
		}
		return b.PlayerDisconnected(ctx, player, reason)
	}))
	mux.HandleFunc("GET "+PathAllocation, h.allocation)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The catch-all also matches known paths called with the wrong method, which the
		// method patterns above leave to it: answer those 405 rather than 404.
		if allow := allowedMethods(r.URL.Path); allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" "+r.URL.Path+": use "+allow)
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no such bridge endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// allowedMethods returns the methods the endpoint at path answers ("" for no endpoint).
func allowedMethods(path string) string {
	switch path {
	case PathReady, PathHeartbeat, PathShutdown, PathConnected, PathDisconnected:
		return http.MethodPost
	case PathAllocation:
		return http.MethodGet + ", " + http.MethodHead
	}
	return ""
}

type handler struct{ b Backend }

func (h *handler) action(f func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The body carries nothing today; read (bounded) and ignore it so clients may send {}.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
		if err := f(r.Context()); err != nil {
			writeBackendError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// Bad reasons, answered 400 invalid_request.
var (
	errNoReason  = errors.New(`"reason" applies to /players/disconnected only`)
	errBadReason = errors.New(`"reason" must be "left" or "lost"`)
)

func (h *handler) player(f func(ctx context.Context, player, reason string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req PlayerRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "body must be JSON like {\"player\": \"<id>\"}")
			return
		}
		if !validPlayerID(req.Player) {
			writeError(w, http.StatusBadRequest, "invalid_request", "player must be 1 to 128 printable characters")
			return
		}
		if err := f(r.Context(), req.Player, req.Reason); err != nil {
			if errors.Is(err, errNoReason) || errors.Is(err, errBadReason) {
				writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
				return
			}
			writeBackendError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// allocation answers GET /allocation. With ?after=N&wait=S it blocks until the allocation's
// version differs from N, at most S seconds (capped at MaxWait), then answers with the current one.
func (h *handler) allocation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	var wait time.Duration
	if s := q.Get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "after must be a version number")
			return
		}
		after = v
	}
	if s := q.Get("wait"); s != "" {
		d, ok := parseWait(s)
		if !ok {
			writeError(w, http.StatusBadRequest, "invalid_request", "wait must be a number of seconds")
			return
		}
		wait = d
	}
	ctx := r.Context()
	a, changed, err := h.b.Allocation(ctx)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	if wait > 0 && q.Has("after") {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		for a.Version == after {
			select {
			case <-changed:
			case <-timer.C:
				writeJSON(w, http.StatusOK, a)
				return
			case <-ctx.Done():
				return
			}
			prev := a
			if a, changed, err = h.b.Allocation(ctx); err != nil {
				writeBackendError(w, err)
				return
			}
			if a.Version != after && a.State == prev.State && a.Room == prev.Room {
				// Only the player lists changed. When a lobby fills, seats change hundreds of
				// times a second and every answer carries the whole lists: gather what changes
				// within listCoalesce into one answer. State and room changes answer at once.
				if a, err = h.coalesce(ctx, timer.C); err != nil {
					writeBackendError(w, err)
					return
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, a)
}

// listCoalesce is how long a long poll whose allocation changed only in its player lists waits
// for more changes before it answers (less if its own wait ends first). A state or room change
// within that time is answered with the rest, at most listCoalesce late. A variable for tests.
var listCoalesce = 50 * time.Millisecond

// coalesce waits listCoalesce (or until waitEnd) and returns the allocation then.
func (h *handler) coalesce(ctx context.Context, waitEnd <-chan time.Time) (Allocation, error) {
	t := time.NewTimer(listCoalesce)
	defer t.Stop()
	select {
	case <-t.C:
	case <-waitEnd:
	case <-ctx.Done():
		return Allocation{}, ctx.Err()
	}
	a, _, err := h.b.Allocation(ctx)
	return a, err
}

// parseWait reads a wait in seconds, capped at MaxWait. The cap is applied before converting
// to a Duration: a huge value (1e300, Inf) would otherwise overflow int64 and turn negative,
// so the long poll would silently stop waiting.
func parseWait(s string) (time.Duration, bool) {
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(secs) || secs < 0 {
		return 0, false
	}
	if secs >= MaxWait.Seconds() {
		return MaxWait, true
	}
	return time.Duration(secs * float64(time.Second)), true
}

func validPlayerID(s string) bool {
	if s == "" || len(s) > MaxPlayerIDLen {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

func writeBackendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrRoomFull):
		writeError(w, http.StatusConflict, "room_full", err.Error())
	case errors.Is(err, ErrBadState):
		writeError(w, http.StatusConflict, "bad_state", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
