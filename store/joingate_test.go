package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// log13 is what a binary from before the kept digests reads.
func log13() fsm.Versions {
	v := fsm.Supported()
	v.Log, v.Snapshot = 13, 9
	return v
}

// startNode starts a store that waits to be added, reading v.
func startNode(t *testing.T, id string, v fsm.Versions) (*Store, Config) {
	t.Helper()
	cfg := testConfig(t, id, filepath.Join(t.TempDir(), id))
	cfg.Versions = v
	s, err := New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, cfg
}

func memberIDs(t *testing.T, s *Store) map[string]raft.ServerSuffrage {
	t.Helper()
	servers, err := s.Members()
	require.NoError(t, err)
	out := map[string]raft.ServerSuffrage{}
	for _, srv := range servers {
		out[string(srv.ID)] = srv.Suffrage
	}
	return out
}

// TestAnErasureWaitsForEveryNonvoterToReadLogVersion14: a non-voter
// applies the log as a voter does, so while one reads log 13 the gate
// keeps CmdEraseSaltKeep out of the log, and lets it in once the
// non-voter is upgraded or removed.
func TestAnErasureWaitsForEveryNonvoterToReadLogVersion14(t *testing.T) {
	t.Parallel()
	m := &mixedVersions{oldV: log13()}
	c := newCluster(t, 1, func(cfg *Config) { cfg.NodeVersions = m.nodeVersions })
	l := c.leader()
	require.NoError(t, l.CreateSaltedWorld(ctxT(t), "w", fsm.Rules{}))
	for _, p := range []string{"alice", "bob"} {
		_, _, err := l.Act(ctxT(t), incr("w", p, 1, "e", "hp", 1))
		require.NoError(t, err)
	}
	n2, cfg := startNode(t, "n2", fsm.Supported())
	require.NoError(t, l.AddNonvoter(ctxT(t), "n2", cfg.RaftAddr))
	require.Equal(t, raft.Nonvoter, memberIDs(t, l)["n2"])
	require.Eventually(t, func() bool { return n2.CommitIndex() >= l.LastIndex() }, 10e9, 5e6, "n2 catches up")

	m.mu.Lock()
	m.old = "n2" // the non-voter now runs a log 13 binary
	m.mu.Unlock()
	keep := &fsm.Command{Kind: fsm.CmdEraseSaltKeep, Salt: &fsm.SaltCmd{World: "w", Player: "alice"}}
	err := l.gate(keep)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "non-voter n2 reads log 13")
	kinds := erase(t, l, "alice")
	require.Contains(t, kinds, fsm.CmdEraseSalt, "the erasure as log 13 wrote it")
	require.NotContains(t, kinds, fsm.CmdEraseSaltKeep)

	m.upgrade()
	require.NoError(t, l.gate(keep), "upgraded")
	m.mu.Lock()
	m.old = "n2"
	m.mu.Unlock()
	require.ErrorIs(t, l.gate(keep), ErrVersionGate)
	require.NoError(t, l.RemoveMember(ctxT(t), "n2"))
	require.Contains(t, erase(t, l, "bob"), fsm.CmdEraseSaltKeep, "removed: the gate opens")
}

// erase erases player's salt in world w and returns the kinds it proposed.
func erase(t *testing.T, l *Store, player string) []fsm.CmdKind {
	t.Helper()
	last := l.raft.LastIndex()
	require.NoError(t, l.EraseSalt(ctxT(t), "w", player))
	return proposedSince(t, l, last)
}

// TestJoinRefusesANodeBelowTheGroupsFloor: a joiner gets the whole log
// and snapshot, so Join refuses one that does not read what every
// current member reads, and writes nothing; a joiner at the floor or
// above is added.
func TestJoinRefusesANodeBelowTheGroupsFloor(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, func(cfg *Config) {
		if cfg.ID == "n2" {
			cfg.Versions = log13()
		}
	})
	l := c.leader()
	for _, s := range c.nodes {
		require.NoError(t, l.Join(ctxT(t), s.Self())) // reports: the floor is log 13
	}
	c.waitReplicated()
	n3, cfg3 := startNode(t, "n3", log13())
	n := fsm.NodeInfo{ID: "n3", RaftAddr: cfg3.RaftAddr, HTTPAddr: cfg3.HTTPAddr}

	last := l.raft.LastIndex()
	for _, v := range []fsm.Versions{{}, fsm.Baseline(), {Log: 12, Snapshot: 9, Wire: 1}, {Log: 14, Snapshot: 8, Wire: 1}} {
		n.Versions = v
		err := l.Join(ctxT(t), n)
		require.ErrorIs(t, err, ErrVersionGate, "%s", v)
		require.ErrorContains(t, err, "node n3 reads")
		require.ErrorContains(t, err, "members all read log 13, snapshot 9, wire 1")
	}
	require.ErrorContains(t, l.Join(ctxT(t), fsm.NodeInfo{ID: "n3", RaftAddr: cfg3.RaftAddr}), "node n3 reads log 1, snapshot 3, wire 1",
		"no versions: the baseline")
	require.Len(t, memberIDs(t, l), 2, "the configuration is unchanged")
	_, inTable := l.Node("n3")
	require.False(t, inTable, "the node table is unchanged")
	require.NotContains(t, proposedSince(t, l, last), fsm.CmdPutNode, "nothing was proposed")

	n.Versions = log13()
	require.NoError(t, l.Join(ctxT(t), n), "at the floor")
	require.Equal(t, raft.Voter, memberIDs(t, l)["n3"])
	require.Eventually(t, func() bool { return n3.CommitIndex() >= l.LastIndex() }, 10e9, 5e6, "n3 catches up")

	require.NoError(t, l.Remove(ctxT(t), "n3"))
	_, cfg4 := startNode(t, "n4", fsm.Supported())
	err := l.Join(ctxT(t), fsm.NodeInfo{ID: "n4", RaftAddr: cfg4.RaftAddr, Versions: fsm.Supported()})
	require.NoError(t, err, "above the floor")
	require.Equal(t, raft.Voter, memberIDs(t, l)["n4"])
}

