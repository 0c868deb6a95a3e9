// Package admin is the operators' page on the admin listener: live totals, rooms and players
// (server-sent events), an hour of history, recent errors, and two actions (close a room,
// disconnect a player), behind the admin token. It also guards /metrics with its own
// optional token.
package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/proxy"
)

//go:embed static
var static embed.FS

// Rooms lists live rooms (a match.Fleet does).
type Rooms interface {
	Rooms(ctx context.Context, game string) ([]match.Room, error)
}

// RoomEnder ends a room's game server (the local fleet does; in Agones, Usher may not
// delete GameServers, and a room whose players all left ends by the game server's rules).
type RoomEnder interface {
	EndRoom(ctx context.Context, game, room string) error
}

// Sessions are the proxied sessions (a *proxy.Proxy).
type Sessions interface {
	List() []proxy.SessionInfo
	Remove(game, room, player string) int
}

// Config holds the page's settings.
type Config struct {
	Token        string        // the admin token (required)
	MetricsToken string        // the token /metrics requires; empty: open
	Every        time.Duration // how often the history is sampled (default 10s)
	Keep         int           // samples kept (default 360: an hour at 10s)
	Push         time.Duration // how often live pages are sent changes (default 1s)
}

// Deps are what the page shows and acts on.
type Deps struct {
	Games    []match.Game
	Rooms    Rooms
	Ender    RoomEnder // nil: close room only disconnects the players
	Sessions Sessions
	Gatherer prometheus.Gatherer // read for the game servers by state (usher_gameservers)
	Recent   *Recent             // recent warnings and errors; nil: none shown
	Clock    clock.WithTicker
	Log      *slog.Logger
}

// Handler serves the admin listener: the page, its API, /metrics and /healthz.
type Handler struct {
	Deps
	cfg      Config
	token    string
	csrf     string
	sessions *sessions
	mux      *http.ServeMux
	page     *template.Template
	done     chan struct{}
	doneOnce sync.Once

	mu      sync.Mutex
	history []Sample
}

// Sample is one point of the history chart.
type Sample struct {
	Time    int64 `json:"t"` // Unix seconds
	Players int   `json:"players"`
	Rooms   int   `json:"rooms"`
}

// New builds the handler; metrics serves /metrics.
func New(cfg Config, d Deps, metrics http.Handler) (*Handler, error) {
	if len(cfg.Token) == 0 {
		return nil, errors.New("admin: a token is required")
	}
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 360
	}
	if cfg.Push <= 0 {
		cfg.Push = time.Second
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	h := &Handler{Deps: d, cfg: cfg, token: cfg.Token, csrf: hex.EncodeToString(b),
		sessions: newSessions(d.Clock.Now), mux: http.NewServeMux(), done: make(chan struct{})}
	var err error
	if h.page, err = template.ParseFS(static, "static/index.html"); err != nil {
		return nil, err
	}
	h.routes(metrics)
	return h, nil
}

func (h *Handler) routes(metrics http.Handler) {
	m := h.mux
	assets, _ := fs.Sub(static, "static")
	files := http.FileServer(http.FS(assets))
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.Handle("GET /metrics", h.metricsAuth(metrics))
	m.HandleFunc("GET /{$}", h.index)
	m.Handle("GET /admin.js", files)
	m.Handle("GET /admin.css", files)
	m.Handle("GET /login.js", files)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.logout)
	m.HandleFunc("GET /api/state", h.auth(h.state))
	m.HandleFunc("GET /api/events", h.auth(h.events))
	m.HandleFunc("POST /api/rooms/{game}/{room}/close", h.action(h.closeRoom))
	m.HandleFunc("POST /api/rooms/{game}/{room}/players/{player}/disconnect", h.action(h.disconnect))
}

// csp is the Content-Security-Policy of every answer: nothing but this origin's own files.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP implements http.Handler, adding the security headers to every answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// Close ends the live event streams (before the listener shuts down).
func (h *Handler) Close() { h.doneOnce.Do(func() { close(h.done) }) }

// Run samples the history every Config.Every until ctx is done.
func (h *Handler) Run(ctx context.Context) error {
	t := h.Clock.NewTicker(h.cfg.Every)
	defer t.Stop()
	for {
		h.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

func (h *Handler) sample(ctx context.Context) {
	rooms, err := h.Rooms.Rooms(ctx, "")
	if err != nil {
		return
	}
	s := Sample{Time: h.Clock.Now().Unix(), Rooms: len(rooms)}
	for _, r := range rooms {
		s.Players += r.Connected
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, s)
	if len(h.history) > h.cfg.Keep {
		h.history = slices.Delete(h.history, 0, len(h.history)-h.cfg.Keep)
	}
}

// writeError answers with the public API's error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="usher admin", charset="UTF-8"`)
	writeError(w, http.StatusUnauthorized, "unauthorized",
		"the admin token is required: HTTP Basic (any user name, the token as password) or Authorization: Bearer <token>")
}

// auth lets only authenticated requests through.
func (h *Handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.who(r) == "" {
			unauthorized(w)
			return
		}
		next(w, r)
	}
}

