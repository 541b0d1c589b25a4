package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/sink/files"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// finishedRanges returns, per world, the seqs covered by the finished
// files in dir.
func finishedRanges(t *testing.T, dir string) map[string][]uint64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[string][]uint64{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		world, first, last, ok := files.ParseFileName(e.Name())
		require.True(t, ok, "unexpected file %s", e.Name())
		for s := first; s <= last; s++ {
			out[world] = append(out[world], s)
		}
	}
	return out
}

// With --shard-map the exports follow every group the node runs, not
// group 0 only: the worlds of shards 1 and 2 reach the files too.
func TestRunWithAShardMapExportsTheWorldsOfEveryGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	httpAddr, raftAddr := freeAddr(t), freeAddr(t)
	smap := shardMapFile(t, "s1", raftAddr, httpAddr, 0)
	n := startNodeAt(t, "s1", dir, httpAddr, raftAddr, "--shard-map", smap,
		"--export-dir", "exp", "--export-max-age", "20ms", "--export-positions-every", "1")
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := n.client(t)
	want := map[string][]uint64{}
	for i, w := range []string{"old", "a", "b"} {
		require.NoError(t, c.CreateWorld(ctx, w, wire.Rules{}))
		for seq := uint64(1); seq <= uint64(i+2); seq++ {
			_, err := c.Act(ctx, w, incr("p1", seq, "e1", 1))
			require.NoError(t, err)
			want[w] = append(want[w], seq)
		}
	}
	exp := filepath.Join(dir, "exp")
	require.Eventually(t, func() bool {
		got := finishedRanges(t, exp)
		for w, seqs := range want {
			if len(got[w]) != len(seqs) {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "every group's worlds are exported")
	got := finishedRanges(t, exp)
	for w, seqs := range want {
		require.Equal(t, seqs, got[w], "world %s", w)
	}
	require.Empty(t, got["gsd.sinks"], "the positions world is not exported")
	require.Equal(t, 0, n.stop(t))
}
