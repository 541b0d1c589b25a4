package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// withCheckpoints turns checkpoints on, every voter reading them (the
// harness's joins report no versions: the version gate would refuse).
func withCheckpoints(cfg *Config) {
	cfg.CheckpointInterval = 20 * time.Millisecond
	cfg.NodeVersions = func(string) (fsm.Versions, bool) { return fsm.Supported(), true }
}

// TestCheckpointsOfAnHonestClusterCompareEqualOnEveryReplica: with
// checkpoints on, every replica compares the leader's hashes with its own
// and finds no mismatch.
func TestCheckpointsOfAnHonestClusterCompareEqualOnEveryReplica(t *testing.T) {
	c := newCluster(t, 3, withCheckpoints)
	l := c.leader()
	mustCreateWorld(t, l, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := l.Act(ctx, incr("w", "ann", seq, "e", "hp", 1))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		for _, s := range c.nodes {
			if testutil.ToFloat64(s.metrics.checkpointsCompared) < 1 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "every replica compares checkpoints")
	for _, s := range c.nodes {
		require.Zero(t, testutil.ToFloat64(s.metrics.checkpointMismatches), "node %s", s.cfg.ID)
	}
}

// TestCheckpointMismatchIsCountedLoggedAndReported: a comparison that
// differs counts, and the callback gets the replica, the index and both
// hashes; a match or an unknown index does neither.
func TestCheckpointMismatchIsCountedLoggedAndReported(t *testing.T) {
	var got []CheckpointMismatch
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.OnCheckpointMismatch = func(m CheckpointMismatch) { got = append(got, m) }
	})
	s := c.nodes[0]
	cp := fsm.Checkpoint{World: "w", Index: 7, Hash: 1, Leader: "n9"}
	s.checkpointApplied(&fsm.CheckpointResult{Checkpoint: cp, Local: 1, Known: true})
	s.checkpointApplied(&fsm.CheckpointResult{Checkpoint: cp})
	require.Empty(t, got)
	s.checkpointApplied(&fsm.CheckpointResult{Checkpoint: cp, Local: 2, Known: true})
	require.Equal(t, []CheckpointMismatch{{Node: "n1", World: "w", Index: 7, Leader: "n9", LeaderHash: 1, Local: 2}}, got)
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.checkpointMismatches))
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.checkpointsCompared))
}

