package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSingleNodeBootstrapsAndAppliesActions(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	ev, dup, err := s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 5))
	require.NoError(t, err)
	require.False(t, dup)
	require.Equal(t, fsm.StatusApplied, ev.Status)
	require.Equal(t, uint64(1), ev.Seq)

	view, err := s.Entity(ctxT(t), "arena", "e1", Linearizable)
	require.NoError(t, err)
	require.Equal(t, fsm.Int(5), view.Fields[0].Value)
}

func TestActionRetryWithSameSeqReturnsOriginalEvent(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	first, _, err := s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 5))
	require.NoError(t, err)
	again, dup, err := s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 5))
	require.NoError(t, err)
	require.True(t, dup)
	require.Equal(t, first.Seq, again.Seq)
	require.Equal(t, first.Changes, again.Changes)

	_, _, err = s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 6))
	require.ErrorIs(t, err, fsm.ErrSeqReused)
}

func TestThreeNodesReplicateAndAgreeOnHashes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	var wg sync.WaitGroup
	for p := 0; p < 16; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); seq <= 20; seq++ {
				_, _, err := l.Act(ctxT(t), incr("arena", name("p", p), seq, name("e", int(seq)%4), "score", 1))
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	c.ensureSameHashes("arena")
	var total int64
	for e := 0; e < 4; e++ {
		v, err := l.Entity(ctxT(t), "arena", name("e", e), Linearizable)
		require.NoError(t, err)
		total += v.Fields[0].Value.Int
	}
	require.Equal(t, int64(16*20), total)
}

func TestFollowerRefusesWritesWithNotLeader(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	c.waitReplicated()
	for _, s := range c.nodes {
		if s == l {
			continue
		}
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 1))
		require.ErrorIs(t, err, ErrNotLeader)
		_, err = s.Entity(ctxT(t), "arena", "e1", Linearizable)
		require.ErrorIs(t, err, ErrNotLeader)
		id, http := s.Leader()
		require.Equal(t, l.cfg.ID, id)
		require.Equal(t, l.cfg.HTTPAddr, http)
	}
}

func TestLeaderCrashFailoverKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 50; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	old := -1
	for i, s := range c.nodes {
		if s == l {
			old = i
		}
	}
	c.crash(old)
	nl := c.waitLeader()
	require.NotSame(t, l, nl)
	v, err := nl.Entity(ctxT(t), "arena", "e1", Linearizable)
	require.NoError(t, err)
	require.Equal(t, int64(50), v.Fields[0].Value.Int)

	// The old leader comes back from its own disk and catches up.
	_, _, err = nl.Act(ctxT(t), incr("arena", "p1", 51, "e1", "score", 1))
	require.NoError(t, err)
	c.restart(old)
	c.ensureSameHashes("arena")
}

func TestSubscribeReadsArchiveThenTailWithoutGaps(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) { cfg.TailSize = 8 })
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	for seq := uint64(1); seq <= 100; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	sub, err := s.Subscribe("arena", 1)
	require.NoError(t, err)
	var got []uint64
	for len(got) < 100 {
		evs, err := sub.Next(ctxT(t))
		require.NoError(t, err)
		for _, ev := range evs {
			got = append(got, ev.Seq)
		}
	}
	for i, seq := range got {
		require.Equal(t, uint64(i+1), seq)
	}
	// Live events follow.
	done := make(chan *fsm.Event, 1)
	go func() {
		evs, err := sub.Next(ctxT(t))
		if err == nil {
			done <- evs[0]
		}
		close(done)
	}()
	_, _, err = s.Act(ctxT(t), incr("arena", "p1", 101, "e1", "score", 1))
	require.NoError(t, err)
	ev := <-done
	require.NotNil(t, ev)
	require.Equal(t, uint64(101), ev.Seq)
}

func TestSnapshotAndRestartRestoresStateAndArchive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) { cfg.TrailingLogs = 2 })
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	for seq := uint64(1); seq <= 30; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	idx, err := s.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.Positive(t, idx)
	before, err := s.Hash("arena", 0)
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))

	s = c.restart(0)
	c.waitLeader()
	after, err := s.Hash("arena", 0)
	require.NoError(t, err)
	require.Equal(t, before, after)
	// Idempotency survived the snapshot.
	_, dup, err := s.Act(ctxT(t), incr("arena", "p1", 30, "e1", "score", 1))
	require.NoError(t, err)
	require.True(t, dup)
	// The archive still serves the events the log dropped.
	sub, err := s.Subscribe("arena", 1)
	require.NoError(t, err)
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, uint64(1), evs[0].Seq)
}

// Raft never applies its no-op entry to the FSM: a read right after an
// election must not wait for the next write.
func TestLinearizableReadAfterRestartNeedsNoWrite(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	_, _, err := s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 2))
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	s = c.restart(0)
	c.waitLeader()
	v, err := s.Entity(ctxT(t), "arena", "e1", Linearizable)
	require.NoError(t, err)
	require.Equal(t, int64(2), v.Fields[0].Value.Int)
}
