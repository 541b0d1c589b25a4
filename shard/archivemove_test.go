package shard

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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

// joinReplicas has each of groups' leaders record every replica of its
// group as a member (Join), so that it knows their versions.
func joinReplicas(ctx context.Context, t *testing.T, c *shardCluster, groups ...uint64) {
	t.Helper()
	for _, g := range groups {
		l := groupLeader(t, c, g)
		for _, r := range c.replicas(g) {
			require.NoError(t, l.Join(ctx, r.Self()))
		}
	}
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
	// The voters' versions: a move needs log version 8
	joinReplicas(ctx, t, c, 1, 2)
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
		if id == "n1" { // sweep by sweep
			var stored int
			require.Eventually(t, func() bool { // once the old home's replica applied the fence
				n, err := b.CopyMovedArchives(ctx, nil, 2)
				stored += n
				holes, herr := home.ArchiveHoles("arena", fence)
				return err == nil && herr == nil && len(holes) == 0
			}, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, 5, stored, "node %s", id)
			n, err := b.CopyMovedArchives(ctx, nil, 2)
			require.NoError(t, err)
			require.Zero(t, n, "node %s: a second sweep copies nothing", id)
		} else { // as gsd runs it
			rctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); b.RunMovedArchives(rctx, nil, 10*time.Millisecond) }()
			require.Eventually(t, func() bool {
				holes, err := home.ArchiveHoles("arena", fence)
				return err == nil && len(holes) == 0
			}, 10*time.Second, 10*time.Millisecond)
			stop()
			<-done
		}

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
	groups := bootGroups(t, m, 1, 2)
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

	// Pages of 3: seqs 1 to 3 are fine, the page of 4 to 6 (6 is the
	// fence) is not.
	bad := func(mut func([]*fsm.Event) []*fsm.Event) func(uint64, []*fsm.Event) []*fsm.Event {
		return func(from uint64, p []*fsm.Event) []*fsm.Event {
			if from == 4 {
				return mut(p)
			}
			return p
		}
	}
	for name, c := range map[string]struct {
		mut  func(uint64, []*fsm.Event) []*fsm.Event
		want error
	}{
		"an earlier incarnation's event": {bad(func(p []*fsm.Event) []*fsm.Event { p[1].Index = 0; return p }), store.ErrMovedEvents},
		"a gap":                          {bad(func(p []*fsm.Event) []*fsm.Event { return append(p[:1:1], p[2:]...) }), store.ErrMovedEvents},
		"a forged event at the fence":    {bad(func(p []*fsm.Event) []*fsm.Event { p[2].Index++; return p }), store.ErrMovedEvents},
		"another world's event":          {bad(func(p []*fsm.Event) []*fsm.Event { p[0].World = "other"; return p }), store.ErrMovedEvents},
		"a missing page":                 {bad(func([]*fsm.Event) []*fsm.Event { return nil }), ErrOldHomeLacks},
		"a later page":                   {bad(func(p []*fsm.Event) []*fsm.Event { return p[1:] }), ErrOldHomeLacks},
	} {
		_, err := CopyMovedArchive(ctx, dst, fakeOldHome(old, c.mut), "arena", e.Seq, 3)
		require.ErrorIs(t, err, c.want, name)
		holes, err := dst.ArchiveHoles("arena", e.Seq)
		require.NoError(t, err)
		require.Equal(t, []store.Range{{World: "arena", From: 4, To: 6}}, holes, "%s: nothing of the refused page is stored", name)
	}
	_, err = dst.Subscribe("arena", 4)
	require.ErrorIs(t, err, store.ErrArchiveGap)
	_, err = CopyMovedArchive(ctx, dst, fakeOldHome(old, func(_ uint64, p []*fsm.Event) []*fsm.Event { return p }), "arena", e.Seq, 0)
	require.Error(t, err, "a page of no events")

	n, err := CopyMovedArchive(ctx, dst, ArchiveOf(src, "arena"), "arena", e.Seq, 4)
	require.NoError(t, err)
	require.Equal(t, 3, n, "the rest: 1 to 3 came before the refused page")
	require.Equal(t, old, history(t, dst, "arena", 1, e.Seq))
}

