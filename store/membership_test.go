package store

import (
	"context"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func indexOf(c *cluster, s *Store) int {
	for i, n := range c.nodes {
		if n == s {
			return i
		}
	}
	return -1
}

func TestLaggingFollowerInstallsSnapshotAndReportsArchiveGap(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, func(cfg *Config) { cfg.TrailingLogs = 4; cfg.SnapshotThreshold = 16 })
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	c.waitReplicated()
	lag := (indexOf(c, l) + 1) % 3
	c.crash(lag)
	for seq := uint64(1); seq <= 60; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	_, err := l.Snapshot(ctxT(t))
	require.NoError(t, err)
	for seq := uint64(61); seq <= 70; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	s := c.restart(lag)
	c.ensureSameHashes("arena")

	// The restarted follower never saw the early events: a gap, said clearly.
	_, err = s.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap)
	// The leader has them all.
	sub, err := l.Subscribe("arena", 1)
	require.NoError(t, err)
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, uint64(1), evs[0].Seq)
	// Stale reads on the follower reflect the replicated state.
	v, err := s.Entity(ctxT(t), "arena", "e1", Stale)
	require.NoError(t, err)
	require.Equal(t, int64(70), v.Fields[0].Value.Int)
}

func TestRemoveAndTransferLeadership(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	st := l.Status()
	require.Equal(t, "leader", st.State)
	require.Len(t, st.Servers, 3)
	require.Len(t, st.Nodes, 3)

	require.NoError(t, l.TransferLeadership(ctxT(t)))
	nl := c.waitLeader()
	require.NotSame(t, l, nl)
	require.ErrorIs(t, l.TransferLeadership(ctxT(t)), ErrNotLeader)
	require.ErrorIs(t, l.Join(ctxT(t), fsm.NodeInfo{ID: "x", RaftAddr: "127.0.0.1:1"}), ErrNotLeader)
	require.ErrorIs(t, l.Remove(ctxT(t), "x"), ErrNotLeader)

	victim := l.cfg.ID
	require.NoError(t, nl.Remove(ctxT(t), victim))
	require.Eventually(t, func() bool { return len(nl.Status().Servers) == 2 && len(nl.Status().Nodes) == 2 }, 10e9, 1e7)
	// Joining twice with the same addresses is a no-op.
	other := c.nodes[(indexOf(c, nl)+1)%3]
	if other == l {
		other = c.nodes[(indexOf(c, nl)+2)%3]
	}
	require.NoError(t, nl.Join(ctxT(t), fsm.NodeInfo{ID: other.cfg.ID, RaftAddr: other.cfg.RaftAddr, HTTPAddr: other.cfg.HTTPAddr}))
	require.ErrorIs(t, nl.Join(ctxT(t), fsm.NodeInfo{ID: ""}), fsm.ErrMalformed)
}

func TestCreateWorldTwiceAndBadInputAreRefusedBeforeProposing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	require.ErrorIs(t, s.CreateWorld(ctxT(t), "arena", fsm.Rules{}), fsm.ErrWorldExists)
	bad := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindString, Policy: fsm.PolicyCounter}}}
	require.ErrorIs(t, s.CreateWorld(ctxT(t), "w2", bad), fsm.ErrMalformed)
	_, _, err := s.Act(ctxT(t), incr("nope", "p1", 1, "e1", "score", 1))
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, _, err = s.Act(ctxT(t), &fsm.Action{World: "arena", Player: "p1", Seq: 1})
	require.ErrorIs(t, err, fsm.ErrMalformed)
	_, err = s.Subscribe("nope", 1)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, ok := s.Event("arena", 1)
	require.False(t, ok)
	ws := s.Worlds()
	require.Len(t, ws, 1)
	require.NotZero(t, ws[0].Incarnation, "the creation's log index")
	require.Equal(t, []fsm.WorldInfo{{ID: "arena", Origin: "local", Rules: fsm.Rules{}, RulesVersion: 1, Incarnation: ws[0].Incarnation}}, ws)
	require.True(t, s.Ready())
}

func TestClosedStoreRefusesWork(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	sub, err := s.Subscribe("arena", 0)
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	require.NoError(t, s.Close(context.Background()), "close twice")
	_, _, err = s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 1))
	require.Error(t, err)
	_, err = sub.Next(ctxT(t))
	require.ErrorIs(t, err, ErrClosed)
}

func TestCloseWakesWaitingSubscribers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	sub, err := s.Subscribe("arena", 0)
	require.NoError(t, err)
	errc := make(chan error, 1)
	got := make(chan uint64, 1)
	go func() {
		for { // no deadline: only Close can end this loop
			evs, err := sub.Next(context.Background())
			if err != nil {
				errc <- err
				return
			}
			got <- evs[0].Seq
		}
	}()
	_, _, err = s.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(1), <-got) // the subscriber now waits for seq 2
	require.NoError(t, s.Close(context.Background()))
	require.ErrorIs(t, <-errc, ErrClosed)
}

func TestSnapshotWithNothingNewReportsTheLatestIndex(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	waitRegistered(t, s) // else its node-table writes may land between the snapshots
	mustCreateWorld(t, s, "arena")
	first, err := s.Snapshot(ctxT(t))
	require.NoError(t, err)
	again, err := s.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, first, again)
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = nil
	cfg.TailSize = 0
	cfg.ApplyTimeout = 0
	cfg.Batch.MaxActions = 0
	cfg.FSM.Window = 10
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"ID", "Dir", "RaftAddr", "TailSize", "ApplyTimeout", "Logger", "batch", "Window"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = New(cfg, nil)
	require.Error(t, err)
	_, err = ParseConsistency("eventual")
	require.ErrorIs(t, err, fsm.ErrMalformed)
	c, err := ParseConsistency("stale")
	require.NoError(t, err)
	require.Equal(t, Stale, c)
}
