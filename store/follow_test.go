package store

import (
	"context"
	"errors"
	"log/slog"
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
	sub.FollowMoves(func(ctx context.Context, f fsm.Fence, _ uint64) (*Subscription, error) {
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
	stays.FollowMoves(func(context.Context, fsm.Fence, uint64) (*Subscription, error) {
		asked++
		return nil, nil
	})
	boom := errors.New("boom")
	fails, err := src.Subscribe("arena", 2)
	require.NoError(t, err)
	fails.FollowMoves(func(context.Context, fsm.Fence, uint64) (*Subscription, error) { return nil, boom })
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
	sub.FollowMoves(func(_ context.Context, f fsm.Fence, _ uint64) (*Subscription, error) {
		got = f
		return nil, boom
	})
	_, err = sub.Next(ctxT(t))
	require.ErrorIs(t, err, boom)
	require.Equal(t, fence, got)
}

// A subscription that read up to the fence of a move away from its group
// and calls Next only after the world moved back (its tail started over
// after the other home's events, not in this archive yet) reads those at
// the other home, through the fence of the stay away, instead of ending
// with an archive gap; one that does not follow moves ends with it.
func TestASubscriptionBehindAMoveBackFollowsTheStayAway(t *testing.T) {
	t.Parallel()
	f := newFeed(openTestArchive(t), 16, slog.New(slog.DiscardHandler))
	t.Cleanup(f.close)
	away := newFeed(openTestArchive(t), 16, slog.New(slog.DiscardHandler))
	t.Cleanup(away.close)
	f.publish(2, evs("arena", 1, 2))
	sub := &Subscription{f: f, world: "arena", next: 1}
	plain := &Subscription{f: f, world: "arena", next: 3}
	evs12, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, seqsOf(evs12))

	fence := fsm.Fence{World: "arena", Shard: 2, Seq: 2}
	f.fence(fence)
	away.publish(3, evs("arena", 3, 4)) // the other home's stay
	f.adopt("arena", 5)                 // moved back: the tail starts at 5
	f.publish(5, evs("arena", 5, 5))
	var got []uint64
	sub.FollowMoves(func(_ context.Context, fc fsm.Fence, from uint64) (*Subscription, error) {
		got = append(got, fc.Seq, from)
		return &Subscription{f: away, world: "arena", next: from}, nil
	})
	evs34, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []uint64{3, 4}, seqsOf(evs34), "at the other home")
	require.Equal(t, []uint64{fence.Seq, 3}, got, "through the stay's fence, from its own seq")

	_, err = plain.Next(ctxT(t))
	require.ErrorIs(t, err, ErrArchiveGap, "without an opener")
	fails := &Subscription{f: f, world: "arena", next: 3}
	boom := errors.New("no other home")
	fails.FollowMoves(func(context.Context, fsm.Fence, uint64) (*Subscription, error) { return nil, boom })
	_, err = fails.Next(ctxT(t))
	require.ErrorIs(t, err, boom, "the opener's error ends it")
	plain.FollowMoves(func(context.Context, fsm.Fence, uint64) (*Subscription, error) { return nil, nil })
	plain.next = 6 // past the stay away: not in it
	f.adopt("arena", 8)
	_, err = plain.Next(ctxT(t))
	require.ErrorIs(t, err, ErrArchiveGap, "a seq of no stay away")

	f.adopt("arena", 8) // no fence here (a first import): no stay
	f.fence(fsm.Fence{World: "arena", Shard: 2, Seq: 8})
	f.adopt("arena", 9) // back at once, nothing away: no stay
	f.mu.Lock()
	require.Len(t, f.left["arena"], 1)
	f.mu.Unlock()
	f.drop("arena")
	_, ok := f.awayAt("arena", 3)
	require.False(t, ok, "dropped with the world")
}
