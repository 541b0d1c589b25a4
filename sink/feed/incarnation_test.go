package feed_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/stretchr/testify/require"
)

// legacy returns the incarnation of a world from before incarnations
// whose event 1 has leader time t.
func legacy(t *testing.T, time int64) int64 {
	t.Helper()
	inc, ok := feed.FirstEventIncarnation(time)
	require.True(t, ok)
	return inc
}

func TestIncarnationIsTheWorldsCreationIndex(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("other", 2, 500)
	src.Add("w", 3, 1000)
	info, err := src.World("w")
	require.NoError(t, err)
	require.NotZero(t, info.Incarnation)
	inc, ok := feed.Incarnation(src, "w")
	require.True(t, ok)
	require.Equal(t, int64(info.Incarnation), inc)
	ev1, _ := src.Event("w", 1)
	require.NotEqual(t, ev1.Time, inc, "not the leader time of event 1")

	_, ok = feed.Incarnation(src, "missing")
	require.False(t, ok)
}

func TestIncarnationOfAWorldFromBeforeIncarnationsIsItsFirstEventsTimeNegated(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 3, 1000)
	src.SetIncarnation("w", 0)
	inc, ok := feed.Incarnation(src, "w")
	require.True(t, ok)
	require.Equal(t, int64(-1001), inc, "negative: never a creation index")

	src.SetLow("w", 2)
	_, ok = feed.Incarnation(src, "w")
	require.False(t, ok, "unknown once event 1 is pruned")

	for _, bad := range []int64{0, -5} {
		_, ok := feed.FirstEventIncarnation(bad)
		require.False(t, ok, "a time that could equal a creation index once negated: %d", bad)
	}
}

func TestFollowerResumesFromTheStoredPositionOfTheIncarnationItHolds(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 8, 1000)
	inc := src.Incarnation("w")
	tg := &target{stored: []feed.Position{{Incarnation: inc + 5000, Seq: 40}, {Incarnation: inc, Seq: 5}}}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 8), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{inc, 6}, {inc, 7}, {inc, 8}}, tg.deliveries())
	require.Equal(t, 1, tg.verified, "the stored position is checked against the event at its seq")
}

// A cluster rebuilt from empty data dirs creates its worlds at the same
// indexes as the old one: a sink that can tell (sink/pg) refuses to go on
// from the old cluster's position.
func TestFollowerRetriesAPositionOfTheHeldIncarnationItsTargetRefuses(t *testing.T) {
	for name, n := range map[string]int{"the node holds the stored seq": 8, "the node is behind the stored seq": 3} {
		t.Run(name, func(t *testing.T) {
			src := sinktest.NewSource()
			src.Add("w", n, 1000)
			inc := src.Incarnation("w")
			refused := errors.New("test: another world's events")
			tg := &target{stored: []feed.Position{{Incarnation: inc, Seq: 5}}, verify: refused}
			fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
			require.Eventually(t, func() bool { return len(tg.failures()) >= 2 }, 10*time.Second, time.Millisecond)
			fl.stop()
			require.Empty(t, tg.deliveries())
			require.ErrorIs(t, tg.failures()[0], refused)
		})
	}
}

func TestFollowerStartsANewIncarnationFromSeqOne(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 10, 1000)
	old := src.Incarnation("w")
	src.Recreate("w", 3, 2000)
	inc := src.Incarnation("w")
	tg := &target{stored: []feed.Position{{Incarnation: old, Seq: 10}}} // the old incarnation reached seq 10
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 3), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 3)
}

// Positions stored by the sinks' earlier definition (the leader time of
// event 1) name no creation index: the world is exported again from seq
// 1 under its creation index, none of its events skipped.
func TestFollowerRestartsAPositionStoredUnderTheEarlierDefinitionFromSeqOne(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 8, 1000)
	inc := src.Incarnation("w")
	ev1, _ := src.Event("w", 1)
	tg := &target{stored: []feed.Position{{Incarnation: ev1.Time, Seq: 5}}}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 8), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 8)
}

func TestFollowerAdoptsTheHeldIncarnationForAPositionStoredWithoutOne(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 6, 1000)
	inc := src.Incarnation("w")
	tg := &target{stored: []feed.Position{{Seq: 4}}}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 6), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{inc, 5}, {inc, 6}}, tg.deliveries())
}

func TestFollowerRecreatedWhileFollowedStartsTheNewIncarnationOver(t *testing.T) {
	for name, n := range map[string]int{"new incarnation passes the old position": 14, "new incarnation behind it": 3} {
		t.Run(name, func(t *testing.T) {
			src := sinktest.NewSource()
			src.Add("w", 10, 1000)
			old := src.Incarnation("w")
			tg := &target{}
			fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
			require.Eventually(t, at(tg, old, 10), 10*time.Second, time.Millisecond)
			src.Recreate("w", n, 2000)
			inc := src.Incarnation("w")
			require.Greater(t, inc, old)
			require.Eventually(t, at(tg, inc, uint64(n)), 10*time.Second, time.Millisecond)
			fl.stop()
			got := tg.deliveries()
			require.Len(t, got, 10+n)
			requireOnce(t, &target{delivered: got[10:]}, inc, n)
			for _, d := range got {
				require.True(t, d.inc == inc || d.seq <= 10, "no event of the new incarnation is delivered as the old one's: %+v", d)
			}
		})
	}
}

