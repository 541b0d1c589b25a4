package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// followersOf returns the nodes of c other than l.
func followersOf(c *cluster, l *Store) []*Store {
	var out []*Store
	for _, s := range c.nodes {
		if s != l {
			out = append(out, s)
		}
	}
	return out
}

// noticeAt returns the notice of s's event of world at seq, or nil.
func noticeAt(s *Store, world string, seq uint64) *fsm.Notice {
	ev, ok := s.Event(world, seq)
	if !ok {
		return nil
	}
	return ev.Notice
}

// isVoter reports whether id is a voter in l's configuration.
func isVoter(t *testing.T, l *Store, id string) bool {
	f := l.raft.GetConfiguration()
	require.NoError(t, f.Error())
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return srv.Suffrage == raft.Voter
		}
	}
	return false
}

// confirmIn answers ConfirmMark from the stores of *c (under mu, which
// guards c.nodes): what the daemon asks over the node-to-node route.
func confirmIn(c **cluster, mu *sync.Mutex) func(context.Context, uint64, fsm.NodeInfo, string, uint64) (uint64, bool, error) {
	return func(_ context.Context, _ uint64, n fsm.NodeInfo, world string, index uint64) (uint64, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range (*c).nodes {
			if s.cfg.ID == n.ID {
				h, known := s.CheckpointMark(world, index)
				return h, known, nil
			}
		}
		return 0, false, errors.New("no such node")
	}
}

// markedMismatch waits until every replica holds l's latest checkpoint
// mark of world and returns node's report against it.
func markedMismatch(t *testing.T, c *cluster, l *Store, world, node string) CheckpointMismatch {
	t.Helper()
	var m CheckpointMismatch
	require.Eventually(t, func() bool {
		cp, _, ok := l.fsm.CheckpointOf(world, l.cfg.ID)
		if !ok || cp.Index == 0 {
			return false
		}
		for _, s := range c.nodes {
			if _, known := s.CheckpointMark(world, cp.Index); !known {
				return false
			}
		}
		m = CheckpointMismatch{Node: node, World: world, Index: cp.Index, Leader: l.cfg.ID, LeaderHash: cp.Hash, Local: cp.Hash + 1}
		return true
	}, 10*time.Second, 10*time.Millisecond, "no checkpoint every replica marked")
	return m
}

// TestMismatchReportBecomesOneWorldEventOnEveryReplica: the leader records
// a follower's report as the world's next event, the same on every
// replica; the same replica's report at a later checkpoint adds none.
func TestMismatchReportBecomesOneWorldEventOnEveryReplica(t *testing.T) {
	c := newCluster(t, 3, withCheckpoints)
	l := c.leader()
	mustCreateWorld(t, l, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := l.Act(ctx, incr("w", "ann", 1, "e", "hp", 1))
	require.NoError(t, err)
	odd := followersOf(c, l)[0]
	m := CheckpointMismatch{Node: odd.cfg.ID, World: "w", Index: 5, Leader: l.cfg.ID, LeaderHash: 1, Local: 2}
	down, err := l.ReportMismatch(m)
	require.NoError(t, err)
	require.False(t, down)
	c.waitReplicated()
	want := &fsm.Notice{Kind: fsm.NoticeCheckpointMismatch, Node: odd.cfg.ID, Index: 5, Leader: l.cfg.ID}
	for _, s := range c.nodes {
		require.Equal(t, want, noticeAt(s, "w", 2), "node %s", s.cfg.ID)
	}
	c.ensureSameHashes("w")

	m.Index = 9
	_, err = l.ReportMismatch(m)
	require.NoError(t, err)
	c.waitReplicated()
	seq, err := l.Hash("w", 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), seq.Seq, "one event per world and replica")
	require.Zero(t, testutil.ToFloat64(l.metrics.heals.WithLabelValues("skipped")), "healing is off")
	require.True(t, isVoter(t, l, odd.cfg.ID), "without healing the odd replica stays")
}

