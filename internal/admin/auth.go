package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// sessionCookie holds a browser's admin session, made by POST /login.
const sessionCookie = "usher_admin"

// sessionTTL is how long a browser session lasts.
const sessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept: the oldest is dropped past it.
const maxSessions = 1000

// tokenEqual compares a presented token with want in constant time (for equal lengths; the
// hashes make the lengths equal).
func tokenEqual(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// credential is what a request presents: a token from HTTP Basic (any user name) or Bearer.
// how is "basic", "bearer" or "" (none).
func credential(r *http.Request) (token, how string) {
	h := r.Header.Get("Authorization")
	if len(h) > 8<<10 {
		return "", ""
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw, "basic"
	}
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), "bearer"
	}
	return "", ""
}

// sessions are the browser sessions made by POST /login: random ids in a SameSite=Strict,
// HttpOnly cookie. They live in memory; a restart asks for the token again.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	ids map[string]time.Time // id → expiry
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, ids: map[string]time.Time{}}
}

// add makes a new session and returns its id.
func (s *sessions) add() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.ids {
		if now.After(exp) {
			delete(s.ids, k)
		}
	}
	if len(s.ids) >= maxSessions {
		var oldest string
		for k, exp := range s.ids {
			if oldest == "" || exp.Before(s.ids[oldest]) {
				oldest = k
			}
		}
		delete(s.ids, oldest)
	}
	s.ids[id] = now.Add(sessionTTL)
	return id
}

// valid reports whether id names a live session.
func (s *sessions) valid(id string) bool {
	if len(id) != 64 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.ids[id]
	return ok && s.now().Before(exp)
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, id)
}

// who says how a request is authenticated: "bearer", "basic", "session", or "" when it is not.
func (h *Handler) who(r *http.Request) string {
	if tok, how := credential(r); how != "" {
		if tokenEqual(tok, h.token) {
			return how
		}
		return ""
	}
	if c, err := r.Cookie(sessionCookie); err == nil && h.sessions.valid(c.Value) {
		return "session"
	}
	return ""
}

// csrfOK reports whether an action request may proceed: a Bearer request cannot be forged
// by another site; Basic credentials and cookies are sent by the browser on its own, so those
// must also carry the page's CSRF token in the X-CSRF-Token header (which a cross-site form
// cannot set, and a cross-site script cannot without a CORS preflight this listener refuses).
func (h *Handler) csrfOK(r *http.Request, how string) bool {
	if how == "bearer" {
		return true
	}
	return tokenEqual(r.Header.Get("X-CSRF-Token"), h.csrf)
}
