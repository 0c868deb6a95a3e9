package admin

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usher-gg/usher/internal/match"
	"github.com/usher-gg/usher/internal/proxy"
)

const (
	testToken   = "admin-token-0123456789"
	testMetrics = "metrics-token-0123456789"
)

// rooms is one live room.
type rooms struct{}

func (rooms) Rooms(context.Context, string) ([]match.Room, error) {
	return []match.Room{{Code: "K7QX", Game: "example", MaxPlayers: 4, Seats: 1, Connected: 1}}, nil
}

// fakeSessions is a proxy's session list: Remove takes the matching sessions out, as the proxy
// ends them.
type fakeSessions struct {
	mu   sync.Mutex
	live []proxy.SessionInfo
}

func (s *fakeSessions) List() []proxy.SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]proxy.SessionInfo(nil), s.live...)
}

func (s *fakeSessions) Remove(game, room, player string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	kept := s.live[:0]
	for _, l := range s.live {
		if l.Game == game && l.Room == room && (player == "" || l.Player == player) {
			n++
			continue
		}
		kept = append(kept, l)
	}
	s.live = kept
	return n
}

func newTestHandler(t *testing.T, metricsToken string) (*Handler, *fakeSessions, *bytes.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "usher_test_total", Help: "a test counter"}))
	var logs bytes.Buffer
	ss := &fakeSessions{live: []proxy.SessionInfo{{Player: "p_alice", Name: "Alice", Game: "example", Room: "K7QX"}}}
	h, err := New(Config{Token: testToken, MetricsToken: metricsToken}, Deps{
		Games: []match.Game{{ID: "example", Name: "Example", MaxPlayers: 4}}, Rooms: rooms{}, Sessions: ss,
		Gatherer: reg, Log: slog.New(slog.NewJSONHandler(&logs, nil)),
	}, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	return h, ss, &logs
}

func serve(h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = "127.0.0.1:5000"
	for k, v := range hdr {
		if v != "" { // an empty value: no such header
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func basic(user, pw string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pw)
	return r.Header.Get("Authorization")
}

func TestNewNeedsAToken(t *testing.T) {
	if _, err := New(Config{}, Deps{}, http.NotFoundHandler()); err == nil {
		t.Fatal("New without a token: no error")
	}
}

// The page's API takes the token as the Basic password (any user name) or as a Bearer token,
// and refuses anything else with 401 and the API's error shape; every answer has the CSP.
func TestCredentials(t *testing.T) {
	h, _, _ := newTestHandler(t, "")
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong bearer", "Bearer nope", http.StatusUnauthorized},
		{"wrong basic", basic("admin", "nope"), http.StatusUnauthorized},
		{"token as the Basic user name", basic(testToken, ""), http.StatusUnauthorized},
		{"bearer", "Bearer " + testToken, http.StatusOK},
		{"basic, any user", basic("whoever", testToken), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, http.MethodGet, "/api/state", map[string]string{"Authorization": tc.auth})
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code == http.StatusUnauthorized && !strings.Contains(w.Body.String(), `"code":"unauthorized"`) {
				t.Errorf("body %s, want the unauthorized error", w.Body)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
	// GET / without a credential is the sign-in page (401); with one, the page with its CSRF token.
	if w := serve(h, http.MethodGet, "/", nil); w.Code != http.StatusUnauthorized || w.Header().Get("Content-Security-Policy") == "" ||
		strings.Contains(w.Body.String(), h.csrf) {
		t.Errorf("GET / signed out: %d, CSP %q, or the CSRF token shown", w.Code, w.Header().Get("Content-Security-Policy"))
	}
	if w := serve(h, http.MethodGet, "/", map[string]string{"Authorization": "Bearer " + testToken}); w.Code != http.StatusOK ||
		!strings.Contains(w.Body.String(), h.csrf) {
		t.Errorf("GET / signed in: %d, CSRF token in the page: %v", w.Code, strings.Contains(w.Body.String(), h.csrf))
	}
}

// /metrics is open without a metrics token, and needs that token (not the admin one) with one.
func TestMetricsToken(t *testing.T) {
	open, _, _ := newTestHandler(t, "")
	if w := serve(open, http.MethodGet, "/metrics", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "usher_test_total") {
		t.Fatalf("open /metrics: %d %.80s", w.Code, w.Body)
	}
	h, _, _ := newTestHandler(t, testMetrics)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", http.StatusUnauthorized},
		{"the admin token", "Bearer " + testToken, http.StatusUnauthorized},
		{"wrong", basic("prometheus", "nope"), http.StatusUnauthorized},
		{"bearer", "Bearer " + testMetrics, http.StatusOK},
		{"basic password", basic("prometheus", testMetrics), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, http.MethodGet, "/metrics", map[string]string{"Authorization": tc.auth})
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if w.Code == http.StatusOK && !strings.Contains(w.Body.String(), "usher_test_total") {
				t.Errorf("no metrics in %.80s", w.Body)
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// Actions: Basic credentials (sent by a browser on its own) need the page's CSRF token; Bearer
// does not. Each action is an audit line that never holds a credential.
func TestDisconnectPlayer(t *testing.T) {
	h, ss, logs := newTestHandler(t, "")
	const path = "/api/rooms/example/K7QX/players/p_alice/disconnect"
	if w := serve(h, http.MethodPost, path, map[string]string{"Authorization": basic("a", testToken)}); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"code":"csrf"`) {
		t.Fatalf("Basic without the CSRF token: %d %s, want 403 csrf", w.Code, w.Body)
	}
	if len(ss.List()) != 1 {
		t.Fatal("a refused action removed the session")
	}
	w := serve(h, http.MethodPost, path, map[string]string{"Authorization": basic("a", testToken), "X-CSRF-Token": h.csrf})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"disconnected":1`) {
		t.Fatalf("disconnect: %d %s", w.Code, w.Body)
	}
	if len(ss.List()) != 0 {
		t.Fatal("the player's session is still live")
	}
	w = serve(h, http.MethodPost, path, map[string]string{"Authorization": "Bearer " + testToken})
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"code":"player_not_found"`) {
		t.Fatalf("disconnect again: %d %s, want 404 player_not_found", w.Code, w.Body)
	}
	if w := serve(h, http.MethodGet, path, map[string]string{"Authorization": "Bearer " + testToken}); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET on an action: %d, want 405", w.Code)
	}
	audit := logs.String()
	if n := strings.Count(audit, `"msg":"admin action"`); n != 2 {
		t.Errorf("%d audit lines, want 2 (the refused CSRF request is not an action):\n%s", n, audit)
	}
	for _, want := range []string{`"action":"disconnect_player"`, `"player":"p_alice"`, `"auth":"basic"`, `"auth":"bearer"`, `"ok":true`, `"ok":false`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	if strings.Contains(audit, testToken) || strings.Contains(audit, h.csrf) {
		t.Errorf("a credential in the audit log:\n%s", audit)
	}
}

func TestCloseRoom(t *testing.T) {
	h, ss, _ := newTestHandler(t, "")
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	if w := serve(h, http.MethodPost, "/api/rooms/example/ZZZZ/close", bearer); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"code":"room_not_found"`) {
		t.Fatalf("close an unknown room: %d %s", w.Code, w.Body)
	}
	w := serve(h, http.MethodPost, "/api/rooms/example/K7QX/close", bearer)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"disconnected":1`) {
		t.Fatalf("close room: %d %s", w.Code, w.Body)
	}
	if len(ss.List()) != 0 {
		t.Fatal("the room's session is still live")
	}
}