// TestMajorityReportIsRecordedNamingTheLeaderBeforeItStepsDown: against a
// leader that a majority reports, the event names the leader.
func TestMajorityReportIsRecordedNamingTheLeaderBeforeItStepsDown(t *testing.T) {
	c := newCluster(t, 3, withCheckpoints)
	l := c.leader()
	mustCreateWorld(t, l, "w")
	for _, f := range followersOf(c, l) {
		_, err := l.ReportMismatch(CheckpointMismatch{Node: f.cfg.ID, World: "w", Index: 4, Leader: l.cfg.ID, LeaderHash: 1, Local: 2})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return c.waitLeader() != l }, 10*time.Second, 10*time.Millisecond)
	c.waitReplicated()
	var found []*fsm.Notice
	for seq := uint64(1); seq <= 2; seq++ {
		if n := noticeAt(c.waitLeader(), "w", seq); n != nil {
			found = append(found, n)
		}
	}
	require.Len(t, found, 2, "one per reporter's finding: the first names the reporter, the majority names the leader")
	require.Equal(t, l.cfg.ID, found[1].Node)
}

// TestHealGuardRails: no heal below 3 voters, one heal at a time, a
// cool-down after one; a heal removes the replica, calls HealReplica and
// adds it again.
func TestHealGuardRails(t *testing.T) {
	t.Run("two voters", func(t *testing.T) {
		called := make(chan string, 4)
		var (
			c  *cluster
			mu sync.Mutex
		)
		c = newCluster(t, 2, func(cfg *Config) {
			withCheckpoints(cfg)
			cfg.HealReplica = func(_ context.Context, _ uint64, n fsm.NodeInfo) error { called <- n.ID; return nil }
			cfg.ConfirmMark = confirmIn(&c, &mu)
		})
		l := c.leader()
		odd := followersOf(c, l)[0]
		_, err := l.ReportMismatch(CheckpointMismatch{Node: odd.cfg.ID, World: "w", Index: 4, Leader: l.cfg.ID, LeaderHash: 1, Local: 2})
		require.NoError(t, err)
		require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.heals.WithLabelValues("skipped")))
		require.Empty(t, called)
		require.True(t, isVoter(t, l, odd.cfg.ID))
	})
	t.Run("in flight and cool-down", func(t *testing.T) {
		called := make(chan string, 4)
		release := make(chan struct{})
		var (
			c  *cluster
			mu sync.Mutex
		)
		c = newCluster(t, 3, func(cfg *Config) {
			withCheckpoints(cfg)
			cfg.HealReplica = func(_ context.Context, _ uint64, n fsm.NodeInfo) error {
				called <- n.ID
				<-release
				return nil
			}
			cfg.ConfirmMark = confirmIn(&c, &mu)
		})
		l := c.leader()
		fs := followersOf(c, l)
		mustCreateWorld(t, l, "w")
		m := markedMismatch(t, c, l, "w", fs[0].cfg.ID)
		report := func(node string, index uint64) {
			r := m
			r.Node, r.Index = node, index
			_, err := l.ReportMismatch(r)
			require.NoError(t, err)
		}
		report(fs[0].cfg.ID, m.Index)
		select {
		case id := <-called:
			require.Equal(t, fs[0].cfg.ID, id)
		case <-time.After(10 * time.Second):
			t.Fatal("no heal started")
		}
		require.False(t, isVoter(t, l, fs[0].cfg.ID), "removed before it is told to wipe")
		report(fs[1].cfg.ID, m.Index+1)
		require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.heals.WithLabelValues("skipped")), "one heal in flight")
		close(release)
		require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.heals.WithLabelValues("healed")) == 1 },
			10*time.Second, 10*time.Millisecond)
		require.True(t, isVoter(t, l, fs[0].cfg.ID), "added again")
		report(fs[1].cfg.ID, m.Index+2)
		require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.heals.WithLabelValues("skipped")), "cool-down")
		require.Len(t, called, 0)
	})
}

func TestHealConfigIsChecked(t *testing.T) {
	cfg := testConfig(t, "n1", t.TempDir())
	cfg.HealCooldown = -time.Second
	require.ErrorContains(t, cfg.Validate(), "HealCooldown")
	cfg = testConfig(t, "n1", t.TempDir())
	cfg.HealReplica = func(context.Context, uint64, fsm.NodeInfo) error { return nil }
	require.ErrorContains(t, cfg.Validate(), "ConfirmMark")
}

