package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// counterValue reads a counter through a registry of its own.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	fams, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, fams, 1)
	return fams[0].GetMetric()[0].GetCounter().GetValue()
}

func TestFairKeyClampsInputTimesToTheLagBound(t *testing.T) {
	const arrival, lag = int64(1_000_000_000), 100 * time.Millisecond
	require.Equal(t, arrival, fairKey(0, arrival, lag), "no input time: arrival")
	require.Equal(t, arrival, fairKey(arrival+int64(time.Hour), arrival, lag), "the future: arrival")
	require.Equal(t, arrival-int64(30*time.Millisecond), fairKey(arrival-int64(30*time.Millisecond), arrival, lag), "within the bound: believed")
	require.Equal(t, arrival-int64(lag), fairKey(arrival-int64(lag), arrival, lag))
	require.Equal(t, arrival-int64(lag), fairKey(1, arrival, lag), "too old: arrival - bound")
}

// manualWindows makes a batcher's fair windows end only when the test says
// and its arrival clock read *at.
type manualWindows struct {
	mu     sync.Mutex
	fires  []func()
	at     time.Time
	stopOK bool // what Stop reports (false: the window already ended)
}

type manualTimer struct{ m *manualWindows }

func (t manualTimer) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	return t.m.stopOK
}

func installManualWindows(b *batcher, at time.Time) *manualWindows {
	m := &manualWindows{at: at, stopOK: true}
	b.fair.mu.Lock()
	defer b.fair.mu.Unlock()
	b.fair.now = func() time.Time {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.at
	}
	b.fair.after = func(_ time.Duration, f func()) stopper {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.fires = append(m.fires, f)
		return manualTimer{m}
	}
	return m
}

func (m *manualWindows) setArrival(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.at = at
}

// fire ends the only window opened so far.
func (m *manualWindows) fire(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	require.Len(t, m.fires, 1, "one group was open")
	f := m.fires[0]
	m.fires = nil
	m.mu.Unlock()
	f()
}

type actResult struct {
	ev  *fsm.Event
	err error
}

// actAsync proposes a on s and returns where its result will arrive.
func actAsync(t *testing.T, s *Store, a *fsm.Action) <-chan actResult {
	out := make(chan actResult, 1)
	go func() {
		ev, _, err := s.Act(ctxT(t), a)
		out <- actResult{ev, err}
	}()
	return out
}

func claim(world, player string, seq uint64, entity string, input time.Time) *fsm.Action {
	a := &fsm.Action{World: world, Player: player, Seq: seq, Ops: []fsm.Op{{
		Kind: fsm.OpSet, Entity: entity, Field: "owner", Value: fsm.String(player),
		Expect: fsm.Expect{Mode: fsm.ExpectAbsent},
	}}}
	if !input.IsZero() {
		a.InputTime = input.UnixNano()
	}
	return a
}

func waitHeld(t *testing.T, b *batcher, world string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return b.heldCount(world) == n }, 10*time.Second, time.Millisecond, "%d held in %s", n, world)
}

