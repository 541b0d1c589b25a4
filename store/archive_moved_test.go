package store

import (
	"context"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// movedWorld moves world "arena" (seqs 1 to 5) from a one-node group to
// another whose log is longer (its import index beyond the incarnation,
// so the old events' indexes lie below it), where it goes on to seq 7.
// It returns the old and the new group's leaders and the fence's seq.
func movedWorld(t *testing.T) (*Store, *Store, *cluster, uint64) {
	t.Helper()
	src := newCluster(t, 1, nil)
	l := src.leader()
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 5; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	fence, err := l.MoveWorld(ctxT(t), "arena", 2, 0)
	require.NoError(t, err)
	blob, _, err := l.ExportWorld("arena", 1)
	require.NoError(t, err)
	require.NoError(t, l.feed.waitArchived(l.adapter.appliedIndex()))

	dst := newCluster(t, 1, nil)
	d := dst.leader()
	mustCreateWorld(t, d, "filler")
	for seq := uint64(1); seq <= 20; seq++ { // push the import index up
		_, _, err := d.Act(ctxT(t), incr("filler", "p", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	info, err := d.ImportWorld(ctxT(t), "arena", blob)
	require.NoError(t, err)
	require.Greater(t, info.Imported, info.Incarnation, "the old events' indexes lie below the import's")
	for seq := uint64(6); seq <= 7; seq++ {
		_, _, err := d.Act(ctxT(t), incr("arena", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	return l, d, dst, fence.Seq
}

// readAll reads world's events from seq 1 to to through a subscription.
func readAll(t *testing.T, s *Store, world string, to uint64) []uint64 {
	t.Helper()
	sub, err := s.Subscribe(world, 1)
	require.NoError(t, err)
	var got []uint64
	for uint64(len(got)) < to {
		evs, err := sub.Next(ctxT(t))
		require.NoError(t, err)
		got = append(got, seqs(t, evs)...)
	}
	return got
}

func TestFillMovedLetsTheNewHomeServeTheEventsBeforeTheMove(t *testing.T) {
	t.Parallel()
	l, d, dst, fence := movedWorld(t)
	_, err := d.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap, "before the copy")
	require.ErrorContains(t, err, "retry", "a hint that the gap closes")

	old, err := l.arch.read("arena", 1, 100)
	require.NoError(t, err)
	require.Len(t, old, int(fence))
	n, err := d.FillMoved("arena", fence, old[:2])
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = d.FillMoved("arena", fence, old) // a retried page: held ones skipped
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7}, readAll(t, d, "arena", 7))
	missing, err := d.CheckArchive()
	require.NoError(t, err)
	require.Empty(t, missing)

	// The restore's reconcile keeps them: their indexes are the old group's.
	_, err = d.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, d.Close(context.Background()))
	d = dst.restart(0)
	dst.waitLeader()
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7}, readAll(t, d, "arena", 7), "kept across the restore")
}

func TestFillMovedRefusesWhatIsNotTheMovedWorldsEventsAndStoresNothing(t *testing.T) {
	t.Parallel()
	l, d, _, fence := movedWorld(t)
	old, err := l.arch.read("arena", 1, 100)
	require.NoError(t, err)
	clone := func(mut func([]*fsm.Event) []*fsm.Event) []*fsm.Event {
		out := make([]*fsm.Event, len(old))
		for i, ev := range old {
			c := *ev
			out[i] = &c
		}
		return mut(out)
	}
	for name, page := range map[string][]*fsm.Event{
		"a gap":            clone(func(e []*fsm.Event) []*fsm.Event { return append(e[:2:2], e[3:]...) }),
		"another world":    clone(func(e []*fsm.Event) []*fsm.Event { e[1].World = "other"; return e }),
		"a nil event":      clone(func(e []*fsm.Event) []*fsm.Event { e[1] = nil; return e }),
		"an earlier life":  clone(func(e []*fsm.Event) []*fsm.Event { e[0].Index = 1; return e }),
		"a forged fence":   clone(func(e []*fsm.Event) []*fsm.Event { e[4].Index++; return e }),
		"beyond the fence": clone(func(e []*fsm.Event) []*fsm.Event { c := *e[4]; c.Seq++; return append(e, &c) }),
		"seq zero":         {{World: "arena", Seq: 0, Index: old[0].Index}},
	} {
		_, err := d.FillMoved("arena", fence, page)
		require.ErrorIs(t, err, ErrMovedEvents, name)
	}
	_, err = d.FillMoved("arena", 0, old)
	require.ErrorIs(t, err, ErrMovedEvents, "no fence")
	_, err = d.FillMoved("arena", 8, old)
	require.ErrorIs(t, err, ErrMovedEvents, "a fence beyond the world's seq")
	_, err = d.FillMoved("filler", 5, old)
	require.ErrorIs(t, err, ErrMovedEvents, "a world created here")
	_, err = d.FillMoved("nope", 5, old)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, err = d.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap, "nothing was stored")
	missing, err := d.CheckArchive()
	require.NoError(t, err)
	require.Equal(t, []Range{{World: "arena", From: 1, To: fence}}, missing)
}

