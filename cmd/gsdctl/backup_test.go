package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestBackupWritesARestorableSnapshotIntoTheFile(t *testing.T) {
	t.Parallel()
	addr := startNode(t)
	mustRun(t, "--addr", addr, "world", "create", "arena")
	mustRun(t, "--addr", addr, "act", "arena", "--json", `{"player":"p1","seq":1,"ops":[{"op":"incr","entity":"e1","field":"n","by":3}]}`)
	want := mustRun(t, "--addr", addr, "-o", "json", "hash", "arena")

	path := filepath.Join(t.TempDir(), "gsd.backup")
	out := mustRun(t, "--addr", addr, "backup", "--out", path)
	require.Contains(t, out, "bytes in "+path)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	// The file is the group's state: it loads, with the world's hash.
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, f.Restore(bytes.NewReader(data)))
	wi, err := f.World("arena")
	require.NoError(t, err)
	require.Equal(t, uint64(1), wi.Seq)
	require.Contains(t, want, `"seq": 1`)
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")
}

func TestBackupNeedsAnOutputAndLeavesNothingOnFailure(t *testing.T) {
	t.Parallel()
	code, _, errOut := ctl(t, "", "backup")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--out FILE is required")

	dir := t.TempDir()
	code, _, errOut = ctl(t, "", "--addr", freeAddr(t), "--timeout", "1s", "backup", "--out", filepath.Join(dir, "b"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "backup:")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}
