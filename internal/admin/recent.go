package admin

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Recent keeps the last log records at warning level or above, for the admin page's "recent
// errors". Wrap the app's log handler with Handler.
type Recent struct {
	mu   sync.Mutex
	buf  []LogEntry
	next int
	full bool
}

// LogEntry is one kept record.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Attrs   string    `json:"attrs"` // key=value pairs, as the text handler writes them
}

// NewRecent keeps the last n records.
func NewRecent(n int) *Recent { return &Recent{buf: make([]LogEntry, n)} }

// Entries returns the kept records, newest first.
func (r *Recent) Entries() []LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]LogEntry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

func (r *Recent) add(e LogEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// Handler returns a slog.Handler that passes every record to next and keeps those at
// warning level or above.
func (r *Recent) Handler(next slog.Handler) slog.Handler { return &recentHandler{next: next, r: r} }

type recentHandler struct {
	next   slog.Handler
	r      *Recent
	attrs  []slog.Attr
	groups string // "a.b." prefix
}

func (h *recentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *recentHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		var b strings.Builder
		write := func(prefix string, a slog.Attr) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s%s=%v", prefix, a.Key, a.Value.Resolve())
		}
		for _, a := range h.attrs {
			write("", a)
		}
		rec.Attrs(func(a slog.Attr) bool { write(h.groups, a); return true })
		h.r.add(LogEntry{Time: rec.Time, Level: rec.Level.String(), Message: rec.Message, Attrs: b.String()})
	}
	if h.next.Enabled(ctx, rec.Level) {
		return h.next.Handle(ctx, rec)
	}
	return nil
}

func (h *recentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), prefixed(h.groups, as)...)
	return &c
}

func (h *recentHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.groups = h.groups + name + "."
	return &c
}

func prefixed(prefix string, as []slog.Attr) []slog.Attr {
	if prefix == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: prefix + a.Key, Value: a.Value}
	}
	return out
}
