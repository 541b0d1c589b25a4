package auditor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Under a shard map this node's map and its groups catch up
// independently: a world missing from the list (or listed in another
// incarnation) may live on, so its tree is never buried without
// evidence of its deletion (Placement.Deleted); it is kept, no longer
// followed, and goes on once listed again.

// (a) Restarted after a move 1→2 done while it was down, its groups'
// first catch-up batches stop before the fence and the import: the
// world is listed nowhere yet, and the map places it on a group this
// node runs (not away). Nothing is buried; the import lists it again.
func TestARestartedNodeWhoseGroupsLagBuriesNoLiveWorld(t *testing.T) {
	src, st, logs := newPlaced(), newStores(), &syncBuf{}
	cfg, v := signingConfig(t, logs)
	src.homes["arena"] = 1
	src.add("arena", 3)
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	stop := run(a)
	waitSize(t, a, "arena", 3)
	before, err := a.Sign("arena")
	require.NoError(t, err)
	stop()

	src.hide("arena", true)
	src.move("arena", 2)
	a, err = New(cfg, src, st)
	require.NoError(t, err)
	start(t, a)
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 0), "not listed yet is not deleted")
	require.Zero(t, a.Stats().Worlds)

	src.add("arena", 2) // the import, and events at the new home
	src.hide("arena", false)
	waitSize(t, a, "arena", 5)
	extends(t, a, src.source, before, v)
	require.Empty(t, st.tomb("arena", 0))
}

// (b) A node behind on its groups but not on the shard map applies the
// map's move before its groups' fence and import: the world leaves the
// list and its follower on the old group stops (one follower per tree);
// the import lists it again and it goes on at the new home; when the old
// group drops it later (its feed there ends with unknown_world), nothing
// is buried.
func TestAMapAheadOfItsGroupsBuriesNoLiveWorld(t *testing.T) {
	logs := &syncBuf{}
	cfg, v := signingConfig(t, logs)
	src, st, a := followedOnGroup1(t, cfg, 3)
	before, err := a.Sign("arena")
	require.NoError(t, err)

	src.hide("arena", true) // the map says 2, group 2 has not imported it
	require.Eventually(t, func() bool { return a.Stats().Worlds == 0 }, 10*time.Second, time.Millisecond, "its follower stops")
	require.Contains(t, logs.String(), "not listed on this node now")
	_, err = a.Log("arena")
	require.ErrorContains(t, err, "is not listed on this node now")
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 0))

	src.move("arena", 2) // the fence and the import apply
	src.add("arena", 2)
	src.hide("arena", false)
	waitSize(t, a, "arena", 5)
	src.endFeeds("arena") // group 1 drops the fenced world
	src.add("arena", 1)
	waitSize(t, a, "arena", 6)
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 0), "the drop after a move is no deletion")
	extends(t, a, src.source, before, v)
}

// (c) A node whose map is behind its groups (restored from an older meta
// snapshot): group 1 already dropped the world that moved to group 2,
// while the map still places it on group 1. Nothing is buried; once the
// map catches up the tree goes on.
func TestAMapBehindItsGroupsBuriesNoLiveWorld(t *testing.T) {
	src, st, a := followedOnGroup1(t, testConfig(&syncBuf{}), 3)

	src.hide("arena", true) // group 1 dropped it; the map says 1
	src.endFeeds("arena")
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 0))

	src.move("arena", 2) // the map catches up: group 2 of this node holds it
	src.add("arena", 1)
	src.hide("arena", false)
	waitSize(t, a, "arena", 4)
	require.Empty(t, st.tomb("arena", 0))
}

