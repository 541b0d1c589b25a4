package meta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// worldSeqs returns each world's seq in st.
func worldSeqs(st *store.Store) map[string]uint64 {
	out := map[string]uint64{}
	for _, w := range st.Worlds() {
		out[w.ID] = w.Seq
	}
	return out
}

// A joiner that finds shard 1's directory left from earlier (a group of
// its own with another world: a shard removed and created again with the
// same id) sets it aside and joins clean, whether that group is stopped
// or still running: it ends with the shard's world, not the old one, and
// the old directory is kept beside.
func TestAJoinerSetsAsideADirectoryLeftFromEarlier(t *testing.T) {
	for _, running := range []bool{false, true} {
		t.Run(fmt.Sprintf("running=%v", running), func(t *testing.T) {
			c := newMetaCluster(t, 4)
			c.addNodes()
			ctx := context.Background()
			// n4's own group 1, from earlier: it alone votes, with a
			// world of its own.
			old, err := c.mgrs["n4"].Open(1, shard.GroupOptions{Bootstrap: true})
			require.NoError(t, err)
			require.Eventually(t, old.IsLeader, 10*time.Second, 5*time.Millisecond)
			require.Eventually(t, func() bool { return old.CreateWorld(ctx, "junk", fsm.Rules{}) == nil }, 10*time.Second, 5*time.Millisecond)
			if !running {
				require.NoError(t, c.mgrs["n4"].CloseGroup(ctx, 1))
			}

			c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
			// A shard 1 leader among its voters, asked again on every try:
			// a new group may change leaders (a retried seq applies once).
			onLeader := func(what string, do func(st *store.Store) error) {
				t.Helper()
				require.Eventually(t, func() bool {
					for _, id := range []string{"n1", "n2", "n3"} {
						if st, ok := c.mgrs[id].Group(1); ok && st.IsLeader() && do(st) == nil {
							return true
						}
					}
					return false
				}, 10*time.Second, 5*time.Millisecond, what)
			}
			onLeader("create w", func(st *store.Store) error {
				err := st.CreateWorld(ctx, "w", fsm.Rules{})
				if errors.Is(err, fsm.ErrWorldExists) {
					return nil
				}
				return err
			})
			for seq := uint64(1); seq <= 5; seq++ {
				a := &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}}
				onLeader(fmt.Sprintf("act %d", seq), func(st *store.Store) error {
					_, _, err := st.Act(ctx, a)
					return err
				})
			}

			res := c.propose("n1", Command{Op: OpReplaceVoter, Shard: 1, Node: "n3", New: "n4"})
			require.Equal(t, "n4", res.New)
			require.Eventually(t, func() bool {
				sh, _ := c.group("n1").View().Map.Shard(1)
				return slices.Equal(sh.Voters, []string{"n1", "n2", "n4"})
			}, 30*time.Second, 5*time.Millisecond, "n4 takes n3's seat")
			require.Eventually(t, func() bool {
				st, ok := c.mgrs["n4"].Group(1)
				if !ok {
					return false
				}
				seqs := worldSeqs(st)
				_, junk := seqs["junk"]
				return seqs["w"] == 5 && !junk
			}, 20*time.Second, 5*time.Millisecond, "n4 holds the shard's world and not its old one")

			dirs, err := filepath.Glob(c.mgrs["n4"].DataDir(1) + ".before-join-*")
			require.NoError(t, err)
			require.Len(t, dirs, 1, "the old directory is kept beside")
			require.FileExists(t, filepath.Join(dirs[0], "raft.db"))
			mark, err := os.ReadFile(filepath.Join(c.mgrs["n4"].DataDir(1), joinMarkFile))
			require.NoError(t, err)
			require.Contains(t, string(mark), `"node":"n4"`)
		})
	}
}

