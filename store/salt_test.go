package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestTheLeaderDrawsAPlayersSaltBeforeItsFirstActionInASaltedWorld: one
// salt per player, random, replicated; erased, the next action draws a
// new one; the erasure is refused for a player without a salt.
func TestTheLeaderDrawsAPlayersSaltBeforeItsFirstActionInASaltedWorld(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.NodeVersions = func(string) (fsm.Versions, bool) { return fsm.Supported(), true }
	})
	l := c.leader()
	require.NoError(t, l.CreateSaltedWorld(ctxT(t), "w", fsm.Rules{}))
	require.ErrorIs(t, l.CreateSaltedWorld(ctxT(t), "w", fsm.Rules{}), fsm.ErrWorldExists)
	require.ErrorIs(t, l.CreateSaltedWorld(ctxT(t), "x", fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {}}}), fsm.ErrMalformed)
	mustCreateWorld(t, l, "plain")

	for seq := uint64(1); seq <= 2; seq++ {
		ev, _, err := l.Act(ctxT(t), incr("w", "alice", seq, "e", "hp", 1))
		require.NoError(t, err)
		require.NotNil(t, ev.Salted, "the event names its salted player")
	}
	salts, _, err := l.Salts("w")
	require.NoError(t, err)
	require.Len(t, salts, 1, "one salt, drawn once")
	require.NotEqual(t, [fsm.SaltLen]byte{}, salts[0].Key)
	c.waitReplicated()
	for _, s := range c.nodes {
		got, _, err := s.Salts("w")
		require.NoError(t, err)
		require.Equal(t, salts, got, "every replica holds the leader's salt")
	}

	require.NoError(t, l.EraseSalt(ctxT(t), "w", "alice"))
	_, dup, err := l.Act(ctxT(t), incr("w", "alice", 2, "e", "hp", 1))
	require.NoError(t, err)
	require.True(t, dup, "a retry of an action from before the erasure")
	none, _, err := l.Salts("w")
	require.NoError(t, err)
	require.Empty(t, none, "the retry drew no salt: the erased player is not back in the table")
	require.ErrorIs(t, l.EraseSalt(ctxT(t), "w", "alice"), fsm.ErrNotFound)
	require.ErrorIs(t, l.EraseSalt(ctxT(t), "plain", "alice"), fsm.ErrNotSupported)
	_, _, err = l.Act(ctxT(t), incr("w", "alice", 3, "e", "hp", 1))
	require.NoError(t, err)
	again, _, err := l.Salts("w")
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.NotEqual(t, salts[0].Key, again[0].Key, "a new salt")
	require.Equal(t, uint64(3), again[0].Since)

	last := l.raft.LastIndex()
	ev, _, err := l.Act(ctxT(t), incr("plain", "alice", 1, "e", "hp", 1))
	require.NoError(t, err)
	require.Nil(t, ev.Salted)
	require.NotContains(t, proposedSince(t, l, last), fsm.CmdSalt, "a world that is not salted draws no salt")
	c.waitReplicated()
	c.ensureSameHashes("w")
}

// TestASaltedWorldWaitsForEveryVoterToReadLog13: the gate refuses the
// create while a voter reads log 12.
func TestASaltedWorldWaitsForEveryVoterToReadLog13(t *testing.T) {
	t.Parallel()
	log12 := fsm.Supported()
	log12.Log = 12
	c := newCluster(t, 1, func(cfg *Config) { cfg.Versions = log12 })
	l := c.leader()
	require.ErrorIs(t, l.CreateSaltedWorld(ctxT(t), "w", fsm.Rules{}), ErrVersionGate)
	require.ErrorIs(t, l.EraseSalt(ctxT(t), "w", "p"), ErrVersionGate)
}

// TestAnErasureWaitsForEveryVoterToReadLogVersion14ToKeepItsDigest: while
// a voter reads log 13 an erasure keeps nothing (CmdEraseSalt, as log 13
// wrote it); once every voter reads 14 it keeps the erased salt's digest
// and seqs (CmdEraseSaltKeep), the same on every replica.
func TestAnErasureWaitsForEveryVoterToReadLogVersion14ToKeepItsDigest(t *testing.T) {
	t.Parallel()
	c, mixed, l := saltedMixedCluster(t, 13, 9)
	c.waitReplicated()
	mixed.downgrade(c) // a follower reads log 13
	for _, p := range []string{"alice", "bob"} {
		_, _, err := l.Act(ctxT(t), incr("w", p, 1, "e", "hp", 1))
		require.NoError(t, err)
	}
	before, err := l.SaltTable("w")
	require.NoError(t, err)
	require.Len(t, before.Salts, 2)

	last := l.raft.LastIndex()
	require.NoError(t, l.EraseSalt(ctxT(t), "w", "alice"), "a log 13 voter still takes erasures")
	kinds := proposedSince(t, l, last)
	require.Contains(t, kinds, fsm.CmdEraseSalt)
	require.NotContains(t, kinds, fsm.CmdEraseSaltKeep)
	c.waitReplicated()
	for _, s := range c.nodes {
		tab, err := s.SaltTable("w")
		require.NoError(t, err)
		require.Empty(t, tab.Erased, "no digest kept before every voter reads log 14")
		require.Len(t, tab.Salts, 1)
	}

	mixed.upgrade()
	last = l.raft.LastIndex()
	require.NoError(t, l.EraseSalt(ctxT(t), "w", "bob"))
	require.Contains(t, proposedSince(t, l, last), fsm.CmdEraseSaltKeep)
	bob := before.Salts[1]
	require.Equal(t, "bob", bob.Player)
	want := []fsm.ErasedSalt{{Digest: wire.SaltedID(bob.Key[:], "bob"), Since: bob.Since, Until: 2}}
	c.waitReplicated()
	for _, s := range c.nodes {
		tab, err := s.SaltTable("w")
		require.NoError(t, err)
		require.Equal(t, want, tab.Erased, "every replica keeps bob's digest, from his salt's since to the world's last seq")
		require.Empty(t, tab.Salts)
	}
	c.ensureSameHashes("w")
}
