package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPeerFileFollowsRewrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	p, err := newPeerFile(path, discardLogger())
	require.NoError(t, err, "a missing file is an empty map")
	_, ok := p.lookup("n1")
	require.False(t, ok)

	require.NoError(t, os.WriteFile(path, []byte(`{"n1":"127.0.0.1:9001","n2":""}`), 0o600))
	addr, ok := p.lookup("n1")
	require.True(t, ok)
	require.Equal(t, "127.0.0.1:9001", addr)
	_, ok = p.lookup("n2")
	require.False(t, ok, "an empty address falls back to the node table")

	// A rewrite (through a rename, as the fault suite does) is seen on the
	// next lookup.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(`{"n1":"127.0.0.1:9999"}`), 0o600))
	require.NoError(t, os.Rename(tmp, path))
	addr, _ = p.lookup("n1")
	require.Equal(t, "127.0.0.1:9999", addr)

	// A broken or missing file keeps the last good addresses.
	require.NoError(t, os.WriteFile(path, []byte(`{"n1":`), 0o600))
	addr, _ = p.lookup("n1")
	require.Equal(t, "127.0.0.1:9999", addr)
	require.NoError(t, os.Remove(path))
	addr, _ = p.lookup("n1")
	require.Equal(t, "127.0.0.1:9999", addr)
	p.reload(true)
	addr, _ = p.lookup("n1")
	require.Equal(t, "127.0.0.1:9999", addr)
}

func TestPeerFileRejectsAMalformedFileAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	require.NoError(t, os.WriteFile(path, []byte(`["not","a","map"]`), 0o600))
	_, err := newPeerFile(path, discardLogger())
	require.ErrorContains(t, err, "want a JSON object")

	_, err = newPeerFile(filepath.Join(path, "under-a-file"), discardLogger())
	require.Error(t, err)
}

func TestPeerFileReloadsOnSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"n1":"127.0.0.1:1111"}`), 0o600))
	p, err := newPeerFile(path, discardLogger())
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)

	// Same size, same modification time: only SIGHUP notices the change.
	require.NoError(t, os.WriteFile(path, []byte(`{"n1":"127.0.0.1:2222"}`), 0o600))
	require.NoError(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
	addr, _ := p.lookup("n1")
	require.Equal(t, "127.0.0.1:1111", addr)

	stop := reloadOnSIGHUP(p)
	defer stop()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		addr, _ := p.lookup("n1")
		return addr == "127.0.0.1:2222"
	}, 10*time.Second, 5*time.Millisecond)
}
