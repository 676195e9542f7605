package main

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// newLogger builds the process logger: console output on a terminal (or
// when asked), JSON lines otherwise.
func newLogger(w io.Writer, cfg LogConfig) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil || cfg.Level == "" {
		return zerolog.Nop(), &ConfigError{"log.level", fmt.Sprintf("%q: want debug, info, warn or error", cfg.Level)}
	}
	out := w
	if cfg.Format == "console" || (cfg.Format == "auto" && isTerminal(w)) {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}
