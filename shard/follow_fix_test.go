package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// A reader two moves behind (1->2->3, all three on this node) follows
// the world through the middle home's copy, fenced since, to the last
// one: one seq sequence, no world_moved.
func TestABackendSubscriptionFollowsTwoMovesOnANodeThatRunsEveryHome(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newShardCluster(t, 1, Map{
		Membership: 1,
		Shards: []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1"}},
			{ID: 3, Voters: []string{"n1"}}},
		Worlds: map[string]uint64{"arena": 1},
	})
	var g [4]*store.Store
	for id := uint64(1); id <= 3; id++ {
		st, ok := c.mgrs["n1"].Group(id)
		require.True(t, ok)
		waitLeader(t, st)
		g[id] = st
	}
	mustCreateWorld(t, g[1], "arena")
	act(t, g[1], incr("arena", "p1", 1, "e1"))
	b, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	sub, err := b.Subscribe("arena", 1)
	require.NoError(t, err)
	_, err = Move(ctx, g[1], g[2], "arena", 2, nil)
	require.NoError(t, err)
	act(t, g[2], incr("arena", "p1", 2, "e1"))
	_, err = Move(ctx, g[2], g[3], "arena", 3, nil)
	require.NoError(t, err)
	act(t, g[3], incr("arena", "p1", 3, "e1"))
	require.Equal(t, []uint64{1}, nextSeqs(t, sub))
	require.Equal(t, []uint64{2}, nextSeqs(t, sub), "from the middle home, fenced since")
	require.Equal(t, []uint64{3}, nextSeqs(t, sub), "then from the last one")
}

// A reader on the original home that read up to the fence before the
// world moved away and back reads the other home's events, up to its
// fence, from there, then the original home's again: no archive gap.
func TestABackendSubscriptionBehindAMoveBackReadsTheOtherHomeFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, src, dst := oneNodeTwoShards(t, 1)
	sub, err := b.Subscribe("arena", 1)
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, nextSeqs(t, sub))
	require.Eventually(t, func() bool {
		holes, err := src.ArchiveHoles("arena", 1)
		return err == nil && len(holes) == 0
	}, 10*time.Second, 5*time.Millisecond, "seq 1 archived")
	_, err = Move(ctx, src, dst, "arena", 2, nil)
	require.NoError(t, err)
	act(t, dst, incr("arena", "p1", 2, "e1"))
	_, err = Move(ctx, dst, src, "arena", 1, nil)
	require.NoError(t, err)
	act(t, src, incr("arena", "p1", 3, "e1"))
	var got []uint64
	for len(got) < 2 {
		got = append(got, nextSeqs(t, sub)...)
	}
	require.Equal(t, []uint64{2, 3}, got)
}

// A subscription opened from a seq beyond the world's head that follows
// a move starts at its own seq at the new home, not at the fence's + 1.
func TestABackendSubscriptionFromBeyondTheHeadKeepsItsStartAcrossAMove(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, src, dst := oneNodeTwoShards(t, 1)
	sub, err := b.Subscribe("arena", 4)
	require.NoError(t, err)
	_, err = Move(ctx, src, dst, "arena", 2, nil)
	require.NoError(t, err)
	for seq := uint64(2); seq <= 4; seq++ {
		act(t, dst, incr("arena", "p1", seq, "e1"))
	}
	require.Equal(t, []uint64{4}, nextSeqs(t, sub))
	require.Equal(t, uint64(5), sub.Position())
}

// The new home's copy fenced at or before the fence a reader follows is
// an earlier stay's (A->B->A, then fenced towards B again): the reader
// waits for B's import of this move, not reads that copy.
func TestABackendSubscriptionDoesNotTakeAnEarlierStaysFencedCopy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer func(d time.Duration) { followWait = d }(followWait)
	followWait = 100 * time.Millisecond
	b, src, dst := oneNodeTwoShards(t, 1)
	_, err := Move(ctx, src, dst, "arena", 2, nil)
	require.NoError(t, err)
	act(t, dst, incr("arena", "p1", 2, "e1"))
	_, err = Move(ctx, dst, src, "arena", 1, nil)
	require.NoError(t, err)
	act(t, src, incr("arena", "p1", 3, "e1"))
	sub, err := b.Subscribe("arena", 4)
	require.NoError(t, err)
	_, err = FenceAndExport(ctx, src, "arena", 2) // B not importing it (yet)
	require.NoError(t, err)
	_, err = sub.Next(ctx)
	require.ErrorIs(t, err, fsm.ErrWorldMoved)
	require.ErrorContains(t, err, "has not imported it", "not the earlier stay's copy at seq 2")
}
