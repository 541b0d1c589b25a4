package store

import (
	"context"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// TestWorldMovesToAnotherGroupAndItsFeedGoesOn: the old group refuses
// writes after the fence (every replica exports the same world), the new
// one continues the seq, serves it from its feed, and keeps the archived
// events across a restart from a snapshot although the world's
// incarnation (the old group's log index) is beyond the new group's log.
func TestWorldMovesToAnotherGroupAndItsFeedGoesOn(t *testing.T) {
	t.Parallel()
	src := newCluster(t, 3, nil)
	l := src.leader()
	mustCreateWorld(t, l, "filler")
	for seq := uint64(1); seq <= 20; seq++ { // push the arena's incarnation up
		_, _, err := l.Act(ctxT(t), incr("filler", "p", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	_, err := l.MoveWorld(ctxT(t), "arena", 2, 0)
	require.ErrorIs(t, err, ErrVersionGate, "members that never reported read log 1")
	for _, s := range src.nodes {
		require.NoError(t, l.Join(ctxT(t), s.Self()))
	}
	_, err = l.MoveWorld(ctxT(t), "", 2, 0)
	require.ErrorIs(t, err, fsm.ErrMalformed)
	_, err = l.MoveWorld(ctxT(t), "nope", 2, 0)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	fence, err := l.MoveWorld(ctxT(t), "arena", 2, 0)
	require.NoError(t, err)
	require.Equal(t, fsm.Fence{World: "arena", Shard: 2, Seq: 3}, fence)
	_, _, err = l.Act(ctxT(t), incr("arena", "ann", 4, "e", "c", 1))
	require.ErrorIs(t, err, fsm.ErrWorldMoved)
	_, err = l.MoveWorld(ctxT(t), "arena", 5, 0)
	require.ErrorIs(t, err, fsm.ErrWorldMoved, "moved elsewhere already")

	blob, seq, err := l.ExportWorld("arena", 1)
	require.NoError(t, err)
	require.Equal(t, uint64(3), seq)
	blob2, _, err := l.ExportWorld("arena", fsm.ExportFormat)
	require.NoError(t, err)
	require.NotEqual(t, blob, blob2)
	src.waitReplicated()
	for _, s := range src.nodes {
		b, _, err := s.ExportWorld("arena", 1)
		require.NoError(t, err)
		require.Equal(t, blob, b, "node %s", s.cfg.ID)
		b, _, err = s.ExportWorld("arena", fsm.ExportFormat)
		require.NoError(t, err)
		require.Equal(t, blob2, b, "node %s, format 2: the same bytes for the same format", s.cfg.ID)
	}
	from, ok := worldInfo(t, l, "arena")
	require.True(t, ok)

	dst := newCluster(t, 1, nil)
	d := dst.leader()
	_, err = d.ImportWorld(ctxT(t), "arena", []byte("not an export"))
	require.ErrorIs(t, err, fsm.ErrMalformed)
	info, err := d.ImportWorld(ctxT(t), "arena", blob)
	require.NoError(t, err)
	require.Equal(t, from.Incarnation, info.Incarnation)
	require.Greater(t, from.Incarnation, info.Imported, "the case the archive's reconcile must handle")
	require.Equal(t, uint64(3), info.Seq)
	_, err = d.ImportWorld(ctxT(t), "arena", blob)
	require.ErrorIs(t, err, fsm.ErrWorldExists)

	sub, err := d.Subscribe("arena", 4)
	require.NoError(t, err)
	ev, dup, err := d.Act(ctxT(t), incr("arena", "ann", 3, "e", "c", 1))
	require.NoError(t, err)
	require.True(t, dup, "the retry of an action applied on the old group")
	require.Equal(t, uint64(3), ev.Seq)
	ev, _, err = d.Act(ctxT(t), incr("arena", "ann", 4, "e", "c", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(4), ev.Seq)
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []uint64{4}, seqs(t, evs))
	_, err = d.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap, "the events before the move stay with the old group")

	_, err = d.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, d.Close(context.Background()))
	d = dst.restart(0)
	dst.waitLeader()
	again, err := d.Subscribe("arena", 4)
	require.NoError(t, err)
	evs, err = again.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, []uint64{4}, seqs(t, evs), "kept across the restore's reconcile")

	// The old group drops the fenced world: no deletion of its
	// incarnation, which lives on at the new home.
	_, err = l.DeleteWorld(ctxT(t), "arena", from.Incarnation)
	require.NoError(t, err)
	_, ok = worldInfo(t, l, "arena")
	require.False(t, ok)
	require.False(t, l.Deleted("arena", from.Incarnation), "a move's drop is not a deletion")
}

// TestMigrationCommandsWaitForEveryVoterToReadLogVersion8: a voter still
// on log version 7 would stop at a fence or an import it cannot decode, so
// the leader proposes neither.
func TestMigrationCommandsWaitForEveryVoterToReadLogVersion8(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, func(cfg *Config) {
		if cfg.ID != "n1" {
			cfg.Versions = fsm.Versions{Log: 7, Snapshot: 6, Wire: 1}
		}
	})
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	for _, s := range c.nodes {
		require.NoError(t, l.Join(ctxT(t), s.Self()))
	}
	blob, _, err := l.ExportWorld("arena", 1)
	require.NoError(t, err)
	last := l.raft.LastIndex()
	_, err = l.MoveWorld(ctxT(t), "arena", 2, 0)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "reads log 7")
	_, err = l.ImportWorld(ctxT(t), "other", blob)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "command kind 21 needs log 8")
	_, err = l.ImportWorld(ctxT(t), "arena", blob)
	require.ErrorIs(t, err, fsm.ErrWorldExists, "checked before proposing")
	kinds := proposedSince(t, l, last)
	require.NotContains(t, kinds, fsm.CmdMoveWorld, "nothing was proposed")
	require.NotContains(t, kinds, fsm.CmdImportWorld, "nothing was proposed")
}