func TestFairWorldResolvesByInputTimeOnEveryReplicaAndPlainWorldByArrival(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: 50 * time.Millisecond, MaxLag: 100 * time.Millisecond}}))
	mustCreateWorld(t, l, "plain")
	c.waitReplicated()

	input := time.Unix(1_800_000_000, 0)
	m := installManualWindows(l.batcher, input.Add(60*time.Millisecond))
	// Player bob acted 30 ms after ann (input time) but his action arrives first.
	bob := actAsync(t, l, claim("fair", "bob", 1, "flag", input.Add(30*time.Millisecond)))
	waitHeld(t, l.batcher, "fair", 1)
	ann := actAsync(t, l, claim("fair", "ann", 1, "flag", input))
	waitHeld(t, l.batcher, "fair", 2)
	m.fire(t)
	a, b := <-ann, <-bob
	require.NoError(t, a.err)
	require.NoError(t, b.err)
	require.Equal(t, fsm.StatusApplied, a.ev.Status, "the earlier input wins")
	require.Equal(t, fsm.StatusConflict, b.ev.Status)
	require.Equal(t, fsm.String("ann"), b.ev.Changes[0].Value)
	require.Equal(t, a.ev.Index, b.ev.Index, "one entry")
	require.Equal(t, []uint64{1, 2}, []uint64{a.ev.Seq, b.ev.Seq})
	require.Equal(t, 0, l.batcher.heldCount("fair"))
	require.Equal(t, 2.0, counterValue(t, l.metrics.fairHeld))
	require.Equal(t, 2.0, counterValue(t, l.metrics.fairReordered))

	c.waitReplicated()
	for _, s := range c.nodes {
		v, err := s.Entity(ctxT(t), "fair", "flag", Stale)
		require.NoError(t, err)
		require.Equal(t, fsm.String("ann"), v.Fields[0].Value, "node %s", s.cfg.ID)
		for seq, want := range map[uint64]*fsm.Event{1: a.ev, 2: b.ev} {
			got := s.feed.event("fair", seq)
			require.NotNil(t, got, "node %s seq %d", s.cfg.ID, seq)
			require.Equal(t, want.Player, got.Player, "node %s seq %d", s.cfg.ID, seq)
			require.Equal(t, want.Status, got.Status, "node %s seq %d", s.cfg.ID, seq)
		}
	}
	c.ensureSameHashes("fair")

	// Without fairness the arrival order wins: nothing is held.
	bob = actAsync(t, l, claim("plain", "bob", 1, "flag", input.Add(30*time.Millisecond)))
	b = <-bob
	ann = actAsync(t, l, claim("plain", "ann", 1, "flag", input))
	a = <-ann
	require.NoError(t, a.err)
	require.NoError(t, b.err)
	require.Equal(t, fsm.StatusApplied, b.ev.Status)
	require.Equal(t, fsm.StatusConflict, a.ev.Status)
	require.Equal(t, 2.0, counterValue(t, l.metrics.fairHeld), "plain worlds are never held")
	c.ensureSameHashes("plain")
}

func TestFairWorldClampsFutureAndTooOldInputTimes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	lag := 20 * time.Millisecond
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: 50 * time.Millisecond, MaxLag: lag}}))

	t0 := time.Unix(1_800_000_000, 0)
	m := installManualWindows(l.batcher, t0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// On "x": eve arrives first at 0 with an honest input of -10 ms; fay
	// arrives at +20 ms claiming an hour ago, believed only back to 0.
	eve := actAsync(t, l, claim("fair", "eve", 1, "x", ms(-10)))
	waitHeld(t, l.batcher, "fair", 1)
	// On "y": gil arrives at 0 claiming an hour ahead (counts as 0); hal
	// arrives at +20 ms with an input of +10 ms.
	gil := actAsync(t, l, claim("fair", "gil", 1, "y", ms(60*60*1000)))
	waitHeld(t, l.batcher, "fair", 2)
	m.setArrival(ms(20))
	fay := actAsync(t, l, claim("fair", "fay", 1, "x", ms(-60*60*1000)))
	waitHeld(t, l.batcher, "fair", 3)
	hal := actAsync(t, l, claim("fair", "hal", 1, "y", ms(10)))
	waitHeld(t, l.batcher, "fair", 4)
	m.fire(t)
	for name, want := range map[string]struct {
		ch     <-chan actResult
		status fsm.Status
	}{"eve": {eve, fsm.StatusApplied}, "fay": {fay, fsm.StatusConflict}, "gil": {gil, fsm.StatusApplied}, "hal": {hal, fsm.StatusConflict}} {
		r := <-want.ch
		require.NoError(t, r.err, name)
		require.Equal(t, want.status, r.ev.Status, name)
	}
	require.Equal(t, 4.0, counterValue(t, l.metrics.fairHeld))
}

