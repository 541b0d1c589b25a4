package store

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func worldInfo(t *testing.T, s *Store, id string) (fsm.WorldInfo, bool) {
	t.Helper()
	w, err := s.World(id)
	if err != nil {
		require.ErrorIs(t, err, fsm.ErrUnknownWorld)
		return fsm.WorldInfo{}, false
	}
	return w, true
}

// TestDeleteWorldRemovesItsStateAndArchiveOnEveryReplica: after a delete
// no node holds the world or its archived events, an open subscription
// ends with unknown_world, and the world created again under the same id
// has a new incarnation and its own seq 1 everywhere.
func TestDeleteWorldRemovesItsStateAndArchiveOnEveryReplica(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "ann", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	first, ok := worldInfo(t, l, "arena")
	require.True(t, ok)
	require.NotZero(t, first.Incarnation)
	sub, err := l.Subscribe("arena", 1)
	require.NoError(t, err)
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Len(t, evs, 3)

	// The harness's members joined without reporting their versions: the
	// gate refuses the log version 6 command until they do.
	_, err = l.DeleteWorld(ctxT(t), "arena", 0)
	require.ErrorIs(t, err, ErrVersionGate)
	for _, s := range c.nodes {
		require.NoError(t, l.Join(ctxT(t), s.Self()))
	}
	_, err = l.DeleteWorld(ctxT(t), "arena", first.Incarnation+1)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "another incarnation")
	gone, err := l.DeleteWorld(ctxT(t), "arena", first.Incarnation)
	require.NoError(t, err)
	require.Equal(t, uint64(3), gone.Seq)

	_, err = sub.Next(ctxT(t))
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "the subscription ends")
	_, _, err = l.Act(ctxT(t), incr("arena", "ann", 4, "e", "c", 1))
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, err = l.Subscribe("arena", 1)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	c.waitReplicated()
	for _, s := range c.nodes {
		_, ok := worldInfo(t, s, "arena")
		require.False(t, ok, "node %s", s.cfg.ID)
		require.True(t, s.Deleted("arena", first.Incarnation), "node %s saw the incarnation deleted", s.cfg.ID)
		require.False(t, s.Deleted("arena", first.Incarnation+1), "node %s: only that incarnation", s.cfg.ID)
		require.Eventually(t, func() bool {
			_, held := s.Event("arena", 1)
			return !held
		}, 10*time.Second, 10*time.Millisecond, "node %s archive", s.cfg.ID)
	}

	mustCreateWorld(t, l, "arena")
	again, ok := worldInfo(t, l, "arena")
	require.True(t, ok)
	require.Greater(t, again.Incarnation, first.Incarnation)
	ev, _, err := l.Act(ctxT(t), incr("arena", "bob", 1, "e", "c", 5))
	require.NoError(t, err)
	require.Equal(t, uint64(1), ev.Seq)
	c.waitReplicated()
	for _, s := range c.nodes {
		wi, ok := worldInfo(t, s, "arena")
		require.True(t, ok)
		require.Equal(t, again.Incarnation, wi.Incarnation, "node %s: one incarnation everywhere", s.cfg.ID)
		require.Eventually(t, func() bool {
			got, held := s.Event("arena", 1)
			return held && got.Player == "bob"
		}, 10*time.Second, 10*time.Millisecond, "node %s holds the new seq 1", s.cfg.ID)
		_, held := s.Event("arena", 2)
		require.False(t, held, "node %s: nothing of the old incarnation", s.cfg.ID)
	}
	c.ensureSameHashes("arena")
	_, err = l.DeleteWorld(ctxT(t), "", 0)
	require.ErrorIs(t, err, fsm.ErrMalformed)
}

// TestExpireIdleWorldsDeletesWorldsIdleLongerThanTheirRule: only the world
// whose rules set idle_expiry goes, once idle for longer than it.
func TestExpireIdleWorldsDeletesWorldsIdleLongerThanTheirRule(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "lasting", fsm.Rules{}))
	require.NoError(t, l.CreateWorld(ctxT(t), "brief", fsm.Rules{Schema: fsm.Schema{IdleExpiry: fsm.Duration(50 * time.Millisecond)}}))
	var deleted []fsm.WorldInfo
	require.Eventually(t, func() bool {
		d, err := l.ExpireIdleWorlds(ctxT(t))
		require.NoError(t, err)
		deleted = append(deleted, d...)
		return len(deleted) > 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, deleted, 1)
	require.Equal(t, "brief", deleted[0].ID)
	_, ok := worldInfo(t, l, "brief")
	require.False(t, ok)
	_, ok = worldInfo(t, l, "lasting")
	require.True(t, ok)
}

