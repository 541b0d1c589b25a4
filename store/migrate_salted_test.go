package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// TestASaltedWorldsMoveWaitsForEveryVoterToReadLogVersion15: while a
// voter reads log 14 the leader proposes neither the salted world's fence
// (CmdMoveWorldSalted) nor the import of an export of format 2 (an
// unsalted world's too), and ImportGate says so before any fence; an
// unsalted world's fence and import of format 1 are not held back. Once every voter reads 15 the
// salted world is fenced and its export imports, on every replica alike.
func TestASaltedWorldsMoveWaitsForEveryVoterToReadLogVersion15(t *testing.T) {
	t.Parallel()
	c, mixed, l := saltedMixedCluster(t, 14, 10)
	mustCreateWorld(t, l, "plain")
	_, _, err := l.Act(ctxT(t), incr("w", "alice", 1, "e", "hp", 1))
	require.NoError(t, err)
	c.waitReplicated()
	mixed.downgrade(c) // a follower reads log 14

	salted, _, err := l.ExportWorld("w", fsm.ExportFormat)
	require.NoError(t, err)
	plain2, _, err := l.ExportWorld("plain", fsm.ExportFormat)
	require.NoError(t, err)
	require.ErrorIs(t, l.ImportGate(fsm.ExportFormat), ErrVersionGate)
	require.NoError(t, l.ImportGate(1))
	last := l.raft.LastIndex()
	_, err = l.MoveWorld(ctxT(t), "w", 2, 0)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "needs log 15")
	_, err = l.ImportWorld(ctxT(t), "v", salted)
	require.ErrorIs(t, err, ErrVersionGate, "checked before the blob's world")
	_, err = l.ImportWorld(ctxT(t), "v", plain2)
	require.ErrorIs(t, err, ErrVersionGate, "an unsalted world's export of format 2 alike")
	require.Empty(t, proposedSince(t, l, last), "nothing was proposed")
	_, _, err = l.Act(ctxT(t), incr("w", "alice", 2, "e", "hp", 1))
	require.NoError(t, err, "the world takes writes")
	_, err = l.MoveWorld(ctxT(t), "plain", 2, 0)
	require.NoError(t, err, "an unsalted world's fence as before")
	require.Contains(t, proposedSince(t, l, last), fsm.CmdMoveWorld)

	mixed.upgrade()
	require.NoError(t, l.ImportGate(fsm.ExportFormat))
	last = l.raft.LastIndex()
	f, err := l.MoveWorld(ctxT(t), "w", 2, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), f.Seq)
	require.Contains(t, proposedSince(t, l, last), fsm.CmdMoveWorldSalted)
	blob, seq, err := l.ExportWorld("w", fsm.ExportFormat)
	require.NoError(t, err)
	require.Equal(t, f.Seq, seq)
	c.waitReplicated()
	for _, s := range c.nodes {
		b, _, err := s.ExportWorld("w", fsm.ExportFormat)
		require.NoError(t, err)
		require.Equal(t, blob, b, "every replica that applied the fence exports the same bytes")
	}
}

// TestARetriedSaltedFenceNeedsNoLog15VoterOnceApplied: a move retried
// after its fence (a log 14 voter joined the world's group since) gets
// the fence it had without proposing it again, so its export goes on; a
// fence towards another shard is refused world_moved as the fsm would.
func TestARetriedSaltedFenceNeedsNoLog15VoterOnceApplied(t *testing.T) {
	t.Parallel()
	c, mixed, l := saltedMixedCluster(t, 14, 10)
	_, _, err := l.Act(ctxT(t), incr("w", "alice", 1, "e", "hp", 1))
	require.NoError(t, err)
	f, err := l.MoveWorld(ctxT(t), "w", 2, 0)
	require.NoError(t, err)
	c.waitReplicated()
	mixed.downgrade(c) // a follower reads log 14 from now on
	require.ErrorIs(t, l.ImportGate(fsm.ExportFormat), ErrVersionGate, "the group's gate refuses log 15 commands now")

	last := l.raft.LastIndex()
	info, err := l.World("w")
	require.NoError(t, err)
	again, err := l.MoveWorld(ctxT(t), "w", 2, info.Incarnation)
	require.NoError(t, err, "the retry is not held back by the gate")
	require.Equal(t, f, again, "the first fence")
	_, err = l.MoveWorld(ctxT(t), "w", 3, 0)
	var moved *fsm.MovedError
	require.ErrorAs(t, err, &moved)
	require.Equal(t, f, moved.Fence, "fenced towards shard 2")
	require.Empty(t, proposedSince(t, l, last), "nothing was proposed")
	blob, seq, err := l.ExportWorld("w", fsm.ExportFormat)
	require.NoError(t, err)
	require.Equal(t, f.Seq, seq)
	require.Equal(t, fsm.ExportFormat, (&fsm.WorldImport{World: "w", Data: blob}).Format())

	_, err = l.MoveWorld(ctxT(t), "w", 2, info.Incarnation+1)
	require.ErrorIs(t, err, ErrVersionGate, "another incarnation's fence is proposed, and gated, as before")
}