func TestFairWorldDoesNotHoldBulkActionsOrSessionCommands(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	m := installManualWindows(l.batcher, time.Now())
	bulk := incr("fair", "ann", 1, "e", "steps", 1)
	bulk.Priority = fsm.PriorityBulk
	ev, _, err := l.Act(ctxT(t), bulk) // would block until fired if held
	require.NoError(t, err)
	require.Equal(t, fsm.StatusApplied, ev.Status)
	_, err = l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "fair", ID: "s1", Player: "ann"})
	require.NoError(t, err)
	require.Equal(t, 0.0, counterValue(t, l.metrics.fairHeld))
	m.mu.Lock()
	require.Empty(t, m.fires, "no window opened")
	m.mu.Unlock()
}

func TestClosingTheLeaderAnswersHeldActionsNotLeader(t *testing.T) {
	t.Parallel()
	for _, windowEnded := range []bool{false, true} {
		c := newCluster(t, 1, nil)
		l := c.leader()
		require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
		m := installManualWindows(l.batcher, time.Now())
		res := actAsync(t, l, incr("fair", "ann", 1, "e", "c", 1))
		waitHeld(t, l.batcher, "fair", 1)
		closed := make(chan error, 1)
		if windowEnded {
			// The window ends while the batcher closes: the release
			// still answers the action.
			m.mu.Lock()
			m.stopOK = false
			m.mu.Unlock()
			go func() { closed <- l.Close(context.Background()) }()
			require.Eventually(t, func() bool {
				select {
				case <-l.batcher.stop:
					return true
				default:
					return false
				}
			}, 10*time.Second, time.Millisecond)
			m.fire(t)
			// It races the batcher's last round: proposed (and applied)
			// or answered not-leader, never left hanging.
			r := <-res
			if r.err != nil {
				require.ErrorIs(t, r.err, ErrNotLeader)
			} else {
				require.Equal(t, fsm.StatusApplied, r.ev.Status)
			}
		} else {
			closed <- l.Close(context.Background())
			r := <-res
			require.ErrorIs(t, r.err, ErrNotLeader)
		}
		require.NoError(t, <-closed)
	}
}

func TestFairGroupOverTheQueueSizeIsOverloaded(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) { cfg.Batch.QueueSize = 1 })
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	m := installManualWindows(l.batcher, time.Now())
	first := actAsync(t, l, incr("fair", "ann", 1, "e", "c", 1))
	waitHeld(t, l.batcher, "fair", 1)
	_, _, err := l.Act(ctxT(t), incr("fair", "bob", 1, "e", "c", 1))
	require.ErrorIs(t, err, ErrOverloaded)
	m.fire(t)
	r := <-first
	require.NoError(t, r.err)
	require.Equal(t, fsm.StatusApplied, r.ev.Status)
}

func TestFairLessBreaksTiesByPlayerThenSeq(t *testing.T) {
	held := func(key int64, player string, seq uint64) heldAction {
		return heldAction{key: key, p: &proposal{cmd: fsm.Command{Kind: fsm.CmdAction, Action: &fsm.Action{Player: player, Seq: seq}}}}
	}
	require.True(t, fairLess(held(1, "zed", 9), held(2, "ann", 1)), "input time first")
	require.False(t, fairLess(held(2, "ann", 1), held(1, "zed", 9)))
	require.True(t, fairLess(held(1, "ann", 9), held(1, "bob", 1)), "then player")
	require.True(t, fairLess(held(1, "ann", 1), held(1, "ann", 2)), "then seq")
	require.False(t, fairLess(held(1, "ann", 2), held(1, "ann", 2)))
}

func TestFairWindowEndsOnItsOwn(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: 20 * time.Millisecond}}))
	first := actAsync(t, l, incr("fair", "ann", 1, "e", "c", 1))
	second := actAsync(t, l, incr("fair", "bob", 1, "e", "c", 1))
	for _, ch := range []<-chan actResult{first, second} {
		r := <-ch
		require.NoError(t, r.err)
		require.Equal(t, fsm.StatusApplied, r.ev.Status)
	}
	require.Equal(t, 2.0, counterValue(t, l.metrics.fairHeld))
}

