package store

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// newQuietLeaderCluster starts three nodes and hands leadership to n2,
// whose Raft CommitTimeout is an hour: its followers hear of a commit only
// from an append that carries it, never from raft's idle empty append.
// (n1 leads the joins with the default, so they replicate as usual.)
func newQuietLeaderCluster(t *testing.T, tweak func(*Config)) (*cluster, *Store) {
	t.Helper()
	c := newCluster(t, 3, func(cfg *Config) {
		if cfg.ID != "n1" {
			cfg.CommitTimeout = time.Hour
		}
		if tweak != nil {
			tweak(cfg)
		}
	})
	n2 := c.nodes[1]
	if l := c.leader(); l != n2 {
		require.NoError(t, l.raft.LeadershipTransferToServer(raft.ServerID(n2.cfg.ID), n2.transport.LocalAddr()).Error())
	}
	require.Eventually(t, n2.LeaderReady, 10*time.Second, 10*time.Millisecond, "n2 leads")
	// A new leader records its own addresses (registerSelf: the joins
	// left out the region): wait for that entry, so that it does not land
	// among a test's entries.
	require.Eventually(t, func() bool {
		n, ok := n2.fsm.Node(n2.cfg.ID)
		return ok && sameAddrs(n, n2.Self())
	}, 10*time.Second, 10*time.Millisecond, "n2 recorded its addresses")
	mustCreateWorld(t, n2, "w")
	return c, n2
}

// scoreOn returns entity e's field c in world w on s (0 before it exists).
func scoreOn(s *Store, world string) int64 {
	v, err := s.fsm.Entity(world, "e")
	if err != nil || len(v.Fields) == 0 {
		return 0
	}
	return v.Fields[0].Value.Int
}

// A lone action on a leader whose CommitTimeout is an hour reaches its
// followers' applied state at once: the commit notice carries the commit
// index, where raft alone would tell them with its next idle append, an
// hour on.
func TestFollowersApplyALoneActionWithoutWaitingForCommitTimeout(t *testing.T) {
	t.Parallel()
	c, l := newQuietLeaderCluster(t, nil)
	before := testutil.ToFloat64(l.metrics.commitNotices)
	_, _, err := l.Act(ctxT(t), incr("w", "p1", 1, "e", "c", 7))
	require.NoError(t, err)
	for _, s := range c.nodes {
		require.Eventually(t, func() bool { return scoreOn(s, "w") == 7 }, 5*time.Second, 5*time.Millisecond,
			"%s applied the lone action", s.cfg.ID)
	}
	require.GreaterOrEqual(t, testutil.ToFloat64(l.metrics.commitNotices)-before, 1.0, "a notice told them")
	// The next lone action is told too: the first notice was answered.
	_, _, err = l.Act(ctxT(t), incr("w", "p1", 2, "e", "c", 1))
	require.NoError(t, err)
	for _, s := range c.nodes {
		require.Eventually(t, func() bool { return scoreOn(s, "w") == 8 }, 5*time.Second, 5*time.Millisecond,
			"%s applied the second lone action", s.cfg.ID)
	}
	// A linearizable read on the leader does not wait for a notice's own
	// index, which the FSM never sees.
	v, err := l.Entity(ctxT(t), "w", "e", Linearizable)
	require.NoError(t, err)
	require.Equal(t, int64(8), v.Fields[0].Value.Int)
	// Nor does the status stay one short: once the trailing notice is
	// applied, the leader reports it applied through its commit index,
	// past the FSM's.
	require.Eventually(t, func() bool {
		st := l.Status()
		return st.CommitIndex == l.raft.LastIndex() && st.AppliedIndex == st.CommitIndex
	}, 5*time.Second, 5*time.Millisecond, "status %+v", l.Status())
	require.Less(t, l.adapter.appliedIndex(), l.Status().AppliedIndex, "the last entry is a notice")
}

// A burst that keeps batches flowing gets no notice per batch: with the
// only in-flight slot held, 64 actions queue up behind a pilot entry for 8
// entries of 8; once the slot frees, each entry is answered while the next
// is queued or in flight, and only the last commit (the last two, if the
// waiter answers the seventh before the batcher takes the slot for the
// eighth) asks for a notice.
func TestABurstOfBatchesSendsOneNoticeAtItsEnd(t *testing.T) {
	t.Parallel()
	const each, batches = 8, 8
	c, l := newQuietLeaderCluster(t, func(cfg *Config) {
		cfg.Batch.MaxActions = each
		cfg.Batch.MaxInflight = 1
		cfg.Batch.MaxWait = 0
	})
	b := l.batcher
	b.sem <- struct{}{} // the only in-flight slot: nothing is proposed meanwhile
	// A pilot that fills an entry's bytes by itself: the batcher holds it
	// and waits for the slot, reading no lane meanwhile (as in
	// TestBatcherTakesTheCriticalLaneBeforeTheBulkLane).
	pilot := newTestProposal(incr("w", "pilot", 1, "e", "c", 0))
	pilot.size = b.cfg.MaxBytes
	b.critical <- pilot
	require.Eventually(t, func() bool { return len(b.critical) == 0 }, 10*time.Second, time.Millisecond, "the batcher took the pilot")
	entries := entriesProposed(t, l)
	notices := testutil.ToFloat64(l.metrics.commitNotices)
	results := make([]<-chan actResult, 0, each*batches)
	for i := range each * batches {
		results = append(results, actAsync(t, l, incr("w", name("p", i), 1, "e", "c", 1)))
	}
	require.Eventually(t, func() bool { return len(b.critical) == each*batches }, 10*time.Second, time.Millisecond)
	<-b.sem
	require.NoError(t, (<-pilot.done).err)
	for _, r := range results {
		res := <-r
		require.NoError(t, res.err)
	}
	for _, s := range c.nodes {
		require.Eventually(t, func() bool { return scoreOn(s, "w") == each*batches }, 5*time.Second, 5*time.Millisecond,
			"%s applied the burst", s.cfg.ID)
	}
	require.Equal(t, uint64(1+batches), entriesProposed(t, l)-entries, "the pilot's entry and the burst's")
	sent := testutil.ToFloat64(l.metrics.commitNotices) - notices
	require.GreaterOrEqual(t, sent, 1.0, "the burst's last commit was told")
	require.LessOrEqual(t, sent, 2.0, "not one notice per entry")
}

