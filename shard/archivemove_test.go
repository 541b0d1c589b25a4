package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// groupLeader waits for a leader among group g's replicas.
func groupLeader(t *testing.T, c *shardCluster, g uint64) *store.Store {
	t.Helper()
	var l *store.Store
	require.Eventually(t, func() bool { l = leaderOf(c.replicas(g)); return l != nil }, 10*time.Second, 5*time.Millisecond)
	return l
}

// After a world moved between two groups that both nodes run, each
// node's copy (Backend.CopyMovedArchives) lets a subscription from seq 1
// at the new home read every event once, in order: those from before the
// fence as the old home committed them, then the new home's.
func TestMovedWorldsArchiveFollowsItToEveryNodeOfItsNewHome(t *testing.T) {
	both := []string{"n1", "n2"}
	c := newShardCluster(t, 2, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: both}, {ID: 2, Voters: both}},
		Worlds:     map[string]uint64{"arena": 1},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, g := range []uint64{1, 2} { // the voters' versions: a move needs log version 8
		l := groupLeader(t, c, g)
		for _, r := range c.replicas(g) {
			require.NoError(t, l.Join(ctx, r.Self()))
		}
	}
	src := groupLeader(t, c, 1)
	mustCreateWorld(t, src, "arena")
	for seq := uint64(1); seq <= 5; seq++ {
		act(t, src, incr("arena", "p1", seq, "e1"))
	}
	fence, err := Move(ctx, src, groupLeader(t, c, 2), "arena", 2, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(5), fence)
	dst := groupLeader(t, c, 2)
	for seq := uint64(6); seq <= 8; seq++ {
		act(t, dst, incr("arena", "p1", seq, "e1"))
	}
	before := history(t, src, "arena", 1, 5)

	for _, id := range c.ids {
		home, ok := c.mgrs[id].Group(2)
		require.True(t, ok)
		require.Eventually(t, func() bool { w, err := home.World("arena"); return err == nil && w.Seq == 8 }, 10*time.Second, 5*time.Millisecond)
		_, err := home.Subscribe("arena", 1)
		require.ErrorIs(t, err, store.ErrArchiveGap, "node %s before its copy", id)

		b, err := NewBackend(c.routers[id])
		require.NoError(t, err)
		var stored int
		require.Eventually(t, func() bool { // once the old home's replica applied the fence
			n, err := b.CopyMovedArchives(ctx, 2)
			stored += n
			holes, herr := home.ArchiveHoles("arena", fence)
			return err == nil && herr == nil && len(holes) == 0
		}, 10*time.Second, 10*time.Millisecond)
		require.Equal(t, 5, stored, "node %s", id)
		n, err := b.CopyMovedArchives(ctx, 2)
		require.NoError(t, err)
		require.Zero(t, n, "node %s: a second sweep copies nothing", id)

		got := history(t, home, "arena", 1, 8)
		for i, ev := range got {
			require.Equal(t, uint64(i+1), ev.Seq, "node %s", id)
		}
		require.Equal(t, before, got[:5], "node %s: the old home's events as it committed them", id)
	}
}

// fakeOldHome answers pages from events, after mut changed them.
func fakeOldHome(events []*fsm.Event, mut func(from uint64, page []*fsm.Event) []*fsm.Event) ArchivePages {
	return func(_ context.Context, from uint64, max int) ([]*fsm.Event, error) {
		var out []*fsm.Event
		for _, ev := range events {
			if ev.Seq >= from && len(out) < max {
				c := *ev
				out = append(out, &c)
			}
		}
		return mut(from, out), nil
	}
}

// A page from the old home that is corrupt (another incarnation's index,
// a gap, a forged event at the fence) or missing is refused: nothing of
// it is stored, and a subscription from before the move still gets
// archive_gap.
func TestCopyMovedArchiveRefusesACorruptOrMissingPage(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	groups := map[uint64]*store.Store{}
	for _, g := range []uint64{1, 2} {
		st, err := m.Open(g, GroupOptions{Bootstrap: true})
		require.NoError(t, err)
		waitLeader(t, st)
		groups[g] = st
	}
	src, dst := groups[1], groups[2]
	mustCreateWorld(t, src, "arena")
	for seq := uint64(1); seq <= 6; seq++ {
		act(t, src, incr("arena", "p1", seq, "e1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := FenceAndExport(ctx, src, "arena", 2)
	require.NoError(t, err)
	require.NoError(t, ImportMoved(ctx, dst, "arena", e))
	old := history(t, src, "arena", 1, e.Seq)

	for name, mut := range map[string]func(uint64, []*fsm.Event) []*fsm.Event{
		"an earlier incarnation's event": func(_ uint64, p []*fsm.Event) []*fsm.Event { p[len(p)-1].Index = 0; return p },
		"a gap":                          func(_ uint64, p []*fsm.Event) []*fsm.Event { return append(p[:1:1], p[2:]...) },
		"a forged event at the fence": func(from uint64, p []*fsm.Event) []*fsm.Event {
			if from+uint64(len(p)) > e.Seq {
				p[len(p)-1].Index++
			}
			return p
		},
		"a missing page": func(from uint64, p []*fsm.Event) []*fsm.Event {
			if from > 3 {
				return nil
			}
			return p
		},
		"a later page": func(from uint64, p []*fsm.Event) []*fsm.Event {
			if from > 3 {
				return p[1:]
			}
			return p
		},
	} {
		before, err := dst.ArchiveHoles("arena", e.Seq)
		require.NoError(t, err)
		_, cerr := CopyMovedArchive(ctx, dst, fakeOldHome(old, mut), "arena", e.Seq, 3)
		require.Error(t, cerr, name)
		after, err := dst.ArchiveHoles("arena", e.Seq)
		require.NoError(t, err)
		require.NotEmpty(t, after, name)
		if name == "a missing page" || name == "a later page" {
			require.ErrorIs(t, cerr, ErrOldHomeLacks, name)
			continue
		}
		require.ErrorIs(t, cerr, store.ErrMovedEvents, name)
		require.Equal(t, before, after, "%s: nothing of a refused page is stored", name)
	}
	_, err = dst.Subscribe("arena", 4)
	require.ErrorIs(t, err, store.ErrArchiveGap)
	_, err = CopyMovedArchive(ctx, dst, fakeOldHome(old, func(_ uint64, p []*fsm.Event) []*fsm.Event { return p }), "arena", e.Seq, 0)
	require.Error(t, err, "a page of no events")

	n, err := CopyMovedArchive(ctx, dst, ArchiveOf(src, "arena"), "arena", e.Seq, 4)
	require.NoError(t, err)
	require.Equal(t, 3, n, "the rest: 1 to 3 came before the missing page")
	require.Equal(t, old, history(t, dst, "arena", 1, e.Seq))
}
