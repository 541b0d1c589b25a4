package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/gsd-dev/gsd/shard"
	"github.com/stretchr/testify/require"
)

// A cluster restore into a data dir where one of this node's groups
// already holds raft state is refused before anything is written: the
// operator clears the dir and runs it again, which a group restored
// before the refusal would refuse in turn.
func TestRestoreClusterRefusesAGroupDirInUseBeforeWritingAnyGroup(t *testing.T) {
	t.Parallel()
	smap := writeFile(t, `{"nodes": {"n1": {"raft": "127.0.0.1:7001", "http": "127.0.0.1:8001"}}, "shards": [{"id": 1, "voters": ["n1"]}]}`)
	data := t.TempDir()
	earlier, _ := clusterBackupDir(t, 1)
	var errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"restore", "--cluster", earlier, "--shard-map", smap, "--data-dir", data, "--id", "n1"}, io.Discard, &errb), errb.String())
	require.FileExists(t, shard.GroupDir(data, 1)+"/raft.db")

	dir, _ := clusterBackupDir(t, 0, 1)
	errb.Reset()
	require.Equal(t, 1, run(context.Background(), []string{"restore", "--cluster", dir, "--shard-map", smap, "--data-dir", data, "--id", "n1"}, io.Discard, &errb))
	requireContains(t, errb.String(), "already holds raft state")
	require.NoDirExists(t, shard.GroupDir(data, 0), "group 0 was restored before group 1 was refused")
}
