// Package raftlog gives hashicorp/raft an hclog.Logger that writes to a
// slog.Logger: the store's groups and the meta group log Raft's warnings
// and errors with the node's own records.
package raftlog

import (
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// New returns an hclog.Logger named name, at level Warn, whose lines go to
// log at their level (error, warn, else info).
func New(name string, log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Warn, Output: slogWriter{log}})
}

// slogWriter turns hclog's lines into slog records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	switch {
	case strings.Contains(line, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(line, "[WARN]"):
		level = slog.LevelWarn
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