// action guards a state-changing request: authenticated, CSRF-safe, and written to the log
// as an audit line (never with a token).
func (h *Handler) action(next func(w http.ResponseWriter, r *http.Request) (attrs []slog.Attr, ok bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		how := h.who(r)
		if how == "" {
			unauthorized(w)
			return
		}
		if !h.csrfOK(r, how) {
			writeError(w, http.StatusForbidden, "csrf", "send the page's X-CSRF-Token header with Basic or cookie credentials (or use a Bearer token)")
			return
		}
		attrs, ok := next(w, r)
		h.Log.LogAttrs(r.Context(), slog.LevelInfo, "admin action", append(attrs,
			slog.String("auth", how), slog.String("remote", remoteIP(r)), slog.Bool("ok", ok))...)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// metricsAuth guards /metrics with the metrics token, when one is set.
func (h *Handler) metricsAuth(next http.Handler) http.Handler {
	if h.cfg.MetricsToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, how := credential(r); how == "" || !tokenEqual(tok, h.cfg.MetricsToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="usher metrics"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "/metrics needs the metrics token (Bearer, or the Basic password)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// index serves the page to an authenticated browser, and the login page otherwise.
func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if h.who(r) == "" {
		w.WriteHeader(http.StatusUnauthorized)
		b, _ := static.ReadFile("static/login.html")
		_, _ = w.Write(b)
		return
	}
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, map[string]string{"CSRF": h.csrf}); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// login turns the token typed into the login form into a session cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := r.PostFormValue("token")
	if !tokenEqual(strings.TrimSpace(tok), h.token) {
		h.Log.LogAttrs(r.Context(), slog.LevelWarn, "admin login refused", slog.String("remote", remoteIP(r)))
		http.Redirect(w, r, "/?refused=1", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: h.sessions.add(), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second), Secure: r.TLS != nil})
	h.Log.LogAttrs(r.Context(), slog.LevelInfo, "admin login", slog.String("remote", remoteIP(r)))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		h.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// State is what the page shows, as GET /api/state and each server-sent event carry it.
type State struct {
	Totals  Totals      `json:"totals"`
	Games   []GameState `json:"games"`
	Rooms   []RoomState `json:"rooms"`
	History []Sample    `json:"history"`
	Errors  []LogEntry  `json:"errors"`
	Every   int         `json:"history_every_seconds"`
	Now     time.Time   `json:"now"`
}

// Totals are the figures at the top of the page.
type Totals struct {
	Games   int            `json:"games"`
	Rooms   int            `json:"rooms"`
	Players int            `json:"players"` // connected through the proxy
	Seats   int            `json:"seats"`   // held: reserved or connected
	Servers map[string]int `json:"servers"` // game servers by state
}

// GameState is one game's figures.
type GameState struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Rooms   int    `json:"rooms"`
	Players int    `json:"players"`
}

// RoomState is one row of the rooms table.
type RoomState struct {
	Game       string        `json:"game"`
	Code       string        `json:"code"`
	Public     bool          `json:"public"`
	Seats      int           `json:"seats"`
	MaxPlayers int           `json:"max_players"`
	Connected  int           `json:"connected"`
	Server     string        `json:"server"`
	AgeSeconds int64         `json:"age_seconds"`
	Players    []PlayerState `json:"players"`
}

// PlayerState is a player connected to a room through this Usher.
type PlayerState struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	ConnectedSince int64  `json:"connected_seconds"`
}

// Snapshot gathers the page's figures now.
func (h *Handler) Snapshot(ctx context.Context) (State, error) {
	now := h.Clock.Now()
	rooms, err := h.Rooms.Rooms(ctx, "")
	if err != nil {
		return State{}, err
	}
	st := State{Now: now.UTC().Truncate(time.Second), Every: int(h.cfg.Every / time.Second),
		Totals: Totals{Games: len(h.Games), Rooms: len(rooms), Servers: h.servers()}}
	byGame := map[string]*GameState{}
	st.Games = make([]GameState, len(h.Games))
	for i, g := range h.Games {
		st.Games[i] = GameState{ID: g.ID, Name: g.Name}
		byGame[g.ID] = &st.Games[i]
	}
	players := map[string][]PlayerState{} // by game/room
	sessions := h.Sessions.List()
	st.Totals.Players = len(sessions)
	for _, s := range sessions {
		k := s.Game + "/" + s.Room
		players[k] = append(players[k], PlayerState{ID: s.Player, Name: s.Name, ConnectedSince: int64(now.Sub(s.Started) / time.Second)})
	}
	st.Rooms = make([]RoomState, 0, len(rooms))
	for _, r := range rooms {
		st.Totals.Seats += r.Seats
		if g := byGame[r.Game]; g != nil {
			g.Rooms++
			g.Players += r.Connected
		}
		ps := players[r.Game+"/"+r.Code]
		slices.SortFunc(ps, func(a, b PlayerState) int { return strings.Compare(a.Name+a.ID, b.Name+b.ID) })
		if ps == nil {
			ps = []PlayerState{}
		}
		st.Rooms = append(st.Rooms, RoomState{Game: r.Game, Code: r.Code, Public: r.Public, Seats: r.Seats,
			MaxPlayers: r.MaxPlayers, Connected: r.Connected, Server: r.Server,
			AgeSeconds: int64(now.Sub(r.CreatedAt) / time.Second), Players: ps})
	}
	slices.SortStableFunc(st.Rooms, func(a, b RoomState) int { return int(a.AgeSeconds - b.AgeSeconds) })
	h.mu.Lock()
	st.History = slices.Clone(h.history)
	h.mu.Unlock()
	if st.History == nil {
		st.History = []Sample{}
	}
	st.Errors = []LogEntry{}
	if h.Recent != nil {
		st.Errors = h.Recent.Entries()
	}
	return st, nil
}