// TestAFollowerThatMissedADeleteDropsTheOldIncarnationFromItsArchive: a
// follower down while a world was deleted (and another deleted and
// created again) installs a snapshot: its archive then holds neither the
// deleted world's events nor the old incarnation's, and archives the new
// incarnation's events from seq 1's successors on.
func TestAFollowerThatMissedADeleteDropsTheOldIncarnationFromItsArchive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, func(cfg *Config) { cfg.TrailingLogs = 4; cfg.SnapshotThreshold = 16 })
	l := c.leader()
	for _, s := range c.nodes {
		require.NoError(t, l.Join(ctxT(t), s.Self()))
	}
	mustCreateWorld(t, l, "arena")
	mustCreateWorld(t, l, "gone")
	for seq := uint64(1); seq <= 10; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "old", seq, "e", "c", 1))
		require.NoError(t, err)
		_, _, err = l.Act(ctxT(t), incr("gone", "old", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	c.waitReplicated()
	lag := (indexOf(c, l) + 1) % 3
	s := c.nodes[lag]
	require.Eventually(t, func() bool {
		_, a := s.Event("arena", 10)
		_, g := s.Event("gone", 10)
		return a && g
	}, 10*time.Second, 10*time.Millisecond, "the follower archived both worlds")
	c.crash(lag)

	_, err := l.DeleteWorld(ctxT(t), "gone", 0)
	require.NoError(t, err)
	_, err = l.DeleteWorld(ctxT(t), "arena", 0)
	require.NoError(t, err)
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 40; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "new", seq, "e", "c", 1))
		require.NoError(t, err)
	}
	_, err = l.Snapshot(ctxT(t))
	require.NoError(t, err)
	s = c.restart(lag)
	c.ensureSameHashes("arena")
	require.Eventually(t, func() bool {
		ev, held := s.Event("arena", 1)
		_, gone := s.Event("gone", 1)
		return (!held || ev.Player == "new") && !gone
	}, 10*time.Second, 10*time.Millisecond, "the old incarnation's and the deleted world's events are gone")

	ev, _, err := l.Act(ctxT(t), incr("arena", "new", 41, "e", "c", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(41), ev.Seq)
	require.Eventually(t, func() bool {
		got, held := s.Event("arena", 41)
		return held && got.Player == "new"
	}, 10*time.Second, 10*time.Millisecond, "the new incarnation's events are archived, not skipped")
}

// blockedArchive returns an archive whose first write waits for release
// (inWrite closes when it does) and fails, and whose later writes succeed.
func blockedArchive(t *testing.T) (a *archive, inWrite, release chan struct{}) {
	a = openTestArchive(t)
	inWrite, release = make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	fail := func() error {
		if calls.Add(1) == 1 {
			close(inWrite)
			<-release
			return errors.New("no space left on device")
		}
		return nil
	}
	a.failWrite.Store(&fail)
	return a, inWrite, release
}

// TestADeleteDuringAFailingArchiveWriteKeepsTheDeletedEventsOut: events
// of a world whose write was under way and fails are not written on the
// retry when the world was deleted meanwhile; the other worlds' are.
func TestADeleteDuringAFailingArchiveWriteKeepsTheDeletedEventsOut(t *testing.T) {
	t.Parallel()
	a, inWrite, release := blockedArchive(t)
	f := newFeed(a, 16, slog.New(slog.DiscardHandler))
	t.Cleanup(f.close)
	f.publish(3, append(evs("gone", 1, 3), evs("kept", 1, 3)...))
	<-inWrite
	f.drop("gone") // while the batch holding its events is being written
	close(release)
	require.Eventually(t, func() bool { return f.waitArchived(3) == nil }, 30*time.Second, 10*time.Millisecond)
	got, err := a.read("gone", 1, 10)
	require.NoError(t, err)
	require.Empty(t, got, "the deleted world's events")
	got, err = a.read("kept", 1, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, seqs(t, got))
}

// TestARestoreDuringAFailingArchiveWriteKeepsStaleEventsOut: the same for
// a restore whose state lacks a world and holds another in a later
// incarnation.
func TestARestoreDuringAFailingArchiveWriteKeepsStaleEventsOut(t *testing.T) {
	t.Parallel()
	a, inWrite, release := blockedArchive(t)
	f := newFeed(a, 16, slog.New(slog.DiscardHandler))
	t.Cleanup(f.close)
	f.publish(3, append(append(evs("gone", 1, 3), evs("old", 1, 3)...), evs("kept", 1, 3)...))
	<-inWrite
	f.reset([]fsm.WorldInfo{{ID: "old", Seq: 0, Incarnation: 10}, {ID: "kept", Seq: 3, Incarnation: 1}}, 10)
	close(release)
	require.Eventually(t, func() bool { return f.waitArchived(10) == nil }, 30*time.Second, 10*time.Millisecond)
	for _, w := range []string{"gone", "old"} {
		got, err := a.read(w, 1, 10)
		require.NoError(t, err)
		require.Empty(t, got, w)
	}
	got, err := a.read("kept", 1, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, seqs(t, got))
}

