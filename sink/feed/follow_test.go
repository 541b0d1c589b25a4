package feed_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

func testConfig() feed.FollowConfig {
	return feed.FollowConfig{
		BatchSize:     4,
		Linger:        time.Millisecond,
		CheckInterval: 2 * time.Millisecond,
		RetryMin:      time.Millisecond,
		RetryMax:      4 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	}
}

// target is a feed.Target that keeps what it was delivered and the
// position it stored, and fails or blocks when a test says so.
type target struct {
	mu        sync.Mutex
	world     string
	stored    []feed.Position // newest first
	delivered []delivery      // every successful Deliver's events
	resumed   []feed.Position
	fails     []error // what each session failed with
	ends      int

	// failNext, when positive, fails that many Deliver calls.
	failNext int
	// block, when set, makes Deliver wait for ctx's end.
	block   bool
	blocked chan struct{} // closed once a Deliver blocks
	// verify, when set, is Verify's answer.
	verify   error
	verified int

	// hold, when set, keeps delivered events until Flush, due flushAfter
	// after the first one held.
	hold       bool
	flushAfter time.Duration
	held       *feed.Position
	heldAt     time.Time
	flushes    int

	posErr, resumeErr, endErr error // what those calls answer
}

func (t *target) FlushAt() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held == nil {
		return time.Time{}, false
	}
	return t.heldAt.Add(t.flushAfter), true
}

func (t *target) Flush(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.store(*t.held)
	t.held = nil
	t.flushes++
	return nil
}

type delivery struct {
	inc int64
	seq uint64
}

var errDeliver = errors.New("test: deliver failed")

func (t *target) Positions(context.Context) ([]feed.Position, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.posErr != nil {
		return nil, t.posErr
	}
	return append([]feed.Position(nil), t.stored...), nil
}

func (t *target) Resume(_ context.Context, pos feed.Position) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resumed = append(t.resumed, pos)
	return t.resumeErr
}

func (t *target) Deliver(ctx context.Context, pos feed.Position, evs []*fsm.Event) (feed.Position, error) {
	t.mu.Lock()
	if t.block {
		close(t.blocked)
		t.block = false
		t.mu.Unlock()
		<-ctx.Done()
		return pos, ctx.Err()
	}
	defer t.mu.Unlock()
	if t.failNext > 0 {
		t.failNext--
		return pos, errDeliver
	}
	for _, ev := range evs {
		t.delivered = append(t.delivered, delivery{pos.Incarnation, ev.Seq})
	}
	pos.Seq = evs[len(evs)-1].Seq
	if t.hold {
		if t.held == nil {
			t.heldAt = time.Now()
		}
		t.held = &pos
		return pos, nil
	}
	t.store(pos)
	return pos, nil
}

// store keeps pos as its incarnation's position, newest first.
func (t *target) store(pos feed.Position) {
	out := []feed.Position{pos}
	for _, p := range t.stored {
		if p.Incarnation != pos.Incarnation {
			out = append(out, p)
		}
	}
	t.stored = out
}

func (t *target) End(error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ends++
	return t.endErr
}

func (t *target) position() feed.Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.stored) == 0 {
		return feed.Position{}
	}
	return t.stored[0]
}

func (t *target) deliveries() []delivery {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]delivery(nil), t.delivered...)
}

func (t *target) failures() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.fails...)
}

// Verify answers t.verify and counts the calls.
func (t *target) Verify(_ context.Context, p feed.Position, ev *fsm.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Seq != p.Seq {
		return errors.New("test: verified against another seq's event")
	}
	t.verified++
	return t.verify
}

// follower is a running Follower over targets the test prepares per
// world (a new empty one for any other world).
type follower struct {
	mu      sync.Mutex
	targets map[string]*target
	started map[string]int
	stopped map[string]int
	stop    func()
}