// A move between two groups of this node (Manager.MoveWorld) copies the
// world's events before the fence to the new home as it returns.
func TestManagerMoveWorldCopiesTheArchiveToTheNewHome(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	groups := bootGroups(t, m, 1, 2)
	src, dst := groups[1], groups[2]
	mustCreateWorld(t, src, "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		act(t, src, incr("arena", "p1", seq, "e1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seq, err := m.MoveWorld(ctx, "arena", 1, 2, nil)
	require.NoError(t, err)
	act(t, dst, incr("arena", "p1", 4, "e1"))
	got := history(t, dst, "arena", 1, seq+1)
	require.Equal(t, history(t, src, "arena", 1, seq), got[:seq])
	require.Equal(t, seq+1, got[seq].Seq)
}

// backendPeers fetches archive pages from other nodes' Backends, as
// api/peer's archive route serves them.
type backendPeers map[string]*Backend

func (p backendPeers) FetchArchive(ctx context.Context, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error) {
	b, ok := p[node.ID]
	if !ok {
		return nil, fmt.Errorf("node %s unreachable", node.ID)
	}
	return ArchiveOf(b, world)(ctx, from, max)
}

// A node of the new home that does not run the old group copies the
// events before the fence from another node of the new home once that
// one copied them from its replica of the old group.
func TestMovedWorldsArchiveReachesANodeWithoutTheOldGroupThroughItsPeers(t *testing.T) {
	logs := &sweepLogs{}
	c := newShardClusterWith(t, 2, Map{
		Membership: 2,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1", "n2"}}},
		Worlds:     map[string]uint64{"arena": 2}, // the map as published
	}, func(cfg *store.Config) {
		if cfg.ID == "n2" {
			cfg.Logger = slog.New(logs)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	joinReplicas(ctx, t, c, 1, 2)
	src := groupLeader(t, c, 1)
	mustCreateWorld(t, src, "arena")
	for seq := uint64(1); seq <= 5; seq++ {
		act(t, src, incr("arena", "p1", seq, "e1"))
	}
	fence, err := Move(ctx, src, groupLeader(t, c, 2), "arena", 2, nil)
	require.NoError(t, err)
	for seq := uint64(6); seq <= 8; seq++ {
		act(t, groupLeader(t, c, 2), incr("arena", "p1", seq, "e1"))
	}
	peers := backendPeers{}
	for _, id := range c.ids {
		b, err := NewBackend(c.routers[id])
		require.NoError(t, err)
		peers[id] = b
	}
	home, _ := c.mgrs["n2"].Group(2)
	require.Eventually(t, func() bool { w, err := home.World("arena"); return err == nil && w.Seq == 8 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { // the feed archived 6 to 8
		holes, err := home.ArchiveHoles("arena", 8)
		return err == nil && len(holes) == 1 && holes[0].To == fence
	}, 10*time.Second, 5*time.Millisecond)

	_, err = peers["n2"].CopyMovedArchives(ctx, peers, 2)
	require.ErrorIs(t, err, ErrOldHomeLacks, "n1 has not copied them yet")
	_, err = peers["n2"].CopyMovedArchives(ctx, backendPeers{}, 2)
	require.Error(t, err, "n1 unreachable")
	_, err = home.Subscribe("arena", 1)
	require.ErrorIs(t, err, store.ErrArchiveGap)
	// The sweep warns once about a copy that keeps failing the same way.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); peers["n2"].RunMovedArchives(rctx, backendPeers{}, time.Millisecond) }()
	require.Eventually(t, func() bool { _, again := logs.counts(); return again >= 3 }, 10*time.Second, time.Millisecond)
	stop()
	<-done
	warned, _ := logs.counts()
	require.Equal(t, 1, warned)

	n, err := peers["n1"].CopyMovedArchives(ctx, nil, 2)
	require.NoError(t, err)
	require.Equal(t, 5, n, "n1 from its replica of the old group")
	n, err = peers["n2"].CopyMovedArchives(ctx, peers, 2)
	require.NoError(t, err)
	require.Equal(t, 5, n, "n2 from n1")
	require.Equal(t, history(t, src, "arena", 1, fence), history(t, home, "arena", 1, fence))
	require.Equal(t, uint64(8), history(t, home, "arena", 1, 8)[7].Seq)
}

// recordsReader answers fixed records, or an error.
type recordsReader struct {
	recs [][]byte
	err  error
}

func (r recordsReader) ArchiveRecords(string, uint64, int, int) (uint64, [][]byte, error) {
	return 1, r.recs, r.err
}

func TestArchiveOfRefusesRecordsThatDoNotDecode(t *testing.T) {
	ctx := context.Background()
	ev := &fsm.Event{World: "arena", Seq: 1, Index: 3}
	got, err := ArchiveOf(recordsReader{recs: [][]byte{fsm.EncodeEvent(ev)}}, "arena")(ctx, 1, 5)
	require.NoError(t, err)
	require.Equal(t, []*fsm.Event{ev}, got)
	_, err = ArchiveOf(recordsReader{recs: [][]byte{fsm.EncodeEvent(ev), []byte("junk")}}, "arena")(ctx, 1, 5)
	require.ErrorIs(t, err, fsm.ErrMalformed)
	_, err = ArchiveOf(recordsReader{err: store.ErrClosed}, "arena")(ctx, 1, 5)
	require.ErrorIs(t, err, store.ErrClosed)
}

// sweepLogs counts the sweep's warnings and repeated failures.
type sweepLogs struct {
	mu            sync.Mutex
	warned, again int
}

func (l *sweepLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *sweepLogs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *sweepLogs) WithGroup(string) slog.Handler            { return l }
func (l *sweepLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case strings.Contains(r.Message, "not all copied") && r.Level == slog.LevelWarn:
		l.warned++
	case strings.Contains(r.Message, "still not all copied"):
		l.again++
	}
	return nil
}

func (l *sweepLogs) counts() (warned, again int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warned, l.again
}

// A world moved twice (group 1 -> 2 -> 3) has events committed on two
// old groups: those of the middle group carry its log indexes, which
// need not reach the world's incarnation (group 1's index at its
// creation). The third home copies them all: found by the fault suite
// (jepsen-style shards-move-kill-target-leader: a node never streamed a
// twice-moved world from seq 1, "seq 227 at log index 10, before the
// incarnation 12").
func TestWorldMovedTwiceCopiesTheArchiveOfBothOldHomes(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	groups := bootGroups(t, m, 1, 2, 3)
	g1, g2, g3 := groups[1], groups[2], groups[3]
	// Group 1's log runs ahead: the world's incarnation there is beyond
	// every index group 2 reaches in this test.
	mustCreateWorld(t, g1, "other")
	for seq := uint64(1); seq <= 20; seq++ {
		act(t, g1, incr("other", "p1", seq, "e1"))
	}
	mustCreateWorld(t, g1, "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		act(t, g1, incr("arena", "p1", seq, "e1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := m.MoveWorld(ctx, "arena", 1, 2, nil)
	require.NoError(t, err)
	for seq := uint64(4); seq <= 6; seq++ {
		act(t, g2, incr("arena", "p1", seq, "e1"))
	}
	w, err := g2.World("arena")
	require.NoError(t, err)
	last := history(t, g2, "arena", first+1, w.Seq)
	require.Less(t, last[len(last)-1].Index, w.Incarnation, "the middle group's indexes stay below the incarnation")
	second, err := m.MoveWorld(ctx, "arena", 2, 3, nil)
	require.NoError(t, err)
	require.Equal(t, w.Seq, second)
	act(t, g3, incr("arena", "p1", 7, "e1"))
	got := history(t, g3, "arena", 1, second+1)
	require.Equal(t, history(t, g2, "arena", 1, second), got[:second], "every event before the second move, from both old homes")
	require.Equal(t, second+1, got[second].Seq)
}

// A move routed by a stale map can reach the export step at the world's
// new home: fencing it there, towards the shard it is on, would refuse
// every write to it for good. The export refuses (world_exists: the
// world is on the target already) and leaves the world writable. Found by the fault suite
// (shards-move-pause-source-leader: after the move completed, a call
// through the resumed old leader, whose map was stale, fenced w1 on its
// new home at seq 992 and the world took no write after that).
func TestFenceAndExportRefusesToFenceAWorldOnTheShardItMovesTo(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	groups := bootGroups(t, m, 1, 2)
	src, dst := groups[1], groups[2]
	mustCreateWorld(t, src, "arena")
	act(t, src, incr("arena", "p1", 1, "e1"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := m.MoveWorld(ctx, "arena", 1, 2, nil)
	require.NoError(t, err)

	_, err = FenceAndExportOn(ctx, dst, "arena", 2, nil)
	require.ErrorIs(t, err, fsm.ErrWorldExists)
	act(t, dst, incr("arena", "p1", 2, "e1")) // still writable at its new home
}