// TestArchiveReconcileKeepsOnlyTheRestoredIncarnations: reconcile drops
// worlds the restored state lacks and those whose oldest event precedes
// their incarnation; it keeps the current incarnation's, worlds from
// before incarnations (0) and empty buckets.
func TestArchiveReconcileKeepsOnlyTheRestoredIncarnations(t *testing.T) {
	t.Parallel()
	a := openTestArchive(t)
	require.NoError(t, a.write(append(append(append(evs("absent", 1, 2), evs("old", 1, 2)...), evs("cur", 5, 6)...), evs("legacy", 1, 2)...)))
	require.NoError(t, a.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.Bucket(eventsBucket).CreateBucket([]byte("empty"))
		return err
	}))
	require.NoError(t, a.reconcile(map[string]uint64{"old": 3, "cur": 5, "legacy": 0, "empty": 9}))
	for w, want := range map[string][]uint64{"absent": {}, "old": {}, "legacy": {1, 2}} {
		got, err := a.read(w, 1, 10)
		require.NoError(t, err)
		require.Equal(t, want, seqs(t, got), w)
	}
	got, err := a.read("cur", 5, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{5, 6}, seqs(t, got), "the current incarnation's, from its index on")
	require.NoError(t, a.db.View(func(tx *bolt.Tx) error {
		require.NotNil(t, tx.Bucket(eventsBucket).Bucket([]byte("empty")), "an empty bucket names no older incarnation")
		return nil
	}))
	require.NoError(t, a.deleteWorlds([]string{"cur", "never-there"}), "a world without events is no error")
	got, err = a.read("cur", 5, 10)
	require.NoError(t, err)
	require.Empty(t, got)
}

// TestARestoreThatMissedADeleteEndsTheWorldsSubscriptions: a node whose
// subscription follows a world and that then installs a snapshot holding
// the world in a later incarnation (or not at all) ends the subscription
// instead of feeding it the other incarnation's events; worlds the
// snapshot holds as they were keep theirs.
func TestARestoreThatMissedADeleteEndsTheWorldsSubscriptions(t *testing.T) {
	t.Parallel()
	batch := func(f *fsm.FSM, index uint64, cmds ...fsm.Command) {
		t.Helper()
		for _, r := range f.Apply(index, fsm.EncodeBatch(&fsm.Batch{Time: int64(index), Commands: cmds})) {
			require.NoError(t, r.Err)
		}
	}
	create := func(id string) fsm.Command {
		return fsm.Command{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: id}}
	}
	act := func(world string, seq uint64) fsm.Command {
		return fsm.Command{Kind: fsm.CmdAction, Action: incr(world, "p", seq, "e", "c", 1)}
	}
	// The leader's history: arena, kept and gone created; arena deleted
	// and created again, gone deleted.
	leader, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	batch(leader, 1, create("arena"), create("kept"), create("gone"))
	batch(leader, 2, act("arena", 1), act("kept", 1), act("gone", 1))
	batch(leader, 3, fsm.Command{Kind: fsm.CmdDeleteWorld, Delete: &fsm.WorldDelete{World: "arena"}},
		fsm.Command{Kind: fsm.CmdDeleteWorld, Delete: &fsm.WorldDelete{World: "gone"}}, create("arena"))
	batch(leader, 4, act("arena", 2), act("kept", 2))
	var snap bytes.Buffer
	_, err = leader.Snapshot().WriteTo(&snap)
	require.NoError(t, err)

	// This node applied up to index 2 only, with a subscription per world.
	local, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	fd := newFeed(openTestArchive(t), 16, slog.New(slog.DiscardHandler))
	t.Cleanup(fd.close)
	a := newFSMAdapter(local, fd)
	a.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: fsm.EncodeBatch(&fsm.Batch{Time: 1, Commands: []fsm.Command{create("arena"), create("kept"), create("gone")}})},
		{Index: 2, Type: raft.LogCommand, Data: fsm.EncodeBatch(&fsm.Batch{Time: 2, Commands: []fsm.Command{act("arena", 1), act("kept", 1), act("gone", 1)}})},
	})
	subs := map[string]*Subscription{}
	for _, w := range []string{"arena", "kept", "gone"} {
		subs[w] = &Subscription{f: fd, world: w, next: 3}
	}
	require.NoError(t, a.Restore(io.NopCloser(&snap)))
	for _, w := range []string{"arena", "gone"} {
		_, err := subs[w].Next(ctxT(t))
		require.ErrorIs(t, err, fsm.ErrUnknownWorld, w)
	}
	// kept is the same world: its subscription goes on with its next event.
	a.ApplyBatch([]*raft.Log{{Index: 5, Type: raft.LogCommand, Data: fsm.EncodeBatch(&fsm.Batch{Time: 5, Commands: []fsm.Command{act("kept", 3)}})}})
	evs, err := subs["kept"].Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, uint64(3), evs[0].Seq)
	require.Equal(t, "kept", evs[0].World)
}