// servers counts game servers by state from the usher_gameservers gauge.
func (h *Handler) servers() map[string]int {
	out := map[string]int{}
	if h.Gatherer == nil {
		return out
	}
	mfs, err := h.Gatherer.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "usher_gameservers" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					if v := int(m.GetGauge().GetValue()); v > 0 {
						out[l.GetValue()] += v
					}
				}
			}
		}
	}
	return out
}

func (h *Handler) state(w http.ResponseWriter, r *http.Request) {
	st, err := h.Snapshot(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// events streams the state as server-sent events: at once, then whenever it changes
// (checked every Config.Push), with a comment line every 15s to keep proxies from closing
// an idle stream.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	t := h.Clock.NewTicker(h.cfg.Push)
	defer t.Stop()
	var last []byte
	lastSent := h.Clock.Now()
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		st, err := h.Snapshot(r.Context())
		if err == nil {
			st.Now = time.Time{} // changes every second: not a change worth sending alone
			b, _ := json.Marshal(st)
			if !bytes.Equal(b, last) {
				last = b
				lastSent = h.Clock.Now()
				if !write([]byte("event: state\ndata: " + string(b) + "\n\n")) {
					return
				}
			} else if h.Clock.Since(lastSent) >= 15*time.Second {
				lastSent = h.Clock.Now()
				if !write([]byte(": keepalive\n\n")) {
					return
				}
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-t.C():
		}
	}
}

func (h *Handler) closeRoom(w http.ResponseWriter, r *http.Request) ([]slog.Attr, bool) {
	game, room := r.PathValue("game"), r.PathValue("room")
	attrs := []slog.Attr{slog.String("action", "close_room"), slog.String("game", game), slog.String("room", room)}
	if !h.knownRoom(r.Context(), game, room) {
		writeError(w, http.StatusNotFound, "room_not_found", "no live room with that code in this game")
		return attrs, false
	}
	n := h.Sessions.Remove(game, room, "")
	attrs = append(attrs, slog.Int("sessions", n))
	// Let the players' sessions close (4006) before the game server stops, so that they
	// learn why rather than see the server go away (1001).
	for deadline := time.Now().Add(2 * time.Second); h.inRoom(game, room) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if h.Ender != nil {
		if err := h.Ender.EndRoom(r.Context(), game, room); err != nil && !errors.Is(err, match.ErrRoomNotFound) {
			writeError(w, http.StatusInternalServerError, "internal", "players disconnected, but the game server could not be stopped: "+err.Error())
			return append(attrs, slog.Any("err", err)), false
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"disconnected": n})
	return attrs, true
}

func (h *Handler) disconnect(w http.ResponseWriter, r *http.Request) ([]slog.Attr, bool) {
	game, room, player := r.PathValue("game"), r.PathValue("room"), r.PathValue("player")
	attrs := []slog.Attr{slog.String("action", "disconnect_player"), slog.String("game", game),
		slog.String("room", room), slog.String("player", player)}
	n := h.Sessions.Remove(game, room, player)
	attrs = append(attrs, slog.Int("sessions", n))
	if n == 0 {
		writeError(w, http.StatusNotFound, "player_not_found", "that player is not connected to that room through this Usher")
		return attrs, false
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"disconnected": n})
	return attrs, true
}

// inRoom counts the live sessions in a room.
func (h *Handler) inRoom(game, room string) int {
	n := 0
	for _, s := range h.Sessions.List() {
		if s.Game == game && s.Room == room {
			n++
		}
	}
	return n
}

func (h *Handler) knownRoom(ctx context.Context, game, room string) bool {
	rooms, err := h.Rooms.Rooms(ctx, game)
	if err != nil {
		return false
	}
	for _, r := range rooms {
		if r.Code == room {
			return true
		}
	}
	return false
}