func TestFairHoldIsBoundedAcrossWorlds(t *testing.T) {
	t.Parallel()
	// The lane's queue size bounds the actions held in all fair worlds
	// together, as it bounds all worlds' queued actions: one group per
	// world must not multiply it by the number of fair worlds.
	c := newCluster(t, 1, func(cfg *Config) { cfg.Batch.QueueSize = 1 })
	l := c.leader()
	for _, w := range []string{"fair1", "fair2"} {
		require.NoError(t, l.CreateWorld(ctxT(t), w, fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	}
	m := installManualWindows(l.batcher, time.Now())
	first := actAsync(t, l, incr("fair1", "ann", 1, "e", "c", 1))
	waitHeld(t, l.batcher, "fair1", 1)
	_, _, err := l.Act(ctxT(t), incr("fair2", "bob", 1, "e", "c", 1))
	require.ErrorIs(t, err, ErrOverloaded)
	require.Equal(t, 0, l.batcher.heldCount("fair2"), "nothing held for the refused action")
	m.fire(t)
	r := <-first
	require.NoError(t, r.err)
	require.Equal(t, fsm.StatusApplied, r.ev.Status)
	// Released: the bound is free again.
	second := actAsync(t, l, incr("fair2", "bob", 1, "e", "c", 1))
	waitHeld(t, l.batcher, "fair2", 1)
	m.fire(t)
	r = <-second
	require.NoError(t, r.err)
	require.Equal(t, fsm.StatusApplied, r.ev.Status)
}

func TestFairGroupOverTheEntryLimitsIsSplitInOrder(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) { cfg.Batch.MaxActions = 2 })
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	t0 := time.Unix(1_800_000_000, 0)
	m := installManualWindows(l.batcher, t0.Add(100*time.Millisecond))
	// Five players arrive in the reverse of their input order.
	const n = 5
	res := make([]<-chan actResult, n)
	for i := range n {
		res[i] = actAsync(t, l, claim("fair", name("p", i), 1, name("e", i), t0.Add(time.Duration(n-i)*time.Millisecond)))
		waitHeld(t, l.batcher, "fair", i+1)
	}
	m.fire(t)
	perEntry := map[uint64]int{}
	var lastIndex uint64
	for i := range n {
		r := <-res[i]
		require.NoError(t, r.err)
		require.Equal(t, fsm.StatusApplied, r.ev.Status)
		require.Equal(t, uint64(n-i), r.ev.Seq, "p%d commits in input order", i)
		perEntry[r.ev.Index]++
		if i > 0 {
			require.LessOrEqual(t, r.ev.Index, lastIndex, "a later input never commits in an earlier entry")
		}
		lastIndex = r.ev.Index
	}
	require.Len(t, perEntry, 3, "5 actions in entries of at most 2")
	for idx, k := range perEntry {
		require.LessOrEqual(t, k, 2, "entry %d", idx)
	}
}

func TestFairGroupDoesNotOverfillABatchBeingGathered(t *testing.T) {
	t.Parallel()
	for _, closing := range []bool{false, true} {
		t.Run(map[bool]string{false: "proposed", true: "closed"}[closing], func(t *testing.T) {
			t.Parallel()
			testFairGroupDoesNotOverfill(t, closing)
		})
	}
}

