package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// TestAMoveBackWaitsForEveryMemberToReadLogVersion17 (issue 14): a group
// that holds a world's fenced copy imports the world's export over it
// with fsm.CmdImportWorldBack, which a member reading log 16 cannot
// decode: while one does, MoveBackGate and the import answer
// ErrVersionGate and nothing is proposed (the copy stays fenced). Once
// every member reads 17 the import replaces the copy on every replica
// alike, the feed goes on at the export's seq+1, and the archive holds
// every event 1..N+1 once
// once the other home's are copied.
func TestAMoveBackWaitsForEveryMemberToReadLogVersion17(t *testing.T) {
	t.Parallel()
	old := fsm.Supported()
	old.Log = 16
	c, mixed := newMixedCluster(t, old)
	l := c.leader()
	fence, a, blob, seq := awayAndBack(t, l)
	require.Equal(t, uint64(5), seq)
	sub, err := a.Subscribe("w", fence.Seq+1)
	require.NoError(t, err)
	away, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Len(t, away, 2, "A's events 4 and 5")
	c.waitReplicated()

	mixed.downgrade(c)
	require.ErrorIs(t, l.MoveBackGate(), ErrVersionGate)
	last := l.raft.LastIndex()
	_, err = l.ImportWorld(ctxT(t), "w", blob)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "needs log 17")
	require.Empty(t, proposedSince(t, l, last), "nothing was proposed")
	got, err := l.World("w")
	require.NoError(t, err)
	require.Equal(t, &fence, got.Moved, "still the fenced copy")

	mixed.upgrade()
	require.NoError(t, l.MoveBackGate())
	last = l.raft.LastIndex()
	info, err := l.ImportWorld(ctxT(t), "w", blob)
	require.NoError(t, err)
	require.Equal(t, []fsm.CmdKind{fsm.CmdImportWorldBack}, proposedSince(t, l, last))
	require.Nil(t, info.Moved)
	require.Equal(t, seq, info.Seq)
	_, err = l.ImportWorld(ctxT(t), "w", blob)
	require.ErrorIs(t, err, fsm.ErrWorldExists, "a retry: the live copy is never replaced")

	// The feed starts over at 6 (not after the earlier stay's 3): a
	// subscription from A's events answers archive_gap until they are
	// copied, rather than waiting for events that never come here.
	_, err = l.Subscribe("w", 4)
	require.ErrorIs(t, err, ErrArchiveGap)
	next, err := l.Subscribe("w", seq+1)
	require.NoError(t, err)

	ev, _, err := l.Act(ctxT(t), incr("w", "ann", 4, "e", "c", 1))
	require.NoError(t, err)
	require.Equal(t, seq+1, ev.Seq)
	evs, err := next.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, seq+1, evs[0].Seq)
	c.waitReplicated()
	c.ensureSameHashes("w")
	for _, s := range c.nodes {
		// The archive holds 1..3 from the earlier stay and 6 on; the
		// copy from A fills 4..5 (shard.CopyMovedArchive).
		holes, err := s.ArchiveHoles("w", seq)
		require.NoError(t, err)
		require.Equal(t, []Range{{World: "w", From: 4, To: 5}}, holes)
		n, err := s.FillMoved("w", seq, away)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		sub, err := s.Subscribe("w", 1)
		require.NoError(t, err)
		var seqs []uint64
		for len(seqs) < int(seq+1) {
			evs, err := sub.Next(ctxT(t))
			require.NoError(t, err)
			for _, e := range evs {
				seqs = append(seqs, e.Seq)
			}
		}
		require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, seqs, "node %s: every event once, in order", s.cfg.ID)
	}
}

// awayAndBack creates world "w" on l with three events, moves it to
// group 2 (fence), which a new one-node group a imports, takes two more
// events there (seq 5) and moves back to group 1: it returns the fence
// at l, the other home, and a's export of the world (blob, at seq).
func awayAndBack(t *testing.T, l *Store) (fence fsm.Fence, a *Store, blob []byte, seq uint64) {
	t.Helper()
	mustCreateWorld(t, l, "w")
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := l.Act(ctxT(t), incr("w", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	fence, err := l.MoveWorld(ctxT(t), "w", 2, 0)
	require.NoError(t, err)
	out, _, err := l.ExportWorld("w", fsm.ExportFormat)
	require.NoError(t, err)
	a = newCluster(t, 1, nil).leader()
	require.NoError(t, a.Join(ctxT(t), a.Self()))
	_, err = a.ImportWorld(ctxT(t), "w", out)
	require.NoError(t, err)
	for seq := uint64(4); seq <= 5; seq++ {
		_, _, err := a.Act(ctxT(t), incr("w", "bob", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	_, err = a.MoveWorld(ctxT(t), "w", 1, 0)
	require.NoError(t, err)
	blob, seq, err = a.ExportWorld("w", fsm.ExportFormat)
	require.NoError(t, err)
	return fence, a, blob, seq
}
