package feed_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

func TestFollowerRetriesAFailedDeliveryAndStoresThePositionOnlyAfterSuccess(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 10, 1000)
	inc := src.Incarnation("w")
	tg := &target{failNext: 3}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 10), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 10)
	fails := tg.failures()
	require.Len(t, fails, 3)
	for _, err := range fails {
		require.ErrorIs(t, err, errDeliver)
	}
	// Every session after a failure resumed from the stored position,
	// which had not moved past what was delivered.
	require.Len(t, tg.resumed, 4)
	for _, p := range tg.resumed {
		require.Equal(t, feed.Position{Incarnation: inc}, p)
	}
}

func TestFollowerDeliversBatchesOfAtMostBatchSizeInOrder(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 30, 1000)
	inc := src.Incarnation("w")
	tg := &target{}
	cfg := testConfig()
	cfg.BatchSize = 7
	fl := startFollower(t, cfg, src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 30), 10*time.Second, time.Millisecond)
	src.Add("w", 5, 1000)
	require.Eventually(t, at(tg, inc, 35), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 35)
	require.Empty(t, tg.failures())
}

func TestFollowerCancelledMidBatchReturnsWithoutMovingThePosition(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 3, 1000)
	tg := &target{block: true, blocked: make(chan struct{})}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	<-tg.blocked
	fl.stop() // returns only once the loop ended
	require.Equal(t, feed.Position{}, tg.position())
	require.Empty(t, tg.deliveries())
	require.Empty(t, tg.failures(), "a cancel is not a failure")
	require.Equal(t, 1, tg.ends, "the session's end is told to the target")
}

func TestFollowerStopsWhenLeadershipIsLostAndResumesWhenItComesBack(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 5, 1000)
	inc := src.Incarnation("w")
	src.Add("other", 5, 1000)
	src.SetLeads("other", false)
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 5), 10*time.Second, time.Millisecond)
	require.Zero(t, fl.count(fl.started, "other"), "a world another node leads is not followed")

	src.SetLeads("w", false)
	require.Eventually(t, func() bool { return fl.count(fl.stopped, "w") == 1 }, 10*time.Second, time.Millisecond)
	src.Add("w", 5, 1000)
	src.SetLeads("w", true)
	require.Eventually(t, at(tg, inc, 10), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, 2, fl.count(fl.started, "w"))
	requireOnce(t, tg, inc, 10)
}

func TestFollowerDeliversNothingOnceLeadershipIsLostBetweenChecks(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 5, 1000)
	tg := &target{}
	cfg := testConfig()
	cfg.CheckInterval = time.Hour // only the first check runs
	fl := startFollower(t, cfg, &losing{Source: src, after: 1}, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { return len(tg.failures()) >= 2 }, 10*time.Second, time.Millisecond)
	fl.stop()
	require.Empty(t, tg.deliveries())
	for _, err := range tg.failures() {
		require.ErrorIs(t, err, feed.ErrNotLeading)
	}
}

func TestFollowerOnEveryNodeIgnoresLeadership(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 5, 1000)
	inc := src.Incarnation("w")
	src.SetLeads("w", false)
	tg := &target{}
	cfg := testConfig()
	cfg.AllNodes = true
	fl := startFollower(t, cfg, src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 5), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 5)
}

func TestFollowerFollowsOnlySelectedWorlds(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("a", 2, 1000)
	inc := src.Incarnation("a")
	src.Add("b", 2, 1000)
	cfg := testConfig()
	cfg.Worlds = []string{"a"}
	fl := startFollower(t, cfg, src, nil)
	require.Eventually(t, func() bool { tg := fl.target("a"); return tg != nil && at(tg, inc, 2)() }, 10*time.Second, time.Millisecond)
	fl.stop()
	require.Nil(t, fl.target("b"))
}

func TestFollowerRefusesEventsOutOfOrder(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 4, 1000)
	inc := src.Incarnation("w")
	ev3, _ := src.Event("w", 3)
	src.Update(func() { src.Edit("w").Order = []*fsm.Event{ev3} })
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 4), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 4)
	require.ErrorIs(t, tg.failures()[0], feed.ErrFeedOrder)
}

func TestFollowerWaitsOnAnArchiveGap(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 8, 1000)
	src.SetLow("w", 4) // nothing stored, event 1 pruned
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, func() bool { return len(tg.failures()) >= 2 }, 10*time.Second, time.Millisecond)
	fl.stop()
	require.Empty(t, tg.deliveries())
	require.ErrorIs(t, tg.failures()[0], store.ErrArchiveGap)
}

func TestFollowerFlushesHeldEventsOfAQuietWorldByTheTargetsDeadline(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 3, 1000)
	inc := src.Incarnation("w")
	tg := &target{hold: true, flushAfter: 5 * time.Millisecond}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 3), 10*time.Second, time.Millisecond, "held events are flushed although no event follows")
	src.Add("w", 2, 1000)
	require.Eventually(t, at(tg, inc, 5), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, inc, 5)
	require.GreaterOrEqual(t, tg.flushes, 2)
	require.Empty(t, tg.failures())
}

func TestFollowerReportsTheFailuresOfTheTargetsOtherCalls(t *testing.T) {
	errPos, errResume, errEnd := errors.New("test: positions"), errors.New("test: resume"), errors.New("test: end")
	for name, tc := range map[string]struct {
		tg   *target
		want error
	}{
		"positions": {&target{posErr: errPos}, errPos},
		"resume":    {&target{resumeErr: errResume}, errResume},
		"end":       {&target{endErr: errEnd, failNext: 1000}, errEnd},
	} {
		t.Run(name, func(t *testing.T) {
			src := sinktest.NewSource()
			src.Add("w", 3, 1000)
			fl := startFollower(t, testConfig(), src, map[string]*target{"w": tc.tg})
			require.Eventually(t, func() bool { return len(tc.tg.failures()) >= 2 }, 10*time.Second, time.Millisecond)
			fl.stop()
			require.Empty(t, tc.tg.deliveries())
			require.ErrorIs(t, tc.tg.failures()[0], tc.want)
		})
	}
}
