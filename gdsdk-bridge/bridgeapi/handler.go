package bridgeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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
	mux.HandleFunc("POST "+PathConnected, h.player(b.PlayerConnected))
	mux.HandleFunc("POST "+PathDisconnected, h.player(b.PlayerDisconnected))
	mux.HandleFunc("GET "+PathAllocation, h.allocation)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such bridge endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
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

func (h *handler) player(f func(context.Context, string) error) http.HandlerFunc {
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
		if err := f(r.Context(), req.Player); err != nil {
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
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "wait must be a number of seconds")
			return
		}
		wait = min(time.Duration(secs*float64(time.Second)), MaxWait)
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
			if a, changed, err = h.b.Allocation(ctx); err != nil {
				writeBackendError(w, err)
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, a)
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
