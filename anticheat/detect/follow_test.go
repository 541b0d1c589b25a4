package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

var errFeed = errors.New("feed failed")

// source is a fake node: worlds with fixed feeds. A world's first
// subscription fails after failAfter events when set; Subscribe fails
// while subErr is set. A subscription starts one event before the seq
// asked for (as the auditor asks), to show the overlap is skipped.
type source struct {
	mu        sync.Mutex
	worlds    []string
	events    map[string][]*fsm.Event
	failAfter map[string]int
	subErr    error
	subs      map[string][]uint64
	held      map[string]uint64 // the feed holds seqs from this one on
	inc       map[string]uint64 // a world's incarnation
	noInc     bool              // report no incarnations (worlds made before them)
	attempts  int
	ended     chan string   // a world whose subscription saw its ctx end
	grew      chan struct{} // closed when a feed grows
}

func newSource(worlds ...string) *source {
	return &source{worlds: worlds, events: map[string][]*fsm.Event{}, failAfter: map[string]int{},
		subs: map[string][]uint64{}, held: map[string]uint64{}, inc: map[string]uint64{}, ended: make(chan string, 16),
		grew: make(chan struct{})}
}

// transfers adds to world's feed n transfers of item "x" from "from" to
// "to".
func (s *source) transfers(world, from, to string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		seq := uint64(len(s.events[world]) + 1)
		s.events[world] = append(s.events[world], &fsm.Event{World: world, Seq: seq, Player: from, Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: from, Field: "items", Op: fsm.OpRemove, Value: fsm.String("x")},
				{Entity: to, Field: "items", Op: fsm.OpAdd, Value: fsm.String("x")}}})
	}
	close(s.grew)
	s.grew = make(chan struct{})
}

func (s *source) Worlds() []fsm.WorldInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fsm.WorldInfo
	for _, w := range s.worlds {
		info := fsm.WorldInfo{ID: w, Seq: uint64(len(s.events[w])), Incarnation: s.inc[w]}
		if s.noInc {
			info.Incarnation = 0
		}
		out = append(out, info)
	}
	return out
}

func (s *source) Subscribe(world string, from uint64) (fanout.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.subErr != nil {
		return nil, s.subErr
	}
	if from < s.held[world] {
		s.subs[world] = append(s.subs[world], from)
		return nil, fmt.Errorf("%w: world %s seq %d", ErrFeedGone, world, from)
	}
	fail := -1
	if len(s.subs[world]) == 0 {
		if n, ok := s.failAfter[world]; ok {
			fail = n
		}
	}
	s.subs[world] = append(s.subs[world], from)
	return &fakeSub{s: s, world: world, pos: max(int(from)-2, 0), fail: fail}, nil
}

func (s *source) subscriptions(world string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.subs[world]...)
}

type fakeSub struct {
	s         *source
	world     string
	pos, fail int
}

// recreate deletes world and creates it again, under a new incarnation,
// then gives it n transfers from "from" to "to" from seq 1 on.
func (s *source) recreate(world, from, to string, n int) {
	s.mu.Lock()
	s.events[world] = nil
	s.inc[world]++
	s.mu.Unlock()
	s.transfers(world, from, to, n)
}

func (f *fakeSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		f.s.mu.Lock()
		evs, grew := f.s.events[f.world], f.s.grew
		f.s.mu.Unlock()
		if f.fail == 0 {
			return nil, errFeed
		}
		if f.pos < len(evs) {
			f.pos++
			f.fail--
			return evs[f.pos-1 : f.pos], nil
		}
		select {
		case <-ctx.Done():
			select {
			case f.s.ended <- f.world:
			default:
			}
			return nil, ctx.Err()
		case <-grew:
		}
	}
}

