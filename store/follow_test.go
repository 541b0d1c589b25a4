package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// movedPair is a world "arena" with seqs 1..3 on src, fenced towards
// shard 2 and imported on dst.
func movedPair(t *testing.T) (src, dst *Store) {
	t.Helper()
	src, dst = newCluster(t, 1, nil).leader(), newCluster(t, 1, nil).leader()
	require.NoError(t, src.Join(ctxT(t), src.Self())) // the move's version gate
	mustCreateWorld(t, src, "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := src.Act(ctxT(t), incr("arena", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	return src, dst
}

func seqsOf(evs []*fsm.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// A subscription that follows moves reads the world's events up to its
// fence from the old group and goes on at the new home from the fence's
// seq + 1: one seq sequence, no gap, no duplicate. A waiting one is woken
// by the fence itself.
func TestASubscriptionThatFollowsMovesGoesOnAtTheNewHome(t *testing.T) {
	t.Parallel()
	src, dst := movedPair(t)
	sub, err := src.Subscribe("arena", 1)
	require.NoError(t, err)
	fences := make(chan fsm.Fence, 1)
	imported := make(chan struct{})
	sub.FollowMoves(func(ctx context.Context, f fsm.Fence) (*Subscription, error) {
		fences <- f
		<-imported // as shard's opener waits for the import on this node
		return dst.Subscribe(f.World, f.Seq+1)
	})
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, seqsOf(evs))

	// Waiting at 4 when the fence comes: the move continues it.
	got := make(chan []*fsm.Event, 1)
	errs := make(chan error, 1)
	go func() {
		evs, err := sub.Next(ctxT(t))
		errs <- err
		got <- evs
	}()
	fence, err := src.MoveWorld(ctxT(t), "arena", 2, 0)
	require.NoError(t, err)
	select {
	case f := <-fences:
		require.Equal(t, fence, f)
	case <-time.After(10 * time.Second):
		t.Fatal("the fence did not wake the waiting subscriber")
	}
	blob, _, err := src.ExportWorld("arena", 1)
	require.NoError(t, err)
	_, err = dst.ImportWorld(ctxT(t), "arena", blob)
	require.NoError(t, err)
	close(imported)
	_, _, err = dst.Act(ctxT(t), incr("arena", "ann", 4, "e", "c", 1))
	require.NoError(t, err)
	require.NoError(t, <-errs)
	require.Equal(t, []uint64{4}, seqsOf(<-got), "the world's seq goes on at its new home")
	require.Equal(t, uint64(5), sub.Position())
	_, _, err = dst.Act(ctxT(t), incr("arena", "ann", 5, "e", "c", 1))
	require.NoError(t, err)
	evs, err = sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []uint64{5}, seqsOf(evs))
}

// An opener that finds no new home on this node leaves the subscription
// waiting at the fence, as one without an opener (asked once); an
// opener's error ends Next with it; a subscription behind the fence reads
// up to it first.
func TestAFencedSubscriptionWaitsOrFailsAsItsOpenerSays(t *testing.T) {
	t.Parallel()
	src, _ := movedPair(t)
	stays, err := src.Subscribe("arena", 4)
	require.NoError(t, err)
	asked := 0
	stays.FollowMoves(func(context.Context, fsm.Fence) (*Subscription, error) {
		asked++
		return nil, nil
	})
	boom := errors.New("boom")
	fails, err := src.Subscribe("arena", 2)
	require.NoError(t, err)
	fails.FollowMoves(func(context.Context, fsm.Fence) (*Subscription, error) { return nil, boom })
	plain, err := src.Subscribe("arena", 4)
	require.NoError(t, err)

	_, err = src.MoveWorld(ctxT(t), "arena", 2, 0)
	require.NoError(t, err)
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err = stays.Next(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	require.Equal(t, 1, asked)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = plain.Next(ctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "without an opener: waits at the fence")

	evs, err := fails.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 3}, seqsOf(evs), "up to the fence first")
	_, err = fails.Next(ctxT(t))
	require.ErrorIs(t, err, boom)
}

// A replica restarted from a snapshot taken after the fence knows the
// fence from its restored state: a subscription past it follows the move
// at once, as before the restart.
func TestARestoredFenceIsFollowedAfterARestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	src := c.leader()
	require.NoError(t, src.Join(ctxT(t), src.Self()))
	mustCreateWorld(t, src, "arena")
	_, _, err := src.Act(ctxT(t), incr("arena", "ann", 1, "e", "c", 1))
	require.NoError(t, err)
	fence, err := src.MoveWorld(ctxT(t), "arena", 2, 0)
	require.NoError(t, err)
	_, err = src.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, src.Close(context.Background()))
	src = c.restart(0)
	c.waitLeader()
	sub, err := src.Subscribe("arena", fence.Seq+1)
	require.NoError(t, err)
	boom := errors.New("followed")
	var got fsm.Fence
	sub.FollowMoves(func(_ context.Context, f fsm.Fence) (*Subscription, error) {
		got = f
		return nil, boom
	})
	_, err = sub.Next(ctxT(t))
	require.ErrorIs(t, err, boom)
	require.Equal(t, fence, got)
}
