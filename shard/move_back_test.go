package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// requireMoveBackRefused moves world from a to b, whose copy of it is a
// stale one fenced towards a, and requires the move refused before a's
// fence with want (and world_exists): a still takes the world's writes
// (the next one at seq+1), and b's copy stays as it was.
func requireMoveBackRefused(ctx context.Context, t *testing.T, a, b *store.Store, world string, to uint64, want error) {
	t.Helper()
	stale, err := b.World(world)
	require.NoError(t, err)
	require.NotNil(t, stale.Moved, "b holds a fenced copy")
	before, err := a.World(world)
	require.NoError(t, err)

	_, err = Move(ctx, a, b, world, to, func(context.Context, string, uint64) error {
		t.Fatal("published a refused move")
		return nil
	})
	require.ErrorIs(t, err, fsm.ErrWorldExists)
	require.ErrorIs(t, err, want)
	require.ErrorContains(t, err, "fenced copy")
	require.ErrorContains(t, err, "nothing fenced")

	got, err := a.World(world)
	require.NoError(t, err)
	require.Nil(t, got.Moved, "the source was fenced")
	act(t, a, incr(world, "alice", before.Seq+100, "e"))
	after, err := b.World(world)
	require.NoError(t, err)
	require.Equal(t, stale, after)
}

// movedTwice boots groups 1 (C), 2 (B) and 3 (A) on one node, creates
// world w on C and moves it C→B→A with an action on each of C and B, and
// returns a context for the test's moves, A and B (which holds w's copy
// fenced towards A), C (which holds one fenced towards B) and a Backend
// over the three (its map places w on B).
func movedTwice(t *testing.T) (context.Context, *store.Store, *store.Store, *store.Store, *Backend) {
	t.Helper()
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	groups := bootGroups(t, m, 1, 2, 3)
	one := []string{"n1"}
	smap := &Map{
		Nodes:      map[string]MapNode{"n1": {Raft: "127.0.0.1:1", HTTP: "n1:80"}},
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: one}, {ID: 2, Voters: one}, {ID: 3, Voters: one}},
		Worlds:     map[string]uint64{"w": 2},
	}
	require.NoError(t, smap.Validate())
	be, err := NewBackend(NewRouter(m, smap))
	require.NoError(t, err)
	ctx := moveContext(t)
	c, b, a := groups[1], groups[2], groups[3]
	mustCreateWorld(t, c, "w")
	act(t, c, incr("w", "alice", 1, "e"))
	_, err = m.MoveWorld(ctx, "w", 1, 2, nil) // with the archive's copy
	require.NoError(t, err)
	act(t, b, incr("w", "alice", 2, "e"))
	_, err = m.MoveWorld(ctx, "w", 2, 3, nil)
	require.NoError(t, err)
	return ctx, a, b, c, be
}

// TestAMoveBackToAShardThatStillHoldsTheFencedCopyReplacesIt (issue 14,
// log 17): the world went C→B→A, and B still holds its copy, fenced
// towards A. Moving it A→B imports over that copy: B holds A's state,
// the seq goes on from A's fence, a retry of the move is recognised,
// and B's archive ends with every event 1..N once (its own 1..2, A's 3
// copied from A, not C, whose copy is fenced towards B too).
func TestAMoveBackToAShardThatStillHoldsTheFencedCopyReplacesIt(t *testing.T) {
	ctx, a, b, _, be := movedTwice(t)
	act(t, a, incr("w", "alice", 3, "e"))
	var published []uint64
	pub := func(_ context.Context, _ string, g uint64) error { published = append(published, g); return nil }

	fence, err := Move(ctx, a, b, "w", 2, pub)
	require.NoError(t, err)
	require.Equal(t, uint64(3), fence)
	require.Equal(t, []uint64{2}, published)
	got, err := b.World("w")
	require.NoError(t, err)
	require.Nil(t, got.Moved)
	require.Equal(t, uint64(3), got.Seq)
	ha, err := a.Hash("w", 3)
	require.NoError(t, err)
	hb, err := b.Hash("w", 3)
	require.NoError(t, err)
	require.Equal(t, ha, hb, "A's state at the fence")

	again, err := Move(ctx, a, b, "w", 2, pub)
	require.NoError(t, err, "a retry recognises the import")
	require.Equal(t, fence, again)
	ev := act(t, b, incr("w", "alice", 4, "e"))
	require.Equal(t, uint64(4), ev.Seq)

	_, err = history1(b, "w")
	require.ErrorIs(t, err, store.ErrArchiveGap, "A's event 3 is not copied yet")
	require.Eventually(t, func() bool { // B's own 2, once its feed wrote it
		holes, err := b.ArchiveHoles("w", fence)
		return err == nil && len(holes) == 1 && holes[0].From == 3 && holes[0].To == 3
	}, 10*time.Second, 5*time.Millisecond)
	n, err := be.CopyMovedArchives(ctx, nil, MovedArchivePage)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only A's event 3 (B holds 1 and 2), from A, the latest old home")
	n, err = be.CopyMovedArchives(ctx, nil, MovedArchivePage)
	require.NoError(t, err)
	require.Zero(t, n)
	evs := history(t, b, "w", 1, 4)
	for i, e := range evs {
		require.Equal(t, uint64(i+1), e.Seq, "no gap, no duplicate")
	}
	require.Equal(t, history(t, a, "w", 3, 3), evs[2:3], "event 3 as A committed it")
}