func TestArchiveFloorAdmitsAnImportedWorldsEventsFromBothGroups(t *testing.T) {
	require.Equal(t, uint64(7), archiveFloor(fsm.WorldInfo{Incarnation: 7}))
	require.Equal(t, uint64(7), archiveFloor(fsm.WorldInfo{Imported: 7}))
	require.Equal(t, uint64(3), archiveFloor(fsm.WorldInfo{Incarnation: 3, Imported: 9}))
	require.Equal(t, uint64(3), archiveFloor(fsm.WorldInfo{Incarnation: 9, Imported: 3}))
}

func TestArchiveHolesNamesWhatAMovedWorldsCopyLacks(t *testing.T) {
	t.Parallel()
	l, d, _, fence := movedWorld(t)
	old, err := l.arch.read("arena", 1, 100)
	require.NoError(t, err)
	_, err = d.FillMoved("arena", fence, old[1:3])
	require.NoError(t, err)
	holes, err := d.ArchiveHoles("arena", fence)
	require.NoError(t, err)
	require.Equal(t, []Range{{World: "arena", From: 1, To: 1}, {World: "arena", From: 4, To: 5}}, holes)
	holes, err = d.ArchiveHoles("arena", 0)
	require.NoError(t, err)
	require.Empty(t, holes)
}

