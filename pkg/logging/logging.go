// Package logging builds the one *slog.Logger each service passes down.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a text or JSON logger writing to w at cfg's level. cfg is
// validated by config.Parse, so unknown values fall back to text and info.
func New(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