// TestAMoveBackToTheShardThatCreatedTheWorldReplacesItsCopy (issue 14):
// the world was created on B and moved to A; B's copy (imported index 0)
// is fenced towards A. Moving it back to B replaces that copy too.
func TestAMoveBackToTheShardThatCreatedTheWorldReplacesItsCopy(t *testing.T) {
	ctx, b, a := twoGroups(t)
	mustCreateWorld(t, b, "w")
	act(t, b, incr("w", "alice", 1, "e"))
	_, err := Move(ctx, b, a, "w", 2, nil)
	require.NoError(t, err)
	act(t, a, incr("w", "alice", 2, "e"))

	fence, err := Move(ctx, a, b, "w", 1, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(2), fence)
	got, err := b.World("w")
	require.NoError(t, err)
	require.Nil(t, got.Moved)
	require.NotZero(t, got.Imported)
	require.Equal(t, uint64(3), act(t, b, incr("w", "alice", 3, "e")).Seq)
}

// TestAMoveBackToAShardWithALog16MemberFencesNothing (issue 14): the
// target's member reads log 16, which cannot decode the import that
// replaces a fenced copy: the move is refused before the source's fence
// with version_gate (and world_exists), the world goes on at its home,
// and the target's copy is left; a world the target does not hold moves
// there as before.
func TestAMoveBackToAShardWithALog16MemberFencesNothing(t *testing.T) {
	a, b := oldTarget(t, fsm.Versions{Log: 16, Snapshot: 10, Wire: 1})
	ctx := moveContext(t)
	mustCreateWorld(t, b, "w")
	act(t, b, incr("w", "alice", 1, "e"))
	_, err := Move(ctx, b, a, "w", 1, nil)
	require.NoError(t, err)
	act(t, a, incr("w", "alice", 2, "e"))

	requireMoveBackRefused(ctx, t, a, b, "w", 2, store.ErrVersionGate)

	mustCreateWorld(t, a, "plain")
	act(t, a, incr("plain", "p1", 1, "e1"))
	_, err = Move(ctx, a, b, "plain", 2, nil)
	require.NoError(t, err)
}

// TestAMoveBackToAGroupWithOneMemberReadingLog16FencesNothing (issue
// 14): both shards' groups run on n1 and n2, and n2 reads log 16. The
// world moves from shard 1 to 2 (log 15 suffices); moving it back to 1,
// whose fenced copy only a log 17 import replaces, is refused by the gate
// (version_gate, whichever node leads) before the fence, on every replica
// of shard 2 the world takes writes, and shard 1's copy stays fenced.
func TestAMoveBackToAGroupWithOneMemberReadingLog16FencesNothing(t *testing.T) {
	v16 := fsm.Supported()
	v16.Log = 16
	both := []string{"n1", "n2"}
	c := newShardClusterWith(t, 2, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: both}, {ID: 2, Voters: both}},
	}, func(cfg *store.Config) {
		if cfg.ID == "n2" {
			cfg.Versions = v16
		}
	})
	ctx := moveContext(t)
	// The members report their versions.
	joinReplicas(ctx, t, c, 1, 2)
	mustCreateWorld(t, groupLeader(t, c, 1), "w")
	act(t, groupLeader(t, c, 1), incr("w", "alice", 1, "e"))
	_, err := Move(ctx, groupLeader(t, c, 1), groupLeader(t, c, 2), "w", 2, nil)
	require.NoError(t, err)
	act(t, groupLeader(t, c, 2), incr("w", "alice", 2, "e"))

	requireMoveBackRefused(ctx, t, groupLeader(t, c, 2), groupLeader(t, c, 1), "w", 1, store.ErrVersionGate)
	for _, r := range c.replicas(1) {
		require.ErrorIs(t, r.MoveBackGate(), store.ErrVersionGate, "whichever replica would lead")
	}
}

