package shard

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAMoveBacksOldHomeIsTheOneItsImportContinues (issue 14): the world
// went 1->2->3->2 (fences 3, 5, 7) and n1 runs 1 and 2 but not 3. Shard
// 1's copy is fenced towards 2 too, at 3, but the move back continues
// shard 3's fence at 7: shard 1 is no old home of this import, and n1
// copies 6..7 from n2 (which copies them from its replica of 3), while
// shard 1 still serves n1 the seqs up to its own fence. Before, n1 took
// shard 1 for the old home: it copied up to 3, marked the world done and
// kept the hole 6..7 forever, and its FeedSource answered archive_gap
// for 6 and 7 forever.
func TestAMoveBacksOldHomeIsTheOneItsImportContinues(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 2,
		Shards: []MapShard{
			{ID: 1, Voters: []string{"n1"}},
			{ID: 2, Voters: []string{"n1", "n2"}},
			{ID: 3, Voters: []string{"n2"}},
		},
		Worlds: map[string]uint64{"arena": 2},
	})
	ctx := moveContext(t)
	joinReplicas(ctx, t, c, 1, 2, 3)
	mustCreateWorld(t, groupLeader(t, c, 1), "arena")
	seq := uint64(0)
	actOn := func(g uint64, n int) {
		for range n {
			seq++
			act(t, groupLeader(t, c, g), incr("arena", "p1", seq, "e1"))
		}
	}
	actOn(1, 3)
	var fences []uint64
	from := uint64(1)
	for _, to := range []uint64{2, 3, 2} {
		f, err := Move(ctx, groupLeader(t, c, from), groupLeader(t, c, to), "arena", to, nil)
		require.NoError(t, err)
		fences = append(fences, f)
		actOn(to, 2)
		from = to
	}
	require.Equal(t, []uint64{3, 5, 7}, fences)
	require.Equal(t, uint64(9), seq)

	peers := backendPeers{}
	for _, id := range c.ids {
		b, err := NewBackend(c.routers[id])
		require.NoError(t, err)
		peers[id] = b
	}
	n1home, _ := c.mgrs["n1"].Group(2)
	n2home, _ := c.mgrs["n2"].Group(2)
	_, fence, ok := peers["n1"].oldHome("arena", n1home)
	require.False(t, ok, "n1 does not run shard 3, whose fence the import continues; got the fence %v", fence)
	_, fence, ok = peers["n2"].oldHome("arena", n2home)
	require.True(t, ok)
	require.Equal(t, uint64(7), fence.Seq, "n2's replica of shard 3")

	// As the sweeps do, on both nodes, until neither has a hole: each
	// copies what its own old homes hold and the rest from the other.
	// (n2's sweep also reports shard 3's fenced copy, whose holes 1..5
	// no node can fill: shard 3 has no other node.)
	require.Eventually(t, func() bool {
		_, err1 := peers["n1"].CopyMovedArchives(ctx, peers, 2)
		_, _ = peers["n2"].CopyMovedArchives(ctx, peers, 2)
		h1, herr1 := n1home.ArchiveHoles("arena", seq)
		h2, herr2 := n2home.ArchiveHoles("arena", seq)
		return errors.Join(err1, herr1, herr2) == nil && len(h1) == 0 && len(h2) == 0
	}, 10*time.Second, 5*time.Millisecond, "both copies complete")
	for range 3 { // done: nothing more to copy, and no hole comes back
		n, err := peers["n1"].CopyMovedArchives(ctx, peers, 2)
		require.NoError(t, err)
		require.Zero(t, n)
	}
	holes, err := n1home.ArchiveHoles("arena", seq)
	require.NoError(t, err)
	require.Empty(t, holes)
	got := history(t, n1home, "arena", 1, seq)
	for i, ev := range got {
		require.Equal(t, uint64(i+1), ev.Seq)
	}
	require.Equal(t, history(t, n2home, "arena", 1, seq), got)
	fs := &FeedSource{b: peers["n1"]}
	for s := uint64(1); s <= seq; s++ {
		ev, ok := fs.Event("arena", s)
		require.True(t, ok, "seq %d", s)
		require.Equal(t, s, ev.Seq)
	}
	sub, err := fs.Subscribe("arena", 6)
	require.NoError(t, err)
	evs, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(6), evs[0].Seq, "from n1's archive, copied from n2")
}
