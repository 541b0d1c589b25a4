package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func strictRules() fsm.Rules {
	return fsm.Rules{Strict: true, Fields: map[string]fsm.FieldRule{"hp": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}}}
}

// An "old" node is one whose binary does not read rules updates: n3 here
// runs with the versions of the binaries from before the gate, and the
// other followers have not reported yet (as after a rolling upgrade).
func TestVersionGateHoldsRulesUpdatesUntilEveryVoterReadsThem(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, func(cfg *Config) {
		if cfg.ID == "n3" {
			cfg.Versions = fsm.Baseline()
		}
	})
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "w", fsm.Rules{}))
	c.waitReplicated()

	last := l.raft.LastIndex()
	_, err := l.UpdateRules(ctxT(t), "w", strictRules(), 0)
	require.ErrorIs(t, err, ErrVersionGate, "followers that never reported count as old")
	require.NotContains(t, proposedSince(t, l, last), fsm.CmdUpdateRules, "nothing was proposed")

	var old *Store
	for _, s := range c.nodes {
		if s != l {
			require.NoError(t, l.Join(ctxT(t), s.Self()), "a member reports its versions by joining again")
		}
		if s.cfg.ID == "n3" {
			old = s
		}
	}
	if old != l {
		_, err = l.UpdateRules(ctxT(t), "w", strictRules(), 0)
		require.ErrorIs(t, err, ErrVersionGate, "n3 reads log version 1 only")
		require.ErrorContains(t, err, "voter n3 reads log 1, snapshot 3, wire 1")
		require.Equal(t, uint64(1), c.nodes[0].fsm.Worlds()[0].RulesVersion)

		// n3 is upgraded: its new binary reports what it reads. (Nothing
		// reads n3's config while it follows.)
		old.cfg.Versions = fsm.Versions{}
		require.NoError(t, l.Join(ctxT(t), old.Self()))
	}

	v, err := l.UpdateRules(ctxT(t), "w", strictRules(), 1)
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
	c.ensureSameHashes("w")
	for _, s := range c.nodes {
		w, err := s.fsm.World("w")
		require.NoError(t, err)
		require.Equal(t, uint64(2), w.RulesVersion, s.cfg.ID)
		for _, n := range s.Status().Nodes {
			require.Equal(t, fsm.Supported(), n.Versions, "%s's table: %s", s.cfg.ID, n.ID)
		}
	}

	// The reports are in the replicated table, so the next leader's gate
	// is open too.
	require.NoError(t, l.TransferLeadership(ctxT(t)))
	nl := c.waitLeader()
	v, err = nl.UpdateRules(ctxT(t), "w", strictRules(), 2)
	require.NoError(t, err)
	require.Equal(t, uint64(3), v)
	_, err = nl.UpdateRules(ctxT(t), "w", strictRules(), 2)
	require.ErrorIs(t, err, fsm.ErrRulesConflict)
	_, err = nl.UpdateRules(ctxT(t), "w", fsm.Rules{Schema: fsm.Schema{Teams: fsm.TeamRule{From: "claim"}}}, 0)
	require.ErrorIs(t, err, fsm.ErrMalformed)
}

func TestSingleNodeRecordsItsOwnVersionsAndUpdatesRules(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	require.Equal(t, fsm.Supported(), l.Status().Versions)
	require.Eventually(t, func() bool {
		n, ok := l.fsm.Node(l.cfg.ID)
		return ok && n.Versions == fsm.Supported() && n.RaftAddr == l.cfg.Advertise
	}, 10e9, 1e7, "the leader records its addresses and versions")
	require.NoError(t, l.CreateWorld(ctxT(t), "w", fsm.Rules{}))
	v, err := l.UpdateRules(ctxT(t), "w", strictRules(), 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
	_, err = l.UpdateRules(ctxT(t), "nope", strictRules(), 0)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	last := l.raft.LastIndex()
	_, err = l.UpdateRules(ctxT(t), "w", fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {}}}, 0)
	require.ErrorIs(t, err, fsm.ErrMalformed)
	require.NotContains(t, proposedSince(t, l, last), fsm.CmdUpdateRules, "invalid rules are refused before proposing")
}

// A group whose voters report elsewhere (shard.Manager's groups other than
// the membership group) learns what they read from Config.NodeVersions;
// what a voter reported to the leader itself still comes first.
func TestVersionGateAsksNodeVersionsForVotersThatDidNotReport(t *testing.T) {
	t.Parallel()
	known := map[string]fsm.Versions{"n2": fsm.Supported(), "n3": fsm.Baseline()}
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.NodeVersions = func(id string) (fsm.Versions, bool) { v, ok := known[id]; return v, ok }
	})
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "w", fsm.Rules{}))
	c.waitReplicated()
	for _, s := range c.nodes {
		s.reportMu.Lock()
		clear(s.reported) // as if nobody had reported to this leader
		s.reportMu.Unlock()
	}
	_, err := l.UpdateRules(ctxT(t), "w", strictRules(), 0)
	if l.cfg.ID != "n3" {
		require.ErrorIs(t, err, ErrVersionGate, "n3 reads the baseline, says NodeVersions")
	}
	known["n3"] = fsm.Supported()
	known["n1"] = fsm.Supported()
	_, err = l.UpdateRules(ctxT(t), "w", strictRules(), 0)
	require.NoError(t, err)
	n, ok := l.Node(l.cfg.ID)
	require.True(t, ok)
	require.Equal(t, l.Self().RaftAddr, n.RaftAddr)
}

// TestRulesUpdateIsAnEventOnceEveryVoterReadsLog12: while a voter reads
// log 11 the leader proposes the update without its event (it applies,
// the world's seq stays); once that voter reads 12, the update is the
// world's next event in the feed, with its rules version.
func TestRulesUpdateIsAnEventOnceEveryVoterReadsLog12(t *testing.T) {
	t.Parallel()
	log11 := fsm.Supported()
	log11.Log = 11
	c, mixed := newMixedCluster(t, log11)
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "w", fsm.Rules{}))
	c.waitReplicated()
	mixed.downgrade(c) // a follower reads log 11
	sub, err := l.Subscribe("w", 1)
	require.NoError(t, err)

	last := l.raft.LastIndex()
	v, err := l.UpdateRules(ctxT(t), "w", strictRules(), 1)
	require.NoError(t, err, "a log 11 voter still takes rules updates")
	require.Equal(t, uint64(2), v)
	kinds := proposedSince(t, l, last)
	require.Contains(t, kinds, fsm.CmdUpdateRules)
	require.NotContains(t, kinds, fsm.CmdUpdateRulesEvent)
	c.waitReplicated()
	c.ensureSameHashes("w")
	w, err := l.fsm.World("w")
	require.NoError(t, err)
	require.Equal(t, uint64(0), w.Seq, "no event")

	mixed.upgrade()
	last = l.raft.LastIndex()
	v, err = l.UpdateRules(ctxT(t), "w", strictRules(), 2)
	require.NoError(t, err)
	require.Equal(t, uint64(3), v)
	require.Contains(t, proposedSince(t, l, last), fsm.CmdUpdateRulesEvent)
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, uint64(1), evs[0].Seq)
	require.Empty(t, evs[0].Player)
	require.Equal(t, &fsm.Notice{Kind: fsm.NoticeRules, RulesVersion: 3}, evs[0].Notice)
	c.waitReplicated()
	c.ensureSameHashes("w")
}