// testFairGroupDoesNotOverfill has the batcher gather a plain action while
// a fair group that does not fit with it arrives; then it frees the
// in-flight slot, or closes the store while the batcher waits for it.
func testFairGroupDoesNotOverfill(t *testing.T, closing bool) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Batch.MaxActions = 2
		cfg.Batch.MaxInflight = 1
		cfg.Batch.MaxWait = 5 * time.Second
	})
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	mustCreateWorld(t, l, "plain")
	m := installManualWindows(l.batcher, time.Now())
	ann := actAsync(t, l, incr("fair", "ann", 1, "e", "c", 1))
	waitHeld(t, l.batcher, "fair", 1)
	bob := actAsync(t, l, incr("fair", "bob", 1, "e", "c", 1))
	waitHeld(t, l.batcher, "fair", 2)
	// With the only in-flight slot taken, the batcher gathers a plain
	// action for MaxWait; the fair group of two arrives meanwhile.
	l.batcher.sem <- struct{}{}
	pa := incr("plain", "cy", 1, "e", "c", 1)
	pp := &proposal{cmd: fsm.Command{Kind: fsm.CmdAction, Action: pa}, size: 64, done: make(chan outcome, 1)}
	l.batcher.critical <- pp
	require.Eventually(t, func() bool { return len(l.batcher.critical) == 0 }, 10*time.Second, time.Millisecond, "the batcher took it")
	m.fire(t)
	require.Eventually(t, func() bool { return len(l.batcher.critical) == 0 }, 10*time.Second, time.Millisecond)
	if closing {
		// The batcher waits for the slot with a full batch and the group
		// carried over: closing answers both, nothing was proposed.
		require.NoError(t, l.Close(context.Background()))
		require.ErrorIs(t, (<-pp.done).err, ErrNotLeader)
		for _, r := range []actResult{<-ann, <-bob} {
			require.ErrorIs(t, r.err, ErrNotLeader)
		}
		return
	}
	<-l.batcher.sem
	po := <-pp.done
	require.NoError(t, po.err)
	rs := map[string]actResult{"ann": <-ann, "bob": <-bob, "plain": {ev: po.res.Event}}
	for who, r := range rs {
		require.NoError(t, r.err, who)
		require.Equal(t, fsm.StatusApplied, r.ev.Status, who)
	}
	require.Equal(t, rs["ann"].ev.Index, rs["bob"].ev.Index, "the group stays in one entry")
	require.NotEqual(t, rs["plain"].ev.Index, rs["ann"].ev.Index, "three actions do not fit an entry of two")
}
func TestSplitGroupRespectsActionsAndBytes(t *testing.T) {
	ps := func(sizes ...int) []*proposal {
		out := make([]*proposal, len(sizes))
		for i, s := range sizes {
			out[i] = &proposal{size: s}
		}
		return out
	}
	shape := func(parts []*proposal) (got [][]int) {
		for _, gp := range parts {
			var sizes []int
			sum := 0
			for _, m := range gp.group {
				sizes = append(sizes, m.size)
				sum += m.size
			}
			require.Equal(t, sum, gp.size)
			got = append(got, sizes)
		}
		return got
	}
	require.Equal(t, [][]int{{1, 1}, {1, 1}, {1}}, shape(splitGroup(ps(1, 1, 1, 1, 1), 2, 100)))
	require.Equal(t, [][]int{{40, 60}, {50, 30, 20}, {10}}, shape(splitGroup(ps(40, 60, 50, 30, 20, 10), 5, 100)))
	require.Equal(t, [][]int{{500}, {10}}, shape(splitGroup(ps(500, 10), 5, 100)), "an action over the bytes alone still goes, alone")
	require.Equal(t, [][]int{{7}}, shape(splitGroup(ps(7), 1, 100)))
}

func TestAWorldsNextGroupWaitsForASlowRelease(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	m := installManualWindows(l.batcher, time.Now())
	sorted, gate, waiting := make(chan struct{}, 2), make(chan struct{}), make(chan struct{}, 1)
	var gateOnce sync.Once
	openGate := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(openGate) // before the store closes, even when the test fails
	var later atomic.Bool
	l.batcher.fair.mu.Lock()
	l.batcher.fair.afterSort = func() {
		slow := !later.Swap(true) // only the first release is slow
		sorted <- struct{}{}
		if slow {
			<-gate
		}
	}
	l.batcher.fair.onWait = func() { waiting <- struct{}{} }
	l.batcher.fair.mu.Unlock()

	// ann's group closes first but its release is slow; bob's group opens
	// and closes after it: bob must not commit first.
	ann := actAsync(t, l, claim("fair", "ann", 1, "flag", time.Time{}))
	waitHeld(t, l.batcher, "fair", 1)
	go m.fire(t)
	<-sorted
	bob := actAsync(t, l, claim("fair", "bob", 1, "flag", time.Time{}))
	waitHeld(t, l.batcher, "fair", 1)
	go m.fire(t)
	<-sorted
	select {
	case <-waiting:
	case r := <-bob:
		require.Failf(t, "bob's later group committed before ann's", "bob: %+v %v", r.ev, r.err)
	}
	openGate()
	a, b := <-ann, <-bob
	require.NoError(t, a.err)
	require.NoError(t, b.err)
	require.Equal(t, fsm.StatusApplied, a.ev.Status)
	require.Equal(t, fsm.StatusConflict, b.ev.Status)
	require.Less(t, a.ev.Seq, b.ev.Seq)
}

