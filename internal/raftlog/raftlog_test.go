package raftlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLinesKeepTheirLevelAndInfoIsDropped(t *testing.T) {
	var b bytes.Buffer
	l := New("raft", slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Info("not shown")
	l.Warn("a warning")
	l.Error("an error")
	out := b.String()
	require.NotContains(t, out, "not shown")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.Contains(t, lines[0], "level=WARN")
	require.Contains(t, lines[0], "a warning")
	require.Contains(t, lines[1], "level=ERROR")
	require.Contains(t, lines[1], "an error")

	b.Reset()
	n, err := slogWriter{slog.New(slog.NewTextHandler(&b, nil))}.Write([]byte("plain line\n"))
	require.NoError(t, err)
	require.Equal(t, len("plain line\n"), n)
	require.Contains(t, b.String(), "level=INFO")
}