func TestFollowerWorldFromBeforeIncarnationsRecreatedGetsItsCreationIndex(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 4, 1000)
	src.SetIncarnation("w", 0)
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, -1001, 4), 10*time.Second, time.Millisecond)
	src.Recreate("w", 2, 1000) // the same leader times: only the creation index tells them apart
	inc := src.Incarnation("w")
	require.Positive(t, inc)
	require.Eventually(t, at(tg, inc, 2), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{-1001, 1}, {-1001, 2}, {-1001, 3}, {-1001, 4}, {inc, 1}, {inc, 2}}, tg.deliveries())
}

func TestFollowerDeletedWorldIsStoppedAndFollowedAgainOnceCreated(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 4, 1000)
	old := src.Incarnation("w")
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, old, 4), 10*time.Second, time.Millisecond)
	src.Delete("w")
	require.Eventually(t, func() bool { return fl.count(fl.stopped, "w") == 1 }, 10*time.Second, time.Millisecond)
	src.Add("w", 2, 3000)
	inc := src.Incarnation("w")
	require.NotEqual(t, old, inc)
	require.Eventually(t, at(tg, inc, 2), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{old, 1}, {old, 2}, {old, 3}, {old, 4}, {inc, 1}, {inc, 2}}, tg.deliveries())
}

func TestFollowerKnowsTheIncarnationOfAWorldWithNoEventYet(t *testing.T) {
	src := sinktest.NewSource()
	src.Update(func() { src.Edit("w") }) // created, no event yet
	inc := src.Incarnation("w")
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { tg.mu.Lock(); defer tg.mu.Unlock(); return len(tg.resumed) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, feed.Position{Incarnation: inc}, tg.resumed[0])
	src.Add("w", 3, 7000)
	require.Eventually(t, at(tg, inc, 3), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 3)
}

func TestFollowerLearnsTheIncarnationOfAWorldFromBeforeIncarnationsFromItsFirstEvent(t *testing.T) {
	src := sinktest.NewSource()
	src.Update(func() { src.Edit("w").Incarnation = 0 }) // no event yet
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { tg.mu.Lock(); defer tg.mu.Unlock(); return len(tg.resumed) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, feed.Position{}, tg.resumed[0])
	src.Add("w", 3, 7000)
	require.Eventually(t, at(tg, legacy(t, 7001), 3), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, -7001, 3)
}

func TestFollowerRefusesAFeedThatDoesNotStartAtSeqOne(t *testing.T) {
	for name, first := range map[string]*fsm.Event{
		"seq 2 first":            {World: "w", Seq: 2, Time: 1002},
		"event 1 without a time": {World: "w", Seq: 1, Time: 0},
	} {
		t.Run(name, func(t *testing.T) {
			src := sinktest.NewSource()
			src.Update(func() { src.Edit("w").Incarnation = 0 })
			tg := &target{}
			fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
			require.Eventually(t, func() bool { tg.mu.Lock(); defer tg.mu.Unlock(); return len(tg.resumed) == 1 }, 10*time.Second, time.Millisecond)
			// The subscription from seq 1 answers first.
			src.Update(func() { src.Edit("w").Order = []*fsm.Event{first} })
			require.Eventually(t, func() bool { return len(tg.failures()) > 0 }, 10*time.Second, time.Millisecond)
			src.Add("w", 2, 1000)
			require.Eventually(t, at(tg, -1001, 2), 10*time.Second, time.Millisecond)
			fl.stop()
			requireOnce(t, tg, -1001, 2)
			require.NotEmpty(t, tg.failures())
			require.ErrorIs(t, tg.failures()[0], feed.ErrFeedOrder)
		})
	}
}

func TestFollowerRefusesEventsThatPrecedeTheIncarnation(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 3, 1000)
	ev3, _ := src.Event("w", 3)
	src.SetIncarnation("w", ev3.Index) // created after its own events: never expected
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { return len(tg.failures()) >= 2 }, 10*time.Second, time.Millisecond)
	fl.stop()
	require.Empty(t, tg.deliveries())
	require.ErrorIs(t, tg.failures()[0], feed.ErrFeedOrder)
}

func TestFollowerWithEventOnePrunedTrustsTheNewestStoredPositionOnceVerified(t *testing.T) {
	// -1001: stored by this gsd; 1001: by the earlier definition (event
	// 1's leader time), which cannot be told apart from the world here.
	for _, inc := range []int64{-1001, 1001} {
		t.Run(strconv.FormatInt(inc, 10), func(t *testing.T) {
			src := sinktest.NewSource()
			src.Add("w", 8, 1000)
			src.SetIncarnation("w", 0)
			src.SetLow("w", 4)
			tg := &target{stored: []feed.Position{{Incarnation: inc, Seq: 5}, {Incarnation: -900, Seq: 2}}}
			fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
			require.Eventually(t, at(tg, inc, 8), 10*time.Second, time.Millisecond)
			fl.stop()
			require.Equal(t, []delivery{{inc, 6}, {inc, 7}, {inc, 8}}, tg.deliveries())
			require.Equal(t, 1, tg.verified)
			require.Empty(t, tg.failures())
		})
	}
}

func TestFollowerRetriesAPositionItsTargetRefuses(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 8, 1000)
	src.SetIncarnation("w", 0)
	src.SetLow("w", 4)
	refused := errors.New("test: another world's events")
	tg := &target{stored: []feed.Position{{Incarnation: -1001, Seq: 5}}, verify: refused}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { return len(tg.failures()) >= 2 }, 10*time.Second, time.Millisecond)
	fl.stop()
	require.Empty(t, tg.deliveries())
	require.ErrorIs(t, tg.failures()[0], refused)
}