// TestLeaderStepsDownWhenAMajorityReportsAMismatchAgainstIt: one report
// names a follower as odd and changes nothing; reports from a majority of
// the voters against the same checkpoint make the leader hand over.
func TestLeaderStepsDownWhenAMajorityReportsAMismatchAgainstIt(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	var followers []*Store
	for _, s := range c.nodes {
		if s != l {
			followers = append(followers, s)
		}
	}
	m := CheckpointMismatch{World: "w", Index: 9, Leader: l.cfg.ID, LeaderHash: 1, Local: 2}
	_, err := followers[0].ReportMismatch(m)
	require.ErrorIs(t, err, ErrNotLeader)

	// A follower's round proposes nothing (it logs ErrNotLeader).
	mustCreateWorld(t, l, "w")
	c.waitReplicated()
	before := l.raft.LastIndex()
	carried := make(map[string]uint64)
	followers[0].checkpointRound(context.Background(), carried)
	require.Empty(t, carried)
	require.NotContains(t, proposedSince(t, l, before), fsm.CmdCheckpoint)

	other := m
	other.Leader, other.Node = "someone-else", followers[0].cfg.ID
	down, err := l.ReportMismatch(other)
	require.NoError(t, err)
	require.False(t, down, "a report about another leader's checkpoint")

	stranger := m
	stranger.Node = "not-a-voter"
	down, err = l.ReportMismatch(stranger)
	require.NoError(t, err)
	require.False(t, down, "a report from a node that is not a voter")

	// Reports against an older checkpoint of the world are dropped once a
	// newer one is reported: they never add up with the newer ones.
	old := m
	old.Node, old.Index = followers[1].cfg.ID, m.Index-1
	down, err = l.ReportMismatch(old)
	require.NoError(t, err)
	require.False(t, down)

	m.Node = followers[0].cfg.ID
	for range 2 { // the same reporter twice is one report
		down, err = l.ReportMismatch(m)
		require.NoError(t, err)
		require.False(t, down)
	}
	require.True(t, l.IsLeader())
	// Counted: old and m, each reporter once; the others were ignored.
	require.Equal(t, 2.0, testutil.ToFloat64(l.metrics.mismatchReports.WithLabelValues("minority")))
	last := l.Status().LastMismatch
	require.NotNil(t, last)
	require.Equal(t, wire.MismatchReport{World: "w", Index: 9, Leader: l.cfg.ID, LeaderHash: wire.Hash(wire.HashString(1)),
		Reporters: []wire.MismatchReporter{{Node: followers[0].cfg.ID, Hash: wire.Hash(wire.HashString(2))}}, Voters: 3, Time: last.Time}, *last)
	require.Nil(t, followers[0].Status().LastMismatch, "reports reach leaders only")

	m.Node, m.Local = followers[1].cfg.ID, 3
	down, err = l.ReportMismatch(m)
	require.NoError(t, err)
	require.True(t, down)
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.mismatchReports.WithLabelValues("majority")))
	last = l.Status().LastMismatch
	require.True(t, last.Majority)
	require.ElementsMatch(t, []wire.MismatchReporter{{Node: followers[0].cfg.ID, Hash: wire.Hash(wire.HashString(2))},
		{Node: followers[1].cfg.ID, Hash: wire.Hash(wire.HashString(3))}}, last.Reporters)
	require.True(t, slices.IsSortedFunc(last.Reporters, func(a, b wire.MismatchReporter) int { return strings.Compare(a.Node, b.Node) }))
	require.Eventually(t, func() bool { return c.waitLeader() != l }, 10*time.Second, 10*time.Millisecond)
}

func TestCheckpointIntervalMustNotBeNegative(t *testing.T) {
	cfg := testConfig(t, "n1", t.TempDir())
	cfg.CheckpointInterval = -time.Second
	require.ErrorContains(t, cfg.Validate(), "CheckpointInterval")
}

// TestCheckpointRoundSkipsAWorldUnchangedSinceItsCarriedMark: a world
// gets a bare checkpoint, then one carrying its mark; unchanged, none
// more; after a change, again one carrying the old mark and one the new.
func TestCheckpointRoundSkipsAWorldUnchangedSinceItsCarriedMark(t *testing.T) {
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "w")
	c.waitReplicated()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	carried := make(map[string]uint64)
	round := func() uint64 {
		before := s.raft.LastIndex()
		s.checkpointRound(ctx, carried)
		return uint64(len(slices.DeleteFunc(proposedSince(t, s, before), func(k fsm.CmdKind) bool { return k != fsm.CmdCheckpoint })))
	}
	require.Equal(t, []uint64{1, 1, 0, 0}, []uint64{round(), round(), round(), round()})
	_, _, err := s.Act(ctx, incr("w", "ann", 1, "e", "hp", 1))
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 1, 0}, []uint64{round(), round(), round()})
	require.Equal(t, 3.0, testutil.ToFloat64(s.metrics.checkpointsCompared), "every round but the first carried a mark")
}

// TestCheckpointRoundProposesNothingWhileAVoterCannotReadIt: the version
// gate holds checkpoints back while a voter reads an older log version.
func TestCheckpointRoundProposesNothingWhileAVoterCannotReadIt(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.Versions = fsm.Versions{Log: 4, Snapshot: 5, Wire: 1} })
	s := c.leader()
	mustCreateWorld(t, s, "w")
	c.waitReplicated()
	before := s.raft.LastIndex()
	s.checkpointRound(context.Background(), make(map[string]uint64))
	require.NotContains(t, proposedSince(t, s, before), fsm.CmdCheckpoint)
}
