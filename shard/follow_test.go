package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// oneNodeTwoShards runs shards 1 and 2 on node n1, with "arena" created on
// shard 1 and the map placing it on placed; it returns the node's Backend
// and its two groups.
func oneNodeTwoShards(t *testing.T, placed uint64) (*Backend, *store.Store, *store.Store) {
	t.Helper()
	c := newShardCluster(t, 1, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1"}}},
		Worlds:     map[string]uint64{"arena": placed},
	})
	src, ok := c.mgrs["n1"].Group(1)
	require.True(t, ok)
	dst, ok := c.mgrs["n1"].Group(2)
	require.True(t, ok)
	waitLeader(t, src)
	waitLeader(t, dst)
	mustCreateWorld(t, src, "arena")
	act(t, src, incr("arena", "p1", 1, "e1"))
	b, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	return b, src, dst
}

func nextSeqs(t *testing.T, sub *store.Subscription) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := sub.Next(ctx)
	require.NoError(t, err)
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// A subscription of the edge (play, spectators, streams) waiting on a
// world's group when the world moves to another group of this node goes
// on there from the fence's seq + 1, whether or not the map was updated
// yet; one opened at the new home from before the fence reads the old
// home up to it first. No gap, no duplicate.
func TestABackendSubscriptionFollowsItsWorldToAnotherGroupOfThisNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, src, dst := oneNodeTwoShards(t, 1)
	sub, err := b.Subscribe("arena", 1)
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, nextSeqs(t, sub))
	got := make(chan []uint64, 1)
	go func() { got <- nextSeqs(t, sub) }() // waiting at 2 when the world moves
	seq, err := Move(ctx, src, dst, "arena", 2, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	act(t, dst, incr("arena", "p1", 2, "e1"))
	require.Equal(t, []uint64{2}, <-got, "at the new home, from the fence's seq + 1")

	// The map names the new home: a reader behind the move.
	b, src, dst = oneNodeTwoShards(t, 2)
	_, err = Move(ctx, src, dst, "arena", 2, nil)
	require.NoError(t, err)
	act(t, dst, incr("arena", "p1", 2, "e1"))
	_, err = dst.Subscribe("arena", 1)
	require.ErrorIs(t, err, store.ErrArchiveGap, "the new home's feed starts after the fence")
	behind, err := b.Subscribe("arena", 1)
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, nextSeqs(t, behind), "from the old home up to the fence")
	require.Equal(t, []uint64{2}, nextSeqs(t, behind), "then from the new home")
	_, err = b.Subscribe("nope", 1)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	require.True(t, b.RunsGroup(2))
	require.False(t, b.RunsGroup(9))
}

// A world fenced towards a group this node does not run ends its
// subscriptions with world_moved once they read up to the fence (a play
// connection closes with 4421 at once); one fenced towards a group of
// this node that does not import it within followWait ends likewise.
func TestABackendSubscriptionWaitsOrEndsWhenItCannotFollow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, src, _ := oneNodeTwoShards(t, 1)
	sub, err := b.Subscribe("arena", 2)
	require.NoError(t, err)
	_, err = FenceAndExport(ctx, src, "arena", 9)
	require.NoError(t, err)
	_, err = sub.Next(ctx)
	var moved *fsm.MovedError
	require.ErrorAs(t, err, &moved)
	require.Equal(t, fsm.Fence{World: "arena", Shard: 9, Seq: 1}, moved.Fence)

	defer func(d time.Duration) { followWait = d }(followWait)
	followWait = 50 * time.Millisecond
	b, src, _ = oneNodeTwoShards(t, 1)
	sub, err = b.Subscribe("arena", 2)
	require.NoError(t, err)
	_, err = FenceAndExport(ctx, src, "arena", 2) // never imported
	require.NoError(t, err)
	_, err = sub.Next(ctx)
	require.ErrorIs(t, err, fsm.ErrWorldMoved)
	require.ErrorContains(t, err, "has not imported it")

	// The reader's own end comes first.
	followWait = time.Minute
	sub, err = b.Subscribe("arena", 2)
	require.NoError(t, err)
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = sub.Next(wctx)
	wcancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
