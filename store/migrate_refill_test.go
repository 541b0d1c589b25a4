package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// An imported world keeps its incarnation, the old group's log index of
// its creation, which may lie beyond the new group's log; its events on
// the new group come after its import. A refill of its archive on the new
// group must take those events from a peer: they are this incarnation's,
// not an earlier one's.
func TestRefillTakesTheEventsOfAnImportedWorldAfterItsImport(t *testing.T) {
	t.Parallel()
	src := newCluster(t, 1, nil)
	l := src.leader()
	mustCreateWorld(t, l, "filler")
	for seq := uint64(1); seq <= 20; seq++ { // push the arena's incarnation up
		_, _, err := l.Act(ctxT(t), incr("filler", "p", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	mustCreateWorld(t, l, "arena")
	_, _, err := l.Act(ctxT(t), incr("arena", "ann", 1, "e", "c", 1))
	require.NoError(t, err)
	fence, err := l.MoveWorld(ctxT(t), "arena", 2, 0)
	require.NoError(t, err)
	blob, _, err := l.ExportWorld("arena", 1)
	require.NoError(t, err)

	dst := newCluster(t, 1, nil)
	d := dst.leader()
	info, err := d.ImportWorld(ctxT(t), "arena", blob)
	require.NoError(t, err)
	for seq := uint64(2); seq <= 4; seq++ {
		_, _, err := d.Act(ctxT(t), incr("arena", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	require.NoError(t, d.feed.waitArchived(d.adapter.appliedIndex()))
	require.Greater(t, info.Incarnation, d.adapter.appliedIndex(), "the incarnation is beyond this group's log")

	cfg := DefaultRefillConfig()
	cfg.Peers = peersOf(dst)
	evs, err := d.fetchPage(ctxT(t), cfg, fsm.NodeInfo{ID: dst.cfgs[0].ID}, "arena", fence.Seq+1, 10)
	require.NoError(t, err, "the imported world's own events are no malformed page")
	require.Equal(t, []uint64{2, 3, 4}, seqs(t, evs))
}