func TestAPlayersOwnActionsKeepTheirSeqOrderInAFairGroup(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	t0 := time.Unix(1_800_000_000, 0)
	m := installManualWindows(l.batcher, t0.Add(100*time.Millisecond))
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// ann's seq 1 has no input time (it counts as its arrival, 100 ms);
	// her seq 2 says 50 ms (her clock correction moved, or only some of
	// her actions carry one). bob's says 70 ms.
	ann1 := actAsync(t, l, claim("fair", "ann", 1, "a", time.Time{}))
	waitHeld(t, l.batcher, "fair", 1)
	ann2 := actAsync(t, l, claim("fair", "ann", 2, "b", ms(50)))
	waitHeld(t, l.batcher, "fair", 2)
	bob := actAsync(t, l, claim("fair", "bob", 1, "c", ms(70)))
	waitHeld(t, l.batcher, "fair", 3)
	m.fire(t)
	var seqs []uint64
	for _, ch := range []<-chan actResult{bob, ann1, ann2} {
		r := <-ch
		require.NoError(t, r.err)
		require.Equal(t, fsm.StatusApplied, r.ev.Status)
		seqs = append(seqs, r.ev.Seq)
	}
	require.Equal(t, []uint64{1, 2, 3}, seqs, "bob (70 ms), then ann's seq 1 and 2 in her order")
}

// A release whose part cannot be queued (the critical lane is full while the
// batcher waits for an in-flight slot) gives up when the store closes: the
// held actions are answered ErrNotLeader, nothing is proposed.
func TestFairReleaseBlockedOnAFullLaneFailsWhenTheStoreCloses(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Batch.MaxActions = 1
		cfg.Batch.MaxInflight = 1
		cfg.Batch.QueueSize = 1
		cfg.Batch.MaxWait = 5 * time.Second
	})
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "fair", fsm.Rules{Fair: fsm.Fairness{Window: time.Second}}))
	mustCreateWorld(t, l, "plain")
	m := installManualWindows(l.batcher, time.Now())
	sorted := make(chan struct{}, 1)
	l.batcher.fair.mu.Lock()
	l.batcher.fair.afterSort = func() { sorted <- struct{}{} }
	l.batcher.fair.mu.Unlock()
	ann := actAsync(t, l, incr("fair", "ann", 1, "e", "c", 1))
	waitHeld(t, l.batcher, "fair", 1)

	// The only in-flight slot is taken: the batcher takes one plain action
	// (a full batch of one) and waits for the slot; a second fills the lane.
	l.batcher.sem <- struct{}{}
	plain := func(seq uint64) *proposal {
		a := incr("plain", "cy", seq, "e", "c", 1)
		return &proposal{cmd: fsm.Command{Kind: fsm.CmdAction, Action: a}, size: 64, done: make(chan outcome, 1)}
	}
	p1, p2 := plain(1), plain(2)
	l.batcher.critical <- p1
	require.Eventually(t, func() bool { return len(l.batcher.critical) == 0 }, 10*time.Second, time.Millisecond, "the batcher took it")
	l.batcher.critical <- p2
	go m.fire(t)
	<-sorted // ann's group is released into the full lane
	require.NoError(t, l.Close(context.Background()))
	require.ErrorIs(t, (<-ann).err, ErrNotLeader)
	require.ErrorIs(t, (<-p1.done).err, ErrNotLeader)
	require.ErrorIs(t, (<-p2.done).err, ErrNotLeader)
}