// A leader that loses leadership with a notice outstanding goes on: with
// both followers stopped, a notice n2 proposes cannot commit; n2 steps
// down once its lease runs out, which answers the notice. Led by n2 again,
// its lone actions still reach the followers, so its notice goroutine was
// not left waiting.
func TestLosingLeadershipWithANoticeOutstandingIsHarmless(t *testing.T) {
	t.Parallel()
	c, l := newQuietLeaderCluster(t, func(cfg *Config) {
		if cfg.ID == "n2" { // a lease long enough to propose in
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, 3*time.Second
		}
	})
	_, _, err := l.Act(ctxT(t), incr("w", "p1", 1, "e", "c", 1))
	require.NoError(t, err)
	c.waitReplicated()
	c.crash(0)
	c.crash(2)
	before := testutil.ToFloat64(l.metrics.commitNotices)
	require.True(t, l.IsLeader(), "n2 still leads on its lease")
	l.batcher.askNotice()
	require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.commitNotices) == before+1 }, 5*time.Second, time.Millisecond,
		"n2 proposed a notice no follower can take")
	require.Eventually(t, func() bool { return !l.IsLeader() }, 10*time.Second, 10*time.Millisecond, "n2 steps down")

	c.restart(0)
	c.restart(2)
	if ld := c.leader(); ld != l {
		require.NoError(t, ld.raft.LeadershipTransferToServer(raft.ServerID(l.cfg.ID), l.transport.LocalAddr()).Error())
	}
	require.Eventually(t, l.LeaderReady, 20*time.Second, 10*time.Millisecond, "n2 leads again")
	for seq := uint64(2); seq <= 3; seq++ {
		_, _, err = l.Act(ctxT(t), incr("w", "p1", seq, "e", "c", 1))
		require.NoError(t, err)
		for _, s := range c.nodes {
			require.Eventually(t, func() bool { return scoreOn(s, "w") == int64(seq) }, 5*time.Second, 5*time.Millisecond,
				"%s applied lone action %d after n2 led again", s.cfg.ID, seq)
		}
	}
}

// A notice still unanswered when the batcher closes is waited for, with
// Raft still running, so that it is answered (here by n2's stepping down,
// its followers stopped): Close shuts Raft down only after, and a barrier
// Raft had taken in but not read by then would never be answered, leaving
// the notice's goroutine waiting forever.
func TestClosingWaitsForTheNoticeInFlight(t *testing.T) {
	t.Parallel()
	c, l := newQuietLeaderCluster(t, func(cfg *Config) {
		if cfg.ID == "n2" { // a lease long enough to propose in
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, 3*time.Second
		}
	})
	// No notice from the set-up is in flight: one that committed would
	// be answered without n2's stepping down.
	c.waitReplicated()
	require.Eventually(t, func() bool { return l.batcher.noticeWaits.Load() == 0 }, 5*time.Second, time.Millisecond)
	c.crash(0)
	c.crash(2)
	require.True(t, l.IsLeader(), "n2 still leads on its lease")
	before := testutil.ToFloat64(l.metrics.commitNotices)
	l.batcher.askNotice()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(l.metrics.commitNotices) == before+1 && l.batcher.noticeWaits.Load() == 1
	}, 5*time.Second, time.Millisecond, "n2 proposed a notice no follower can take")
	l.batcher.close()
	require.Zero(t, l.batcher.noticeWaits.Load(), "the notice was answered before the batcher closed")
	require.False(t, l.IsLeader(), "answered by stepping down")
}

// A single-node group has nobody to tell: its leader proposes no notices.
func TestASingleNodeGroupSendsNoNotices(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	require.True(t, l.adapter.alone())
	mustCreateWorld(t, l, "w")
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := l.Act(ctxT(t), incr("w", "p1", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	require.Zero(t, testutil.ToFloat64(l.metrics.commitNotices))
}

// entriesProposed returns how many entries s's batcher proposed (the
// batch size histogram's sample count).
func entriesProposed(t *testing.T, s *Store) uint64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, s.metrics.batchSize.Write(&m))
	return m.GetHistogram().GetSampleCount()
}
