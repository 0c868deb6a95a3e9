package admin

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Recent keeps warnings and errors (with the logger's attributes and groups), newest first,
// at most n, and passes every record on unchanged.
func TestRecentKeepsWarningsAndErrors(t *testing.T) {
	var out bytes.Buffer
	r := NewRecent(2)
	log := slog.New(r.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	c := log.With("component", "fleet").WithGroup("g")
	c.Info("fine")
	c.Warn("first", "room", "K7QX")
	log.Debug("not shown")
	log.Error("second", "err", "boom")
	log.Error("third")
	got := r.Entries()
	if len(got) != 2 || got[0].Message != "third" || got[1].Message != "second" || got[1].Attrs != "err=boom" {
		t.Fatalf("entries = %+v, want third then second", got)
	}
	r2 := NewRecent(5)
	slog.New(r2.Handler(slog.NewTextHandler(&out, nil))).With("component", "fleet").WithGroup("g").Warn("w", "room", "K7QX")
	if e := r2.Entries(); len(e) != 1 || e[0].Attrs != "component=fleet g.room=K7QX" || e[0].Level != "WARN" {
		t.Errorf("entry = %+v", e)
	}
	for _, want := range []string{"msg=fine", "msg=first", "msg=third"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the next handler did not get %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "not shown") {
		t.Error("a debug record passed the next handler's level")
	}
}