// TestHealNeedsAMajorityToConfirmTheLeadersHash: the first report against
// a lying leader is a minority too; the leader heals only when the other
// voters confirm its hash, so it never heals an honest replica.
func TestHealNeedsAMajorityToConfirmTheLeadersHash(t *testing.T) {
	called := make(chan string, 4)
	var (
		answer struct {
			sync.Mutex
			hash  uint64
			known bool
			err   error
		}
	)
	c := newCluster(t, 3, func(cfg *Config) {
		withCheckpoints(cfg)
		cfg.HealReplica = func(_ context.Context, _ uint64, n fsm.NodeInfo) error { called <- n.ID; return nil }
		cfg.ConfirmMark = func(context.Context, uint64, fsm.NodeInfo, string, uint64) (uint64, bool, error) {
			answer.Lock()
			defer answer.Unlock()
			return answer.hash, answer.known, answer.err
		}
		cfg.HealCooldown = time.Nanosecond
	})
	l := c.leader()
	fs := followersOf(c, l)
	mustCreateWorld(t, l, "w")
	m := markedMismatch(t, c, l, "w", fs[0].cfg.ID)
	skipped := func(want float64) {
		t.Helper()
		require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.heals.WithLabelValues("skipped")) == want },
			10*time.Second, 10*time.Millisecond)
		l.healMu.Lock()
		defer l.healMu.Unlock()
		require.Empty(t, l.healing, "no heal in flight after a skip")
	}
	for i, a := range []struct {
		hash  uint64
		known bool
		err   error
	}{
		{m.LeaderHash + 1, true, nil}, // the other voter differs from the leader: a liar's case
		{m.LeaderHash, false, nil},    // it has no mark there
		{m.LeaderHash, true, errors.New("unreachable")},
	} {
		answer.Lock()
		answer.hash, answer.known, answer.err = a.hash, a.known, a.err
		answer.Unlock()
		r := m
		r.Index = m.Index // the same checkpoint: a new reporter each time
		r.Node = fs[i%2].cfg.ID
		l.checkMu.Lock()
		clear(l.reports)
		l.checkMu.Unlock()
		_, err := l.ReportMismatch(r)
		require.NoError(t, err)
		skipped(float64(i + 1))
	}
	// A checkpoint the leader holds no mark of: skipped before asking.
	r := m
	r.Index = 1
	_, err := l.ReportMismatch(r)
	require.NoError(t, err)
	skipped(4)
	require.Empty(t, called)
	require.True(t, isVoter(t, l, fs[0].cfg.ID))
	require.True(t, isVoter(t, l, fs[1].cfg.ID))

	// Confirmed: the heal runs.
	answer.Lock()
	answer.hash, answer.known, answer.err = m.LeaderHash, true, nil
	answer.Unlock()
	l.checkMu.Lock()
	clear(l.reports)
	l.checkMu.Unlock()
	_, err = l.ReportMismatch(m)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.heals.WithLabelValues("healed")) == 1 },
		10*time.Second, 10*time.Millisecond)
	require.Equal(t, fs[0].cfg.ID, <-called)
}

// TestDivergenceEventWaitsForEveryVoterToReadLogVersion9: while a voter
// reads log 8, the leader records no divergence event (a log 8 replica
// would stop on it); the report is still counted, and once the voter
// reads log 9 the next report is recorded.
func TestDivergenceEventWaitsForEveryVoterToReadLogVersion9(t *testing.T) {
	var log9 sync.Mutex
	n3reads := fsm.Versions{Log: 8, Snapshot: 8, Wire: 1}
	c := newCluster(t, 3, func(cfg *Config) {
		withCheckpoints(cfg)
		cfg.NodeVersions = func(id string) (fsm.Versions, bool) {
			log9.Lock()
			defer log9.Unlock()
			if id == "n3" {
				return n3reads, true
			}
			return fsm.Supported(), true
		}
	})
	l := c.leader()
	if l.cfg.ID == "n3" {
		t.Skip("n3 leads: its own versions are its config's") // the bootstrapping n1 leads
	}
	mustCreateWorld(t, l, "w")
	c.waitReplicated()
	odd := followersOf(c, l)[0]
	before := l.raft.LastIndex()
	_, err := l.ReportMismatch(CheckpointMismatch{Node: odd.cfg.ID, World: "w", Index: 5, Leader: l.cfg.ID, LeaderHash: 1, Local: 2})
	require.NoError(t, err)
	require.NotContains(t, proposedSince(t, l, before), fsm.CmdDivergence)
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.mismatchReports.WithLabelValues("minority")))

	log9.Lock()
	n3reads = fsm.Supported()
	log9.Unlock()
	before = l.raft.LastIndex()
	_, err = l.ReportMismatch(CheckpointMismatch{Node: odd.cfg.ID, World: "w", Index: 6, Leader: l.cfg.ID, LeaderHash: 1, Local: 2})
	require.NoError(t, err)
	require.Contains(t, proposedSince(t, l, before), fsm.CmdDivergence, "a refused event is tried again at the next report")
}