// TestAnImportOntoAFencedCopyIsNoEarlierImport: ImportMoved, which takes
// world_exists for an earlier import of the same move when the target's
// copy has the export's incarnation and was imported, never takes a
// fenced copy for it: one the import cannot replace (here fenced after
// the export's seq: a stale export of a move that the world has gone on
// from) is refused, and stays fenced.
func TestAnImportOntoAFencedCopyIsNoEarlierImport(t *testing.T) {
	ctx, a, b, c, _ := movedTwice(t)
	// C's fence towards B (seq 1) is a repeated fence: its export is the
	// world at seq 1, while B's copy is fenced at 2.
	e, err := FenceAndExport(ctx, c, "w", 2)
	require.NoError(t, err)
	require.Equal(t, uint64(1), e.Seq)
	err = ImportMoved(ctx, b, "w", e)
	require.ErrorIs(t, err, fsm.ErrWorldExists)
	require.ErrorContains(t, err, "fenced copy")
	require.ErrorContains(t, err, "stale export")
	got, err := b.World("w")
	require.NoError(t, err)
	require.NotNil(t, got.Moved)
	_, err = a.World("w")
	require.NoError(t, err)
}

// TestCheckTargetCopyPassesATargetThatCannotTell: a target without World
// (no copy to look at) is left to its import; a fenced copy is refused by
// a target that cannot replace it (no MoveBackGate: a binary before log
// 17) and when it is of another incarnation than the world's.
func TestCheckTargetCopyPassesATargetThatCannotTell(t *testing.T) {
	require.NoError(t, CheckTargetCopy(struct{}{}, "w", 2, 0))
	fenced := fsm.WorldInfo{ID: "w", Incarnation: 7, Imported: 4, Moved: &fsm.Fence{World: "w", Shard: 1}}
	require.ErrorIs(t, CheckTargetCopy(&fakeGroup{world: fenced}, "w", 2, 7), fsm.ErrWorldExists)
	require.NoError(t, CheckTargetCopy(&fakeGroup{world: fsm.WorldInfo{ID: "w", Imported: 4}}, "w", 2, 0), "an earlier import of the move")
	require.ErrorIs(t, CheckTargetCopy(&fakeGroup{world: fsm.WorldInfo{ID: "w"}}, "w", 2, 0), fsm.ErrWorldExists, "created there")
	gated := &backGroup{fakeGroup: &fakeGroup{world: fenced}}
	require.NoError(t, CheckTargetCopy(gated, "w", 2, 7))
	require.NoError(t, CheckTargetCopy(gated, "w", 2, 0), "incarnation unknown: the import checks it")
	err := CheckTargetCopy(gated, "w", 2, 8)
	require.ErrorIs(t, err, fsm.ErrWorldExists)
	require.ErrorContains(t, err, "another incarnation")
}

// history1 reads world's events from seq 1 on st until the first gap.
func history1(st *store.Store, world string) ([]*fsm.Event, error) {
	sub, err := st.Subscribe(world, 1)
	if err != nil {
		return nil, err
	}
	var out []*fsm.Event
	for {
		w, err := st.World(world)
		if err != nil || uint64(len(out)) >= w.Seq {
			return out, err
		}
		evs, err := sub.Next(context.Background())
		if err != nil {
			return out, err
		}
		out = append(out, evs...)
	}
}

// backGroup is a fakeGroup that can replace a fenced copy.
type backGroup struct{ *fakeGroup }

func (*backGroup) MoveBackGate() error { return nil }

