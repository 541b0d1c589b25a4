package feed_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/stretchr/testify/require"
)

func TestFollowerResumesFromTheStoredPositionOfTheIncarnationItHolds(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 8, 1000)
	tg := &target{stored: []feed.Position{{Incarnation: 5000, Seq: 40}, {Incarnation: 1001, Seq: 5}}}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 8), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{1001, 6}, {1001, 7}, {1001, 8}}, tg.deliveries())
}

func TestFollowerStartsANewIncarnationFromSeqOne(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 3, 2000) // the world re-created: its old incarnation reached seq 10
	tg := &target{stored: []feed.Position{{Incarnation: 1001, Seq: 10}}}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 2001, 3), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 2001, 3)
}

func TestFollowerAdoptsTheHeldIncarnationForAPositionStoredWithoutOne(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 6, 1000)
	tg := &target{stored: []feed.Position{{Seq: 4}}}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 6), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{1001, 5}, {1001, 6}}, tg.deliveries())
}

func TestFollowerRecreatedWhileFollowedStartsTheNewIncarnationOver(t *testing.T) {
	for name, n := range map[string]int{"new incarnation passes the old position": 14, "new incarnation behind it": 3} {
		t.Run(name, func(t *testing.T) {
			src := sinktest.NewSource()
			src.Add("w", 10, 1000)
			tg := &target{}
			fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
			require.Eventually(t, at(tg, 1001, 10), 10*time.Second, time.Millisecond)
			src.Recreate("w", n, 2000)
			require.Eventually(t, at(tg, 2001, uint64(n)), 10*time.Second, time.Millisecond)
			fl.stop()
			got := tg.deliveries()
			require.Len(t, got, 10+n)
			requireOnce(t, &target{delivered: got[10:]}, 2001, n)
			for _, d := range got {
				require.True(t, d.inc == 2001 || d.seq <= 10, "no event of the new incarnation is delivered as the old one's: %+v", d)
			}
		})
	}
}

func TestFollowerDeletedWorldIsStoppedAndFollowedAgainOnceCreated(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 4, 1000)
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 4), 10*time.Second, time.Millisecond)
	src.Delete("w")
	require.Eventually(t, func() bool { return fl.count(fl.stopped, "w") == 1 }, 10*time.Second, time.Millisecond)
	src.Add("w", 2, 3000)
	require.Eventually(t, at(tg, 3001, 2), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{1001, 1}, {1001, 2}, {1001, 3}, {1001, 4}, {3001, 1}, {3001, 2}}, tg.deliveries())
}

func TestFollowerLearnsTheIncarnationFromTheWorldsFirstEvent(t *testing.T) {
	src := sinktest.NewSource()
	src.Update(func() { src.World("w") }) // created, no event yet
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { tg.mu.Lock(); defer tg.mu.Unlock(); return len(tg.resumed) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, feed.Position{}, tg.resumed[0])
	src.Add("w", 3, 7000)
	require.Eventually(t, at(tg, 7001, 3), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 7001, 3)
}

func TestFollowerRefusesAFeedThatDoesNotStartAtSeqOne(t *testing.T) {
	src := sinktest.NewSource()
	src.Update(func() { src.World("w") })
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { tg.mu.Lock(); defer tg.mu.Unlock(); return len(tg.resumed) == 1 }, 10*time.Second, time.Millisecond)
	// The subscription from seq 1 answers seq 2 first.
	src.Update(func() { src.World("w").Order = []*fsm.Event{{World: "w", Seq: 2, Time: 1002}} })
	require.Eventually(t, func() bool { return len(tg.failures()) > 0 }, 10*time.Second, time.Millisecond)
	src.Add("w", 2, 1000)
	require.Eventually(t, at(tg, 1001, 2), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 1001, 2)
	require.NotEmpty(t, tg.failures())
	require.ErrorIs(t, tg.failures()[0], feed.ErrFeedOrder)
}

func TestFollowerWithEventOnePrunedTrustsTheNewestStoredPositionOnceVerified(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 8, 1000)
	src.SetLow("w", 4)
	tg := &target{stored: []feed.Position{{Incarnation: 1001, Seq: 5}, {Incarnation: 900, Seq: 2}}}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 8), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, []delivery{{1001, 6}, {1001, 7}, {1001, 8}}, tg.deliveries())
	require.Equal(t, 1, tg.verified)
}

func TestFollowerRetriesAPositionItsTargetRefuses(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 8, 1000)
	src.SetLow("w", 4)
	refused := errors.New("test: another world's events")
	tg := &target{stored: []feed.Position{{Incarnation: 1001, Seq: 5}}, verify: refused}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { return len(tg.failures()) >= 2 }, 10*time.Second, time.Millisecond)
	fl.stop()
	require.Empty(t, tg.deliveries())
	require.ErrorIs(t, tg.failures()[0], refused)
}