func startFollower(t *testing.T, cfg feed.FollowConfig, src feed.Source, targets map[string]*target) *follower {
	t.Helper()
	fl := &follower{targets: targets, started: map[string]int{}, stopped: map[string]int{}}
	if fl.targets == nil {
		fl.targets = map[string]*target{}
	}
	f, err := feed.NewFollower(cfg, src, feed.Hooks[*target]{
		Start: func(world string) *target {
			fl.mu.Lock()
			defer fl.mu.Unlock()
			fl.started[world]++
			tg := fl.targets[world]
			if tg == nil {
				tg = &target{world: world}
				fl.targets[world] = tg
			}
			return tg
		},
		Fail: func(_ string, tg *target, err error, _ time.Duration) {
			tg.mu.Lock()
			tg.fails = append(tg.fails, err)
			tg.mu.Unlock()
		},
		Stop: func(world string, _ *target) {
			fl.mu.Lock()
			fl.stopped[world]++
			fl.mu.Unlock()
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		require.NoError(t, f.Run(ctx))
	}()
	var once sync.Once
	fl.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(fl.stop)
	return fl
}

func (fl *follower) target(world string) *target {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.targets[world]
}

func (fl *follower) count(m map[string]int, world string) int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return m[world]
}

func at(tg *target, inc int64, seq uint64) func() bool {
	return func() bool { return tg.position() == feed.Position{Incarnation: inc, Seq: seq} }
}

// requireOnce checks that tg was delivered seqs 1..n of incarnation inc,
// each once, in order, and nothing else.
func requireOnce(t *testing.T, tg *target, inc int64, n int) {
	t.Helper()
	var want []delivery
	for i := 1; i <= n; i++ {
		want = append(want, delivery{inc, uint64(i)})
	}
	require.Equal(t, want, tg.deliveries())
}

func TestFollowerRetriesAFailedDeliveryAndStoresThePositionOnlyAfterSuccess(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 10, 1000)
	tg := &target{failNext: 3}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 10), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 1001, 10)
	fails := tg.failures()
	require.Len(t, fails, 3)
	for _, err := range fails {
		require.ErrorIs(t, err, errDeliver)
	}
	// Every session after a failure resumed from the stored position,
	// which had not moved past what was delivered.
	require.Len(t, tg.resumed, 4)
	for _, p := range tg.resumed {
		require.Equal(t, feed.Position{Incarnation: 1001}, p)
	}
}

func TestFollowerDeliversBatchesOfAtMostBatchSizeInOrder(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 30, 1000)
	tg := &target{}
	cfg := testConfig()
	cfg.BatchSize = 7
	fl := startFollower(t, cfg, src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 30), 10*time.Second, time.Millisecond)
	src.Add("w", 5, 1000)
	require.Eventually(t, at(tg, 1001, 35), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 1001, 35)
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
	src.Add("other", 5, 1000)
	src.SetLeads("other", false)
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 5), 10*time.Second, time.Millisecond)
	require.Zero(t, fl.count(fl.started, "other"), "a world another node leads is not followed")

	src.SetLeads("w", false)
	require.Eventually(t, func() bool { return fl.count(fl.stopped, "w") == 1 }, 10*time.Second, time.Millisecond)
	src.Add("w", 5, 1000)
	src.SetLeads("w", true)
	require.Eventually(t, at(tg, 1001, 10), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, 2, fl.count(fl.started, "w"))
	requireOnce(t, tg, 1001, 10)
}

// losing is a Source whose world stops being led after a number of
// Leads calls: leadership lost between two checks.
type losing struct {
	*sinktest.Source
	mu    sync.Mutex
	calls int
	after int
}

func (l *losing) Leads(world string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	return l.calls <= l.after && l.Source.Leads(world)
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
	src.SetLeads("w", false)
	tg := &target{}
	cfg := testConfig()
	cfg.AllNodes = true
	fl := startFollower(t, cfg, src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 5), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 1001, 5)
}

func TestFollowerFollowsOnlySelectedWorlds(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("a", 2, 1000)
	src.Add("b", 2, 1000)
	cfg := testConfig()
	cfg.Worlds = []string{"a"}
	fl := startFollower(t, cfg, src, nil)
	require.Eventually(t, func() bool { tg := fl.target("a"); return tg != nil && at(tg, 1001, 2)() }, 10*time.Second, time.Millisecond)
	fl.stop()
	require.Nil(t, fl.target("b"))
}

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