// TestAMoveBacksArchiveReachesANodeWithoutTheOldGroup (issue 14): the
// world was created on shard 2 (n1 and n2) and went to shard 1 (n1 only)
// and back. n2's archive holds the events of the world's first stay on 2
// and lacks shard 1's, a hole that does not start at seq 1: n1 copies
// them from its replica of shard 1, n2 from n1, and both end with every
// event once.
func TestAMoveBacksArchiveReachesANodeWithoutTheOldGroup(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 2,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1", "n2"}}},
		Worlds:     map[string]uint64{"arena": 2},
	})
	ctx := moveContext(t)
	joinReplicas(ctx, t, c, 1, 2)
	mustCreateWorld(t, groupLeader(t, c, 2), "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		act(t, groupLeader(t, c, 2), incr("arena", "p1", seq, "e1"))
	}
	_, err := Move(ctx, groupLeader(t, c, 2), groupLeader(t, c, 1), "arena", 1, nil)
	require.NoError(t, err)
	for seq := uint64(4); seq <= 6; seq++ {
		act(t, groupLeader(t, c, 1), incr("arena", "p1", seq, "e1"))
	}
	fence, err := Move(ctx, groupLeader(t, c, 1), groupLeader(t, c, 2), "arena", 2, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(6), fence)
	act(t, groupLeader(t, c, 2), incr("arena", "p1", 7, "e1"))

	peers := backendPeers{}
	for _, id := range c.ids {
		b, err := NewBackend(c.routers[id])
		require.NoError(t, err)
		peers[id] = b
	}
	home, _ := c.mgrs["n2"].Group(2)
	require.Eventually(t, func() bool { // its own 1..3 and 7 archived
		holes, err := home.ArchiveHoles("arena", 7)
		return err == nil && len(holes) == 1 && holes[0].From == 4 && holes[0].To == fence
	}, 10*time.Second, 5*time.Millisecond)
	// As the sweeps do: again until the old home's archive wrote what
	// they copy.
	n := 0
	require.Eventually(t, func() bool {
		k, err := peers["n1"].CopyMovedArchives(ctx, nil, 2)
		n += k
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "n1 copies from its replica of shard 1")
	require.Equal(t, 3, n, "n1 from its replica of shard 1")
	n = 0
	require.Eventually(t, func() bool {
		k, err := peers["n2"].CopyMovedArchives(ctx, peers, 2)
		n += k
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "n2 copies from n1")
	require.Equal(t, 3, n, "n2 from n1")
	old, _ := c.mgrs["n1"].Group(1)
	got := history(t, home, "arena", 1, 7)
	for i, ev := range got {
		require.Equal(t, uint64(i+1), ev.Seq)
	}
	require.Equal(t, history(t, old, "arena", 4, fence), got[3:fence], "shard 1's events as it committed them")
}

// TestAMoveBacksArchiveFillsEveryHoleOnANodeThatSweptNotBetween: the
// world was created on shard 1 (n1 only), went to shard 2 (n1 and n2),
// back to 1 and back to 2, and n2 swept at none of these moves: its
// archive lacks 1..F1 (shard 1's first stay) and F2+1..F3 (its second),
// two holes. Its copy from n1 fills both (the last hole's end is the
// copy's fence), not only the first.
func TestAMoveBacksArchiveFillsEveryHoleOnANodeThatSweptNotBetween(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 2,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1", "n2"}}},
		Worlds:     map[string]uint64{"arena": 2},
	})
	ctx := moveContext(t)
	joinReplicas(ctx, t, c, 1, 2)
	mustCreateWorld(t, groupLeader(t, c, 1), "arena")
	seq := uint64(0)
	actOn := func(g uint64, n int) {
		for range n {
			seq++
			act(t, groupLeader(t, c, g), incr("arena", "p1", seq, "e1"))
		}
	}
	actOn(1, 3)
	var fences []uint64
	for _, to := range []uint64{2, 1, 2} {
		f, err := Move(ctx, groupLeader(t, c, 3-to), groupLeader(t, c, to), "arena", to, nil)
		require.NoError(t, err)
		fences = append(fences, f)
		actOn(to, 2)
	}
	require.Equal(t, []uint64{3, 5, 7}, fences)

	peers := backendPeers{}
	for _, id := range c.ids {
		b, err := NewBackend(c.routers[id])
		require.NoError(t, err)
		peers[id] = b
	}
	home, _ := c.mgrs["n2"].Group(2)
	require.Eventually(t, func() bool { // its own 4..5 and 8..9 archived
		holes, err := home.ArchiveHoles("arena", seq)
		return err == nil && len(holes) == 2 && holes[0].From == 1 && holes[0].To == 3 && holes[1].From == 6 && holes[1].To == 7
	}, 10*time.Second, 5*time.Millisecond)
	// As the sweeps do: again until the old home's archive wrote what
	// they copy.
	require.Eventually(t, func() bool {
		_, err := peers["n1"].CopyMovedArchives(ctx, nil, 2)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "n1 copies from its replica of shard 1")
	n := 0
	require.Eventually(t, func() bool {
		k, err := peers["n2"].CopyMovedArchives(ctx, peers, 2)
		n += k
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "n2 copies from n1")
	require.Equal(t, 5, n, "n2 from n1: 1..3 and 6..7")
	got := history(t, home, "arena", 1, seq)
	for i, ev := range got {
		require.Equal(t, uint64(i+1), ev.Seq)
	}
	n1home, _ := c.mgrs["n1"].Group(2)
	require.Equal(t, history(t, n1home, "arena", 1, seq), got)
}