// TestJoinOfANewerGroupRefusesAnOlderNode: in a group whose members all
// read this binary's versions, an older node, or one that reports
// nothing, is refused with a message naming what it and the group read.
func TestJoinOfANewerGroupRefusesAnOlderNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	_, cfg := startNode(t, "n2", log13())
	n := fsm.NodeInfo{ID: "n2", RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr, Versions: log13()}
	err := l.Join(ctxT(t), n)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "node n2 reads log 13, snapshot 9, wire 1, the group's members all read "+fsm.Supported().String())
	require.Len(t, memberIDs(t, l), 1)

	n.Versions = fsm.Supported()
	require.NoError(t, l.Join(ctxT(t), n))
	require.Len(t, memberIDs(t, l), 2)
	// The same id at another address is a new node, checked against the
	// other members only.
	n.RaftAddr, n.Versions = freePort(t), log13()
	require.ErrorIs(t, l.Join(ctxT(t), n), ErrVersionGate)
	require.Equal(t, cfg.RaftAddr, addrOf(t, l, "n2"), "the configuration is unchanged")
}

func addrOf(t *testing.T, s *Store, id string) string {
	t.Helper()
	servers, err := s.Members()
	require.NoError(t, err)
	for _, srv := range servers {
		if string(srv.ID) == id {
			return string(srv.Address)
		}
	}
	return ""
}

// TestAddNonvoterRefusesAJoinerBelowTheFloor: a shard's joiner reports to
// the membership group, whose table the leader reads through
// Config.NodeVersions; an older joiner, or one it knows nothing of, is
// neither added nor promoted. A member already in the configuration is
// not checked again: it has the log, and the gate counts it.
func TestAddNonvoterRefusesAJoinerBelowTheFloor(t *testing.T) {
	t.Parallel()
	m := &mixedVersions{oldV: log13(), old: "n2"}
	c := newCluster(t, 1, func(cfg *Config) { cfg.NodeVersions = m.nodeVersions })
	l := c.leader()
	_, cfg := startNode(t, "n2", log13())
	err := l.AddNonvoter(ctxT(t), "n2", cfg.RaftAddr)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "node n2 reads log 13")
	require.ErrorIs(t, l.PromoteVoter(ctxT(t), "n2", cfg.RaftAddr), ErrVersionGate)
	require.Len(t, memberIDs(t, l), 1, "the configuration is unchanged")

	unknown := newCluster(t, 1, func(cfg *Config) {
		cfg.NodeVersions = func(string) (fsm.Versions, bool) { return fsm.Versions{}, false }
	}).leader()
	require.ErrorContains(t, unknown.AddNonvoter(ctxT(t), "n9", freePort(t)), "node n9 reads log 1, snapshot 3, wire 1",
		"unknown: the baseline")

	m.upgrade()
	require.NoError(t, l.AddNonvoter(ctxT(t), "n2", cfg.RaftAddr))
	m.mu.Lock()
	m.old = "n2"
	m.mu.Unlock()
	require.NoError(t, l.PromoteVoter(ctxT(t), "n2", cfg.RaftAddr), "a member already")
	require.Equal(t, raft.Voter, memberIDs(t, l)["n2"])
}

// TestAJoinerIsJudgedByTheMembershipGroupsVersionsOverAStaleEntry: a
// shard's own node table learns a node's versions only while the node
// leads it, so after an upgrade it can hold the node's old ones; the
// membership group's table (Config.NodeVersions), which every node
// updates each time it starts, decides.
func TestAJoinerIsJudgedByTheMembershipGroupsVersionsOverAStaleEntry(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.NodeVersions = func(id string) (fsm.Versions, bool) { return fsm.Supported(), id == "n2" }
	})
	l := c.leader()
	_, err := l.propose(ctxT(t), fsm.Command{Kind: fsm.CmdNodeVersions, Node: &fsm.NodeInfo{ID: "n2", Versions: log13()}})
	require.NoError(t, err)
	n, ok := l.Node("n2")
	require.True(t, ok)
	require.Equal(t, log13(), n.Versions, "the group's own table holds n2's old versions")
	_, cfg := startNode(t, "n2", fsm.Supported())
	require.NoError(t, l.AddNonvoter(ctxT(t), "n2", cfg.RaftAddr), "n2 now runs this binary")
	require.Equal(t, raft.Nonvoter, memberIDs(t, l)["n2"])
}