// A node of the new home can also get a moved world's events from before
// the move through its refiller, from two peers of its group that copied
// them and answer the same: they are of the world's incarnation, not
// malformed pages.
func TestRefillTakesAMovedWorldsEventsFromBeforeTheMoveFromPeersThatCopiedThem(t *testing.T) {
	t.Parallel()
	src := newCluster(t, 1, nil)
	l := src.leader()
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 5; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	fence, err := l.MoveWorld(ctxT(t), "arena", 2, 0)
	require.NoError(t, err)
	blob, _, err := l.ExportWorld("arena", 1)
	require.NoError(t, err)
	require.NoError(t, l.feed.waitArchived(l.adapter.appliedIndex()))
	old, err := l.arch.read("arena", 1, 100)
	require.NoError(t, err)

	dst := newCluster(t, 3, nil)
	d := dst.leader()
	for _, s := range dst.nodes {
		require.NoError(t, d.Join(ctxT(t), s.Self()))
	}
	mustCreateWorld(t, d, "filler")
	for seq := uint64(1); seq <= 20; seq++ { // push the import index up
		_, _, err := d.Act(ctxT(t), incr("filler", "p", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	info, err := d.ImportWorld(ctxT(t), "arena", blob)
	require.NoError(t, err)
	require.Greater(t, info.Imported, info.Incarnation)
	_, _, err = d.Act(ctxT(t), incr("arena", "ann", 6, "e", "c", 1))
	require.NoError(t, err)
	dst.waitReplicated()
	victim := (indexOf(dst, d) + 1) % 3
	for i, s := range dst.nodes {
		require.NoError(t, s.feed.waitArchived(s.adapter.appliedIndex()))
		if i != victim {
			_, err := s.FillMoved("arena", fence.Seq, old)
			require.NoError(t, err)
		}
	}
	v := dst.nodes[victim]
	cfg := DefaultRefillConfig()
	cfg.Peers = peersOf(dst)
	require.NoError(t, v.refillOnce(ctxT(t), cfg))
	st := v.ArchiveStatus()
	require.Zero(t, st.Refused)
	require.Equal(t, uint64(5), st.Verified[VerifiedByTwoPeers])
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, readAll(t, v, "arena", 6))
}

// A restore keeps an imported world's archived events from before its
// import only when the archive is marked as holding them for the world's
// incarnation: otherwise events below the import index are an earlier
// incarnation's that a node which missed its delete still holds.
func TestRestoreFloorKeepsCopiedEventsOnlyForTheMarkedIncarnation(t *testing.T) {
	a := openTestArchive(t)
	w := fsm.WorldInfo{ID: "w", Incarnation: 3, Imported: 10}
	require.Equal(t, uint64(10), a.restoreFloor(w), "unmarked")
	require.NoError(t, a.markMoved("w", 2))
	require.Equal(t, uint64(10), a.restoreFloor(w), "marked for another incarnation")
	require.NoError(t, a.markMoved("w", 3))
	require.Zero(t, a.restoreFloor(w), "marked for this one: all kept")
	require.Equal(t, uint64(7), a.restoreFloor(fsm.WorldInfo{ID: "x", Incarnation: 7}), "created here")

	stale := evs("w", 1, 4)
	for _, ev := range stale {
		ev.Index = 5 // an earlier incarnation's, on this group
	}
	require.NoError(t, a.write(stale))
	require.NoError(t, a.reconcile(map[string]uint64{"w": a.restoreFloor(w)}))
	held, err := a.read("w", 1, 10)
	require.NoError(t, err)
	require.Len(t, held, 4, "marked: kept")
	require.NoError(t, a.deleteWorlds([]string{"w"}))
	mark, err := a.movedMark("w")
	require.NoError(t, err)
	require.Zero(t, mark, "a delete drops the mark")
	require.NoError(t, a.write(stale))
	require.NoError(t, a.reconcile(map[string]uint64{"w": a.restoreFloor(w)}))
	held, err = a.read("w", 1, 10)
	require.NoError(t, err)
	require.Empty(t, held, "unmarked: an earlier incarnation's, dropped")
}

// A world moved more than once reaches its last home with events of a
// middle group, whose log indexes need not reach the incarnation (the
// first group's index at its creation). Past the drop of the index they
// are taken; before it, and on a page whose predecessor is not held, an
// event below the incarnation is refused; index 0 never is a log index.
func TestFillMovedTakesALaterHomesEventsBelowTheIncarnation(t *testing.T) {
	t.Parallel()
	l, d, _, fence := movedWorld(t)
	old, err := l.arch.read("arena", 1, 100)
	require.NoError(t, err)
	w, err := l.World("arena")
	require.NoError(t, err)
	require.Greater(t, w.Incarnation, uint64(1))
	page := make([]*fsm.Event, len(old))
	for i, ev := range old {
		c := *ev
		page[i] = &c
	}
	page[2].Index, page[3].Index = w.Incarnation-1, w.Incarnation-1 // seqs 3 and 4: a middle home's
	zero := *page[1]
	zero.Index = 0
	_, err = d.FillMoved("arena", fence, []*fsm.Event{page[0], &zero})
	require.ErrorIs(t, err, ErrMovedEvents, "log index 0")
	_, err = d.FillMoved("arena", fence, page[2:])
	require.ErrorIs(t, err, ErrMovedEvents, "seq 2 not held: seq 3 counts as the first group's")
	n, err := d.FillMoved("arena", fence, page[:2])
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = d.FillMoved("arena", fence, page[2:])
	require.NoError(t, err, "seq 3 drops below seq 2's index: a later home's, and so is seq 4 after it")
	require.Equal(t, 3, n)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7}, readAll(t, d, "arena", 7))
}
