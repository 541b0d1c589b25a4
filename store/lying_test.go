//go:build gsd_lying_leader

package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// The lying leader (issue 12): run with
//
//	go test -tags gsd_lying_leader -run Lying -race ./store/

// capHP is a world rule every honest replica runs in Apply: hp at most 100.
type capHP struct{}

func (capHP) Validate(_ fsm.View, a *fsm.Action, _ int64) error {
	for _, o := range a.Ops {
		if o.Field == "hp" && o.Value.Compare(fsm.Int(100)) > 0 {
			return errors.New("hp above 100")
		}
	}
	return nil
}

// mismatchCluster starts 3 nodes with the hp rule and checkpoints on; it
// returns the cluster and the channel every node's mismatches go to.
func mismatchCluster(t *testing.T, tweaks ...func(*Config)) (*cluster, chan CheckpointMismatch) {
	found := make(chan CheckpointMismatch, 64)
	c := newCluster(t, 3, func(cfg *Config) {
		withCheckpoints(cfg)
		// Who leads is part of what the tests assert: no elections from a
		// loaded machine's slow heartbeats (-race on two cores).
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
		cfg.FSM.Validators = []fsm.Validator{capHP{}}
		cfg.OnCheckpointMismatch = func(m CheckpointMismatch) {
			select {
			case found <- m:
			default: // the test has what it needs; Apply must not block
			}
		}
		for _, tw := range tweaks {
			tw(cfg)
		}
	})
	return c, found
}

func setHP(seq uint64, hp int64) *fsm.Action {
	return &fsm.Action{World: "w", Player: "mallory", Seq: seq,
		Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "mallory", Field: "hp", Value: fsm.Int(hp)}}}
}

// TestLyingLeaderIsNamedByItsFollowersAndStepsDown: a leader built to skip
// validation commits a cheat its followers reject. Its client is told
// "applied" (the lying leader's own FSM applied it); both followers find
// its next checkpoint differs from their state and name it; their reports
// make it a majority against the leader, which hands over leadership.
func TestLyingLeaderIsNamedByItsFollowersAndStepsDown(t *testing.T) {
	c, found := mismatchCluster(t)
	liar := c.leader()
	mustCreateWorld(t, liar, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// An honest cap first: every replica rejects it, the liar too.
	ev, _, err := liar.Act(ctx, setHP(1, 500))
	require.NoError(t, err)
	require.Equal(t, fsm.StatusRejected, ev.Status)

	liar.fsm.Lie(true)
	ev, _, err = liar.Act(ctx, setHP(2, 999_999))
	require.NoError(t, err)
	require.Equal(t, fsm.StatusApplied, ev.Status, "what the lying leader's client is told")
	c.waitReplicated()
	for _, s := range c.nodes {
		got, ok := s.Event("w", ev.Seq)
		require.True(t, ok)
		if s == liar {
			require.Equal(t, fsm.StatusApplied, got.Status)
			continue
		}
		require.Equal(t, fsm.StatusRejected, got.Status, "follower %s computes the rejection", s.cfg.ID)
	}

	reporters := map[string]CheckpointMismatch{}
	for len(reporters) < 2 {
		select {
		case m := <-found:
			require.Equal(t, liar.cfg.ID, m.Leader)
			require.NotEqual(t, m.LeaderHash, m.Local)
			reporters[m.Node] = m
		case <-ctx.Done():
			t.Fatalf("followers did not name the liar: %v", reporters)
		}
	}
	require.NotContains(t, reporters, liar.cfg.ID, "the liar agrees with itself")
	require.Zero(t, testutil.ToFloat64(liar.metrics.checkpointMismatches))

	// The daemon forwards followers' reports to the leader.
	down := false
	for _, m := range reporters {
		d, err := liar.ReportMismatch(m)
		require.NoError(t, err)
		down = down || d
	}
	require.True(t, down, "a majority of the voters named the leader")
	require.Eventually(t, func() bool {
		l := c.waitLeader()
		return l != liar
	}, 10*time.Second, 10*time.Millisecond)
	for _, s := range c.nodes {
		if s != liar {
			require.Positive(t, testutil.ToFloat64(s.metrics.checkpointMismatches), "node %s", s.cfg.ID)
		}
	}
}

// TestCorruptedReplicaIsNamedByItsOwnMismatch: a follower whose state a
// failing disk changed behind the log finds the leader's next checkpoint
// differs; the others do not, so the odd replica is the one reporting, and
// one report is no majority: the leader stays.
func TestCorruptedReplicaIsNamedByItsOwnMismatch(t *testing.T) {
	c, found := mismatchCluster(t)
	l := c.leader()
	mustCreateWorld(t, l, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := l.Act(ctx, setHP(1, 50))
	require.NoError(t, err)
	c.waitReplicated()
	var odd *Store
	for _, s := range c.nodes {
		if s != l {
			odd = s
			break
		}
	}
	require.True(t, odd.fsm.Corrupt("w", "mallory", "hp", fsm.Int(99)))
	// Another entity changes: the leader checkpoints the world again.
	_, _, err = l.Act(ctx, incr("w", "ann", 1, "ann", "score", 1))
	require.NoError(t, err)
	var m CheckpointMismatch
	select {
	case m = <-found:
	case <-ctx.Done():
		t.Fatal("the corrupted replica was not named")
	}
	require.Equal(t, odd.cfg.ID, m.Node)
	require.Equal(t, l.cfg.ID, m.Leader)
	down, err := l.ReportMismatch(m)
	require.NoError(t, err)
	require.False(t, down)
	require.True(t, l.IsLeader())
	for _, s := range c.nodes {
		if s != odd {
			require.Zero(t, testutil.ToFloat64(s.metrics.checkpointMismatches), "node %s", s.cfg.ID)
		}
	}
}