// running starts a Runner of a detector with small() thresholds over src
// and returns it, its flags and a stop that waits for Run to return.
func running(t *testing.T, src Source, log *bytes.Buffer) (*Runner, *Memory, func()) {
	c := small()
	c.Every, c.Scan = 1, time.Millisecond
	d, err := New(c)
	require.NoError(t, err)
	var mem Memory
	r, err := NewRunner(d, src, &mem, slog.New(slog.NewTextHandler(log, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, &mem, stop
}

func transfersSeen(r *Runner, from, to string) int {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if e := r.d.edges[pairKey{from, to}]; e != nil {
		return e.n
	}
	return 0
}

func TestRunnerFollowsEveryWorldAndResumesAFailedFeedWithoutCountingTwice(t *testing.T) {
	src := newSource("a", "b")
	src.transfers("a", "f", "m", 12)
	src.transfers("b", "g", "n", 7)
	src.failAfter["a"] = 5
	var log bytes.Buffer
	r, mem, stop := running(t, src, &log)
	require.Eventually(t, func() bool {
		return transfersSeen(r, "f", "m") == 12 && transfersSeen(r, "g", "n") == 7
	}, 10*time.Second, time.Millisecond)
	stop()
	// (A scan racing with the stop may have subscribed once more.)
	require.Equal(t, []uint64{1, 6}, src.subscriptions("a")[:2], "started again after the last event observed")
	require.Equal(t, []uint64{1}, src.subscriptions("b")[:1])
	funnels := players(only(mem.Flags(), DetFunnel))
	slices.Sort(funnels)
	require.Equal(t, []string{"f+m", "g+n"}, funnels)
	require.Equal(t, 1, strings.Count(log.String(), "stopped following"), log.String())
}

func TestRunnerStopsFollowingAWorldThatIsGone(t *testing.T) {
	src := newSource("a", "b")
	var log bytes.Buffer
	r, _, _ := running(t, src, &log)
	require.Eventually(t, func() bool { return len(src.subscriptions("b")) == 1 }, 10*time.Second, time.Millisecond)
	src.mu.Lock()
	src.worlds = []string{"a"}
	src.mu.Unlock()
	require.Equal(t, "b", <-src.ended)
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotContains(t, r.worlds, "b")
	require.Contains(t, r.worlds, "a")
}

func TestRunnerRetriesASubscriptionThatFailsAndLogsItOnce(t *testing.T) {
	src := newSource("a")
	src.transfers("a", "f", "m", 3)
	src.subErr = errFeed
	var log bytes.Buffer
	r, _, stop := running(t, src, &log)
	require.Eventually(t, func() bool { // three scans at least, each trying again
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.attempts >= 3
	}, 10*time.Second, time.Millisecond)
	src.mu.Lock()
	src.subErr = nil
	src.mu.Unlock()
	require.Eventually(t, func() bool { return transfersSeen(r, "f", "m") == 3 }, 10*time.Second, time.Millisecond)
	stop()
	require.Equal(t, 1, strings.Count(log.String(), "stopped following"), log.String())
}

func TestRunnerEvaluatesAQuietWorldAtItsScans(t *testing.T) {
	src := newSource("a")
	src.transfers("a", "f", "m", 6)
	c := small()
	c.Every, c.Scan = 1000, time.Millisecond // never reached by events
	d, err := New(c)
	require.NoError(t, err)
	var mem Memory
	r, err := NewRunner(d, src, &mem, slog.Default())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return len(mem.Flags()) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{"f", "m"}, mem.Flags()[0].Players)
}

func TestNewRunnerRefusesMissingParts(t *testing.T) {
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	_, err = NewRunner(d, newSource(), nil, slog.Default())
	require.Error(t, err)
}

func TestLockstepIsCountedPerWorld(t *testing.T) {
	f := newFeed(t, small())
	ms := int64(time.Millisecond)
	for i := range int64(12) {
		at := 5*sec + i*sec
		for _, p := range []string{"r1", "r2"} {
			f.d.Observe(&fsm.Event{World: "ring", Seq: uint64(i + 1), Time: at, Player: p, Status: fsm.StatusApplied,
				Changes: []fsm.Change{set(p, "x", 40*i)}})
			// another world's clock, far ahead, between the two
			f.d.Observe(&fsm.Event{World: "other", Seq: uint64(i + 1), Time: at + 100*sec + ms*i, Player: "o", Status: fsm.StatusApplied,
				Changes: []fsm.Change{set("o", "y", 40*i)}})
		}
	}
	require.Equal(t, []string{"r1+r2"}, players(only(f.d.Evaluate(), DetLockstep)))
}

func TestAScanAfterTheRunnerStoppedStartsNothing(t *testing.T) {
	src := newSource("a")
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	r, err := NewRunner(d, src, &Memory{}, slog.Default())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.scan(ctx)
	r.wg.Wait()
	require.Empty(t, src.subscriptions("a"))
	require.Empty(t, r.worlds)
}

func TestRunnerSkipsToTheWorldsSeqWhenTheFeedNoLongerHoldsWhereItWas(t *testing.T) {
	src := newSource("old")
	src.transfers("old", "f", "m", 12)
	src.held["old"] = 13 // seqs 1..12 are gone
	var log bytes.Buffer
	r, _, stop := running(t, src, &log)
	require.Eventually(t, func() bool { return slices.Contains(src.subscriptions("old"), 13) }, 10*time.Second, time.Millisecond)
	src.transfers("old", "f", "m", 10)
	require.Eventually(t, func() bool { return transfersSeen(r, "f", "m") == 10 }, 10*time.Second, time.Millisecond)
	stop()
	subs := src.subscriptions("old")
	require.Equal(t, uint64(1), subs[0])
	require.Equal(t, uint64(13), slices.Max(subs), "gone at 1: skipped to after the world's seq")
	require.Contains(t, log.String(), "skip events the feed no longer holds")
	require.Equal(t, 10, transfersSeen(r, "f", "m"))
}

// A restarted node whose archive's retention deleted a world's oldest
// events rebuilds its counts from the oldest events still held.
func TestRunnerRebuildsFromTheOldestEventTheArchiveStillHolds(t *testing.T) {
	for _, held := range []uint64{2, 8, 20} {
		t.Run(fmt.Sprint(held), func(t *testing.T) {
			src := newSource("old")
			src.transfers("old", "f", "m", 20)
			src.held["old"] = held // seqs before it are gone
			var log bytes.Buffer
			c := small()
			c.Every, c.Scan = 1, time.Millisecond
			d, err := New(c)
			require.NoError(t, err)
			r, err := NewRunner(d, src, &Memory{}, slog.New(slog.NewTextHandler(&log, nil)))
			require.NoError(t, err)
			reg := prometheus.NewRegistry()
			r.Metrics, err = NewMetrics(reg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); r.Run(ctx) }()
			defer func() { cancel(); <-done }()
			require.Eventually(t, func() bool { return transfersSeen(r, "f", "m") == int(21-held) }, 10*time.Second, time.Millisecond)
			cancel()
			<-done
			require.Equal(t, int(21-held), transfersSeen(r, "f", "m"))
			require.Contains(t, log.String(), fmt.Sprintf("to=%d", held-1))
			require.Equal(t, float64(held-1), testutil.ToFloat64(r.Metrics.skipped))
		})
	}
}

func TestRunnerFollowsAWorldCreatedAgainFromItsStart(t *testing.T) {
	for _, c := range []struct {
		name  string
		noInc bool
		again int // events of the new world when the scan sees it
	}{
		// As many events as the old world: only the incarnation tells.
		{"a new incarnation", false, 12},
		{"no incarnations: the seq went back", true, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := newSource("w")
			src.noInc = c.noInc
			src.transfers("w", "f", "m", 12)
			var log bytes.Buffer
			r, _, stop := running(t, src, &log)
			require.Eventually(t, func() bool { return transfersSeen(r, "f", "m") == 12 }, 10*time.Second, time.Millisecond)
			src.recreate("w", "g", "n", c.again) // between two scans

			require.Eventually(t, func() bool { return transfersSeen(r, "g", "n") == c.again }, 10*time.Second, time.Millisecond)
			stop()
			require.Equal(t, 12, transfersSeen(r, "f", "m"))
			require.Equal(t, uint64(1), src.subscriptions("w")[1], "the new world from its seq 1")
			require.NotContains(t, log.String(), "stopped following", "a stale follower's end is no failure")
		})
	}
}

