package store

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A restart after a move back restores a snapshot whose world is
// imported at the move back's index, with the earlier stay's events below
// it in the archive: the restore keeps them (the node archived them
// itself), and the new stay's, rather than dropping the world's whole
// archive as an earlier incarnation's. Before the import marked the
// archive, ArchiveHoles answered [1-6]: 1..3 and 6 were gone.
func TestARestartAfterAMoveBackKeepsTheEarlierStaysArchive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) { cfg.TrailingLogs = 2 })
	l := c.leader()
	_, _, blob, _ := awayAndBack(t, l)
	info, err := l.ImportWorld(ctxT(t), "w", blob)
	require.NoError(t, err)
	require.Nil(t, info.Moved, "moved back")
	ev, _, err := l.Act(ctxT(t), incr("w", "ann", 4, "e", "c", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(6), ev.Seq)
	_, err = l.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, l.Close(context.Background()))

	l = c.restart(0)
	c.waitLeader()
	ev, _, err = l.Act(ctxT(t), incr("w", "ann", 5, "e", "c", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(7), ev.Seq)
	_, err = l.Snapshot(ctxT(t))
	require.NoError(t, err)
	holes, err := l.ArchiveHoles("w", 7)
	require.NoError(t, err)
	require.Equal(t, []Range{{World: "w", From: 4, To: 5}}, holes, "only A's events, which a copy fills")
	for _, seq := range []uint64{1, 3, 6, 7} {
		got, ok := l.Event("w", seq)
		require.True(t, ok, "seq %d", seq)
		require.Equal(t, seq, got.Seq)
	}
}

// An import marks the world's archive for its incarnation; a mark that
// cannot be written (the archive failed) is logged, and nothing else
// happens: a restore then keeps only the events after the import.
func TestAnImportMarksTheArchiveAndLogsWhenItCannot(t *testing.T) {
	a := openTestArchive(t)
	var logged bytes.Buffer
	f := newFeed(a, 16, slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(f.close)
	w := fsm.WorldInfo{ID: "w", Incarnation: 3, Imported: 10}
	f.imported(w)
	require.Zero(t, a.restoreFloor(w), "marked: a restore keeps the world's archive")
	require.Empty(t, logged.String())

	require.NoError(t, a.db.Close())
	f.imported(fsm.WorldInfo{ID: "x", Incarnation: 4, Imported: 11})
	require.Contains(t, logged.String(), "cannot mark an imported world's archive")
	require.Contains(t, logged.String(), "world=x")
}
