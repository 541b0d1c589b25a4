package meta

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// A proposal that a member which does not lead the meta group forwards
// returns only once that member's own replica applied it: the very next
// look at its map, and its router, place the world as answered, with no
// wait in between (read-your-placement).
func TestAForwardedProposalIsInTheForwardersMapWhenProposeReturns(t *testing.T) {
	c := newMetaCluster(t, 3)
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1"}})
	c.propose("n1", Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n2"}})
	for i := range 10 {
		leader := c.metaLeader()
		from := c.ids[0]
		if from == leader {
			from = c.ids[1]
		}
		world := fmt.Sprintf("w%d", i)
		placed := c.propose(from, Command{Op: OpPlaceWorld, World: world})
		require.NotZero(t, placed.Index, "the answer names the index that applied it")
		require.GreaterOrEqual(t, c.group(from).fsm.Applied(), placed.Index)
		got, listed := c.group(from).View().Map.Worlds[world]
		require.True(t, listed, "%s's map lists %s at once", from, world)
		require.Equal(t, placed.Shard, got)
		routed, err := c.routers[from].ShardOf(world)
		require.NoError(t, err)
		require.Equal(t, placed.Shard, routed, "%s routes %s by the placement", from, world)

		// Moving it (a move's publish) is just as visible at once.
		to := 3 - placed.Shard
		c.propose(from, Command{Op: OpAssignWorld, World: world, Shard: to})
		require.Equal(t, to, c.group(from).View().Map.ShardOf(world), "%s's map moved %s at once", from, world)
	}
}

// A replica that cannot catch up with the index the leader answered
// gives up with ErrBehind when the caller's context ends.
func TestWaitAppliedGivesUpWithErrBehind(t *testing.T) {
	c := newMetaCluster(t, 1)
	c.metaLeader()
	g := c.group("n1")
	c.addNodes()
	require.NoError(t, g.waitApplied(context.Background(), g.fsm.Applied()), "applied already")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := g.waitApplied(ctx, g.fsm.Applied()+1000)
	require.ErrorIs(t, err, ErrBehind)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "applied up to")

	// A snapshot at or after the index counts as applied (a replica that
	// installs one applies no entry for the indexes it holds).
	// A barrier is an entry the FSM never sees: the snapshot after it is
	// past the FSM's last applied index.
	require.NoError(t, g.raft.Barrier(5*time.Second).Error())
	require.NoError(t, g.raft.Snapshot().Error())
	snap := g.snapshotIndex()
	require.Greater(t, snap, g.fsm.Applied())
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, g.waitApplied(ctx, snap))
}

// Apply records each entry's index, whatever its type or outcome, and
// wakes the waiters; Restore wakes them too.
func TestFSMAppliedFollowsEveryEntry(t *testing.T) {
	f := NewFSM(0)
	require.Zero(t, f.Applied())
	ch := f.changes()
	f.Apply(&raft.Log{Index: 3, Type: raft.LogBarrier})
	require.Equal(t, uint64(3), f.Applied())
	requireClosed(t, ch)

	ch = f.changes()
	a := f.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: []byte{commandVersion, '{'}}).(*Applied)
	require.ErrorIs(t, a.Err, ErrBadCommand)
	require.Equal(t, uint64(4), f.Applied(), "a refused entry is applied too")
	requireClosed(t, ch)

	ch = f.changes()
	b, err := EncodeSnapshot(NewState())
	require.NoError(t, err)
	require.NoError(t, f.Restore(io.NopCloser(bytes.NewReader(b))))
	requireClosed(t, ch)
	require.Equal(t, uint64(4), f.Applied(), "a restore leaves the index to raft's snapshot")
}

func requireClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("the waiters were not woken")
	}
}