// ledSource is a source of which this node evaluates the worlds in leads.
type ledSource struct {
	*source
	mu    sync.Mutex
	leads map[string]bool
}

func (s *ledSource) Evaluates(world string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leads[world]
}

func (s *ledSource) lead(worlds ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leads = map[string]bool{}
	for _, w := range worlds {
		s.leads[w] = true
	}
}

func TestRunnerFollowsTheWorldsItLeadsAndResumesWhereItStoppedWhenLeadershipComesBack(t *testing.T) {
	src := &ledSource{source: newSource("a", "b")}
	src.lead("a")
	src.transfers("a", "f", "m", 4)
	src.transfers("b", "g", "n", 3)
	var log bytes.Buffer
	r, _, stop := running(t, src, &log)
	require.Eventually(t, func() bool { return transfersSeen(r, "f", "m") == 4 }, 10*time.Second, time.Millisecond)
	require.Empty(t, src.subscriptions("b"), "a world led elsewhere is not followed")

	src.lead("b") // a's leadership moves away, b's comes here
	require.Equal(t, "a", <-src.ended)
	require.Eventually(t, func() bool { return transfersSeen(r, "g", "n") == 3 }, 10*time.Second, time.Millisecond)
	src.transfers("a", "f", "m", 5) // evaluated by a's new leader meanwhile

	src.lead("a", "b") // a's leadership comes back
	require.Eventually(t, func() bool { return transfersSeen(r, "f", "m") == 9 }, 10*time.Second, time.Millisecond)
	stop()
	require.Equal(t, []uint64{1, 5}, src.subscriptions("a")[:2], "resumed after the last event observed")
	require.Equal(t, 9, transfersSeen(r, "f", "m"), "nothing counted twice")
	require.Equal(t, 3, transfersSeen(r, "g", "n"))
	require.NotContains(t, log.String(), "stopped following", "a world led elsewhere is no failure")
}