// A joiner's own directory, marked when it started, is opened again as
// it is (a restart mid-join); a replacement that does not say since
// when it was listed (an older gsd's) opens any directory as it is.
func TestAJoinerKeepsItsOwnDirectory(t *testing.T) {
	c := newMetaCluster(t, 1)
	g := c.group("n1")
	r := Replacement{Old: "n9", New: "n1", Since: 42}
	require.NoError(t, g.prepareJoin(7, r))
	ours, err := g.joinedHere(7, r)
	require.NoError(t, err)
	require.True(t, ours)
	junk := filepath.Join(c.mgrs["n1"].DataDir(7), "data") // no Raft state: no configuration to keep it
	require.NoError(t, os.WriteFile(junk, []byte("the join's own"), 0o600))
	require.NoError(t, g.prepareJoin(7, r))
	require.FileExists(t, junk, "its own directory is kept")

	other := Replacement{Old: "n9", New: "n1", Since: 43}
	ours, err = g.joinedHere(7, other)
	require.NoError(t, err)
	require.False(t, ours, "another replacement's mark")
	ours, err = g.joinedHere(7, Replacement{Old: "n9", New: "n1"})
	require.NoError(t, err)
	require.True(t, ours, "no since: cannot tell, opened as it is")
	require.NoError(t, g.prepareJoin(7, Replacement{Old: "n9", New: "n1"}))
	require.FileExists(t, junk)

	require.NoError(t, g.prepareJoin(7, other))
	require.NoFileExists(t, junk, "another replacement's directory is set aside")
	require.FileExists(t, filepath.Join(c.mgrs["n1"].DataDir(7)+".before-join-43", "data"))
}

// A node named the joiner of a shard whose group's Raft configuration
// still lists it (it got its replica by bootstrap, so its directory has
// no mark; or it was just replaced out and the shard's leader has not
// removed it yet) keeps its directory, running or not: setting it aside
// would take a voter's data.
func TestAJoinerKeepsADirectoryWhoseConfigurationListsIt(t *testing.T) {
	c := newMetaClusterWith(t, 2, func(cfg *Config) { cfg.ReportInterval = 0 })
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2"}})
	g := c.group("n1")
	require.Eventually(t, func() bool { _, ok := g.View().Map.Shard(1); return ok }, 10*time.Second, 5*time.Millisecond)
	ctx := context.Background()
	var st *store.Store
	for _, id := range []string{"n2", "n1"} {
		var err error
		st, err = c.mgrs[id].Open(1, shard.GroupOptions{Bootstrap: true, Voters: c.servers})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		for _, id := range []string{"n1", "n2"} {
			if s, ok := c.mgrs[id].Group(1); ok && s.IsLeader() && s.CreateWorld(ctx, "w", fsm.Rules{}) == nil {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { _, ok := worldSeqs(st)["w"]; return ok }, 10*time.Second, 5*time.Millisecond)
	r := Replacement{Old: "n9", New: "n1", Since: 42}

	g.join(1, r)
	st, ok := c.mgrs["n1"].Group(1)
	require.True(t, ok, "n1's directory of shard 1 was set aside while the group's configuration has it a voter")
	require.Contains(t, worldSeqs(st), "w")

	require.NoError(t, c.mgrs["n1"].CloseGroup(ctx, 1))
	err := g.prepareJoin(1, r)
	require.NoError(t, err)
	dirs, err := filepath.Glob(c.mgrs["n1"].DataDir(1) + ".before-join-*")
	require.NoError(t, err)
	require.Empty(t, dirs, "a stopped group whose configuration lists n1 is set aside")
	st, err = c.mgrs["n1"].Open(1, shard.GroupOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := worldSeqs(st)["w"]; return ok }, 10*time.Second, 5*time.Millisecond, "n1 replays its own log")
}

// diskMembers reads the configuration a stopped group's files record:
// none for a directory without Raft state.
func TestDiskMembersReadsTheLastConfiguration(t *testing.T) {
	servers, err := diskMembers(t.TempDir())
	require.NoError(t, err)
	require.Empty(t, servers)
	c := newMetaClusterWith(t, 1, func(cfg *Config) { cfg.ReportInterval = 0 })
	st, err := c.mgrs["n1"].Open(3, shard.GroupOptions{Bootstrap: true})
	require.NoError(t, err)
	require.Eventually(t, st.IsLeader, 10*time.Second, 5*time.Millisecond)
	_, err = st.Snapshot(context.Background())
	require.NoError(t, err)
	require.NoError(t, c.mgrs["n1"].CloseGroup(context.Background(), 3))
	servers, err = diskMembers(c.mgrs["n1"].DataDir(3))
	require.NoError(t, err)
	require.True(t, listed("n1", servers))
}