func TestFollowerRefusesEventsOutOfOrder(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 4, 1000)
	ev3, _ := src.Event("w", 3)
	src.Update(func() { src.World("w").Order = []*fsm.Event{ev3} })
	tg := &target{}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 4), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 1001, 4)
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
	tg := &target{hold: true, flushAfter: 5 * time.Millisecond}
	fl := startFollower(t, testConfig(), src, map[string]*target{"w": tg})
	require.Eventually(t, at(tg, 1001, 3), 10*time.Second, time.Millisecond, "held events are flushed although no event follows")
	src.Add("w", 2, 1000)
	require.Eventually(t, at(tg, 1001, 5), 10*time.Second, time.Millisecond)
	fl.stop()
	requireOnce(t, tg, 1001, 5)
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

func TestFollowerHooksSeeEveryFollowedWorldOnEachCheck(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("a", 3, 1000)
	src.Add("b", 5, 1000)
	var mu sync.Mutex
	seqs := map[string]uint64{}
	followed := -1
	f, err := feed.NewFollower(testConfig(), src, feed.Hooks[*target]{
		Start: func(world string) *target { return &target{world: world} },
		Fail:  func(string, *target, error, time.Duration) {},
		Check: func(world string, tg *target, w fsm.WorldInfo) {
			mu.Lock()
			defer mu.Unlock()
			if tg.world == world {
				seqs[world] = w.Seq
			}
		},
		Followed: func(n int) { mu.Lock(); followed = n; mu.Unlock() },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return followed == 2 && seqs["a"] == 3 && seqs["b"] == 5
	}, 10*time.Second, time.Millisecond)
	cancel()
	<-done
	require.Zero(t, followed, "nothing is followed once Run returned")
}

func TestFollowConfigValidateAndNewFollowerRefuseWhatCannotWork(t *testing.T) {
	ok := testConfig()
	require.NoError(t, ok.Validate())
	for name, tc := range map[string]struct {
		edit func(*feed.FollowConfig)
		want string
	}{
		"negative batch":  {func(c *feed.FollowConfig) { c.BatchSize = -1 }, "batch size"},
		"negative linger": {func(c *feed.FollowConfig) { c.Linger = -1 }, "linger"},
		"no interval":     {func(c *feed.FollowConfig) { c.CheckInterval = 0 }, "check interval"},
		"no retry":        {func(c *feed.FollowConfig) { c.RetryMin = 0 }, "RetryMin"},
		"retry order":     {func(c *feed.FollowConfig) { c.RetryMax = c.RetryMin / 2 }, "RetryMin"},
		"no logger":       {func(c *feed.FollowConfig) { c.Logger = nil }, "Logger"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
			_, err := feed.NewFollower(c, sinktest.NewSource(), feed.Hooks[*target]{})
			require.ErrorContains(t, err, tc.want)
		})
	}
	hooks := feed.Hooks[*target]{Start: func(string) *target { return nil }, Fail: func(string, *target, error, time.Duration) {}}
	_, err := feed.NewFollower(ok, nil, hooks)
	require.ErrorContains(t, err, "no source")
	_, err = feed.NewFollower(ok, sinktest.NewSource(), feed.Hooks[*target]{Start: hooks.Start})
	require.ErrorContains(t, err, "required")
	_, err = feed.NewFollower(ok, sinktest.NewSource(), hooks)
	require.NoError(t, err)
}

func TestBackoffDoublesUpToItsBoundAndResets(t *testing.T) {
	b := feed.NewBackoff(time.Microsecond, 4*time.Microsecond)
	var waits []time.Duration
	for range 4 {
		waits = append(waits, b.Wait())
		require.True(t, b.Sleep(context.Background()))
	}
	require.Equal(t, []time.Duration{time.Microsecond, 2 * time.Microsecond, 4 * time.Microsecond, 4 * time.Microsecond}, waits)
	b.Reset()
	require.Equal(t, time.Microsecond, b.Wait())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := feed.NewBackoff(time.Hour, time.Hour)
	require.False(t, long.Sleep(ctx), "a sleep ends with its context")
}
