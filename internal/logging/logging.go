// Package logging builds the slog logger the binaries use: text on a terminal, JSON in a cluster.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a logger writing format ("text" or "json") at level ("debug", "info", "warn", "error") to w.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
