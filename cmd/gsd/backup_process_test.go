package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestBackupRestoredIntoAFreshNodeServesTheSameWorldHashes: a backup
// streamed over the API from a running node, restored with gsd restore into
// a new data dir, gives a node whose GET /v1/worlds/{w}/hash equals the
// original's for every world.
func TestBackupRestoredIntoAFreshNodeServesTheSameWorldHashes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	orig := startNode(t, "orig", t.TempDir())
	orig.waitLeader(t)
	c := orig.client(t)
	worlds := []string{"arena", "lobby"}
	for _, w := range worlds {
		require.NoError(t, c.CreateWorld(ctx, w, wire.Rules{}))
		for i := range 10 {
			_, err := c.Act(ctx, w, incr("p1", uint64(i+1), "e1", int64(i)))
			require.NoError(t, err)
		}
	}
	b, err := c.Backup(ctx)
	require.NoError(t, err)
	data, err := io.ReadAll(b.Body)
	require.NoError(t, err)
	require.NoError(t, b.Body.Close())
	require.Equal(t, b.Size, int64(len(data)))
	require.Equal(t, "orig", b.Node)
	require.NotZero(t, b.Index)
	file := filepath.Join(t.TempDir(), "gsd.backup")
	require.NoError(t, os.WriteFile(file, data, 0o600))

	dir := filepath.Join(t.TempDir(), "restored")
	raftAddr := freeAddr(t)
	var out, errb bytes.Buffer
	code := run(ctx, []string{"restore", "--from", file, "--data-dir", dir, "--id", "copy", "--raft-addr", raftAddr}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	requireContains(t, out.String(), "as node copy at "+raftAddr)
	// A second restore into the same directory is refused.
	errb.Reset()
	require.Equal(t, 1, run(ctx, []string{"restore", "--from", file, "--data-dir", dir, "--id", "copy", "--raft-addr", raftAddr}, io.Discard, &errb))
	requireContains(t, errb.String(), "already holds raft state")

	copyNode := startNodeAt(t, "copy", dir, freeAddr(t), raftAddr)
	require.Equal(t, "copy", copyNode.waitLeader(t).Leader)
	cc := copyNode.client(t)
	for _, w := range worlds {
		want, err := c.Hash(ctx, w, 0)
		require.NoError(t, err)
		got, err := cc.Hash(ctx, w, 0)
		require.NoError(t, err)
		require.Equal(t, want, got, "world %s", w)
	}
	// The restored node goes on where the original was backed up.
	ev, err := cc.Act(ctx, "arena", incr("p1", 11, "e1", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(11), ev.Seq)
}

func TestRestoreRefusesBadArguments(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "junk.backup")
	require.NoError(t, os.WriteFile(file, []byte("junk"), 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"restore"}, "--from FILE is required"},
		{[]string{"restore", "--from", file, "--data-dir", ""}, "--data-dir must not be empty"},
		{[]string{"restore", "--from", file, "--raft-advertise", "nope"}, "--raft-advertise"},
		{[]string{"restore", "--from", file, "--raft-addr", "127.0.0.1:1", "--raft-advertise", "nope"}, "--raft-advertise"},
		{[]string{"restore", "--from", file, "--raft-addr", "nope"}, "--raft-addr"},
		{[]string{"restore", "--from", filepath.Join(t.TempDir(), "missing")}, "no such file"},
		{[]string{"restore", "--from", file, "--data-dir", t.TempDir()}, "does not load"},
		{[]string{"restore", "--from", file, "extra"}, "unknown command"},
	} {
		var errb bytes.Buffer
		require.Equal(t, 1, run(context.Background(), tc.args, io.Discard, &errb), "%v", tc.args)
		requireContains(t, errb.String(), tc.want)
	}
}

func TestRestoreTakesItsFlagsFromTheDaemonsConfigFile(t *testing.T) {
	t.Parallel()
	o := &restoreOptions{from: "f", dataDir: "d", raftAddr: "127.0.0.1:7071"}
	cfg, err := o.restoreConfig()
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7071", cfg.Advertise)
	require.Equal(t, defaultNodeID("7071"), cfg.ID)

	path := writeConfig(t, "id = \"n9\"\nraft-advertise = \"10.0.0.9:7071\"\nhttp-addr = \"0.0.0.0:7070\"\n")
	cmd := restoreCmd()
	require.NoError(t, cmd.Flags().Parse([]string{"--config", path}))
	require.NoError(t, applyConfigKeys(cmd.Flags(), path, envOf(nil), false), "keys of the daemon only are skipped")
	require.Equal(t, "n9", get(t, cmd.Flags(), "id"))
	require.Equal(t, "10.0.0.9:7071", get(t, cmd.Flags(), "raft-advertise"))
}