// Leadership checked per read, not only per scan: when a world's
// leadership moves away between two scans, the old leader observes none
// of the events its successor commits (the successor counts and flags
// them), and stops where it was, without calling it a failure.
func TestRunnerStopsAtTheFirstReadAfterLeadershipMovesAwayBetweenScans(t *testing.T) {
	src := &ledSource{source: newSource("a")}
	src.lead("a")
	src.transfers("a", "f", "m", 2)
	c := small()
	c.Every, c.Scan = 1, time.Hour // only Run's first scan
	d, err := New(c)
	require.NoError(t, err)
	var mem Memory
	var log bytes.Buffer
	r, err := NewRunner(d, src, &mem, slog.New(slog.NewTextHandler(&log, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return transfersSeen(r, "f", "m") == 2 }, 10*time.Second, time.Millisecond)

	src.lead() // a's leadership moves away; no scan comes
	src.transfers("a", "f", "m", 5)
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return !r.worlds["a"].running
	}, 10*time.Second, time.Millisecond, "the follower stops at its next read")
	require.Equal(t, 2, transfersSeen(r, "f", "m"), "the successor's events are not counted here")
	r.mu.Lock()
	require.Equal(t, uint64(3), r.worlds["a"].next, "it keeps its place")
	require.NoError(t, r.worlds["a"].err)
	r.mu.Unlock()
	require.NotContains(t, log.String(), "stopped following", "leadership moving away is no failure")
}