// A world listed in another incarnation without evidence that the one
// followed was deleted keeps that one's tree aside, unburied, and follows
// the new one; listed again, the kept one goes on; the other is buried
// once known deleted.
func TestAnotherIncarnationListedIsNoEvidenceOfADeletion(t *testing.T) {
	src, st, logs := newPlaced(), newStores(), &syncBuf{}
	src.add("arena", 3)
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, a)
	waitSize(t, a, "arena", 3)

	src.relist("arena", 9)
	require.Eventually(t, func() bool {
		l, err := a.LogOf("arena", 9)
		return err == nil && l.Size() == 3
	}, 10*time.Second, time.Millisecond)
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 0))
	l, err := a.LogOf("arena", 0)
	require.NoError(t, err)
	require.Equal(t, int64(3), l.Size())

	src.relist("arena", 0)
	src.add("arena", 1)
	waitSize(t, a, "arena", 4)
	l, err = a.Log("arena")
	require.NoError(t, err)
	require.Same(t, l, must(a.LogOf("arena", 0)), "one log per tree")
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 9))

	src.mu.Lock()
	src.deleted[tree{"arena", 9}] = true
	src.mu.Unlock()
	require.Eventually(t, func() bool { return st.tomb("arena", 9) != "" }, 10*time.Second, time.Millisecond)
	require.Empty(t, st.tomb("arena", 0))
}

// followedOnGroup1 runs an auditor with cfg, until the test ends, over a
// placed source whose arena lives on group 1 with n events, once it
// logged them.
func followedOnGroup1(t *testing.T, cfg Config, n int) (*placed, *stores, *Auditor) {
	t.Helper()
	src, st := newPlaced(), newStores()
	src.homes["arena"] = 1
	src.add("arena", n)
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	start(t, a)
	waitSize(t, a, "arena", int64(n))
	return src, st, a
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A lookup before the node's world list settled buries nothing and
// follows nothing: it answers ErrNotReady. Here the snapshot still lists
// incarnation 1 of a world whose incarnation 2, created after it, has a
// tree: following 1 would bury 2's live tree.
func TestALookupBeforeTheSourceSettledBuriesNothing(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.recreate("arena", 1)
	loggedOnce(t, src, st, logs, map[string]int{"arena": 2})
	src.recreate("arena", 2)
	loggedOnce(t, src, st, logs, map[string]int{"arena": 3})
	require.Empty(t, st.tomb("arena", 2))

	src.relist("arena", 1) // the snapshot's state, before the replay
	us := &unsettled{source: src}
	a, err := New(testConfig(logs), us, st)
	require.NoError(t, err)
	start(t, a)
	require.Eventually(t, func() bool { return us.asked.Load() > 3 }, 10*time.Second, time.Millisecond)
	for _, look := range []func() error{
		func() error { _, err := a.Checkpoint("arena"); return err },
		func() error { _, err := a.Log("arena"); return err },
		func() error { _, err := a.LogOf("arena", 2); return err },
		func() error { _, err := a.CheckpointOf("arena", 1); return err },
	} {
		err := look()
		require.ErrorIs(t, err, ErrNotReady)
		require.ErrorContains(t, err, "still replaying")
	}
	require.Empty(t, st.tomb("arena", 2), "a live incarnation's tree")
	require.False(t, a.Stats().Settled)
	require.Contains(t, logs.String(), "audit waits for this node's world list")

	src.relist("arena", 2) // replayed
	us.ready.Store(true)
	waitSize(t, a, "arena", 3)
	require.True(t, a.Stats().Settled)
	require.Empty(t, st.tomb("arena", 2))
}

// A world deleted at its new home before this node's follower left the
// old one (the move and the delete seen in one scan): that follower,
// whose feed at the old group holds nothing after the fence, is stopped
// and the tree buried, rather than waiting there for ever.
func TestAWorldDeletedRightAfterItMovedIsBuried(t *testing.T) {
	src, st, _ := followedOnGroup1(t, testConfig(&syncBuf{}), 3)

	src.mu.Lock() // all at once: moved to group 2, deleted there
	src.fences[[2]any{"arena", uint64(1)}] = 3
	src.homes["arena"] = 2
	src.hidden["arena"] = true
	src.deleted[tree{"arena", 0}] = true
	src.mu.Unlock()
	require.Eventually(t, func() bool { return st.tomb("arena", 0) != "" }, 10*time.Second, time.Millisecond)
}
