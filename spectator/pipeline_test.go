package spectator

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func pipelineConfig(t *testing.T, a *Access, fd *feed, clk *clock) Config {
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Now = "w", a, fd.subscribe, clk.Now
	cfg.Tick = time.Millisecond
	return cfg
}

// next waits for m's next frame.
func next(t *testing.T, m *Member) *Frame {
	t.Helper()
	select {
	case f, ok := <-m.Frames():
		require.True(t, ok, "channel closed")
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame")
		return nil
	}
}

func TestPipelineGivesAJoinerAKeyframeThenDeltas(t *testing.T) {
	a := access(t, map[string]string{"x": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x", "mine"))
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	fd.push(g.act("ann", set("ann", "x", fsm.String("1")), set("ann", "mine", fsm.String("secret"))))
	clk.set(time.Unix(0, g.time))
	p, err := New(pipelineConfig(t, a, fd, clk))
	require.NoError(t, err)
	defer p.Close()
	require.Eventually(t, func() bool { return p.Seq() == 1 }, 10*time.Second, time.Millisecond)

	m, err := p.Join(resolve(t, a, Viewer{}))
	require.NoError(t, err)
	k := decodeKeyframe(t, next(t, m))
	require.Equal(t, uint64(1), k.Seq)
	require.Equal(t, map[string]wire.WatchField{"x": {Value: ptr(fsm.String("1")), Version: 1}}, k.Entities["ann"].Fields)

	fd.push(g.act("ann", set("ann", "mine", fsm.String("s2"))), g.act("ann", set("ann", "x", fsm.String("2"))))
	clk.set(time.Unix(0, g.time))
	d := decodeDelta(t, next(t, m))
	require.Equal(t, uint64(3), d.Seq)
	require.Equal(t, map[string]wire.WatchField{"x": {Value: ptr(fsm.String("2")), Version: 3}}, d.Entities["ann"].Fields)

	// A second viewer of the same view shares its frames: it gets the
	// same keyframe and the same delta, byte for byte.
	m2, err := p.Join(resolve(t, a, Viewer{Delay: 0}))
	require.NoError(t, err)
	k2 := next(t, m2)
	require.Equal(t, wire.TypeKeyframe, k2.Type)
	d2 := next(t, m2)
	require.Equal(t, wire.TypeWatchDelta, d2.Type)
	require.Equal(t, uint64(3), d2.Seq)

	p.Leave(m)
	_, ok := <-m.Frames()
	require.False(t, ok, "leave closes the channel")
	p.Leave(m) // twice is harmless
	p.Leave(m2)
	p.Leave(m2)
}

func TestPipelineHoldsEverythingUntilTheDelayPassed(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	cfg := pipelineConfig(t, a, fd, clk)
	cfg.Delay, cfg.MaxClockSkew = time.Minute, time.Second
	p, err := New(cfg)
	require.NoError(t, err)
	defer p.Close()
	fd.push(g.act("ann", set("ann", "x", fsm.String("1"))))
	clk.set(time.Unix(0, g.time).Add(time.Minute)) // not yet: the skew
	m, err := p.Join(View{})
	require.NoError(t, err)
	k := decodeKeyframe(t, next(t, m))
	require.Zero(t, k.Seq)
	require.Empty(t, k.Entities)
	clk.set(time.Unix(0, g.time).Add(time.Minute + time.Second))
	d := decodeDelta(t, next(t, m))
	require.Equal(t, uint64(1), d.Seq)
}

func TestPipelineSkipsASlowViewerToAKeyframe(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	cfg := pipelineConfig(t, a, fd, clk)
	cfg.Queue = 2
	p, err := New(cfg)
	require.NoError(t, err)
	defer p.Close()
	m, err := p.Join(View{})
	require.NoError(t, err)
	// Fill the queue: the keyframe and one delta; the next deltas are
	// skipped.
	for i := range 3 {
		fd.push(g.act("ann", set("ann", "x", fsm.String(string(rune('a'+i))))))
		clk.set(time.Unix(0, g.time))
		want := uint64(i + 1)
		require.Eventually(t, func() bool { return p.Seq() == want }, 10*time.Second, time.Millisecond)
	}
	require.Equal(t, wire.TypeKeyframe, next(t, m).Type)
	require.Equal(t, uint64(1), decodeDelta(t, next(t, m)).Seq)
	// Room again: a keyframe at the state the viewer missed deltas of.
	k := decodeKeyframe(t, next(t, m))
	require.Equal(t, uint64(3), k.Seq)
	require.Equal(t, fsm.String("c"), *k.Entities["ann"].Fields["x"].Value)
	fd.push(g.act("ann", set("ann", "x", fsm.String("d"))))
	clk.set(time.Unix(0, g.time))
	require.Equal(t, uint64(4), decodeDelta(t, next(t, m)).Seq, "and deltas again")
}

// steppedPipeline returns a pipeline of world w (x seen by all) with
// interval and queue that the test steps by hand: step(v) sets ann's x to
// v and ticks a second later, tick(d) ticks d later.
func steppedPipeline(t *testing.T, interval time.Duration, queue int) (p *Pipeline, step func(v string), tick func(d time.Duration)) {
	t.Helper()
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	now := time.Unix(0, t0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", a, fd.subscribe
	cfg.Now = func() time.Time { return now }
	cfg.KeyframeInterval, cfg.Queue = interval, queue
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	tick = func(d time.Duration) {
		now = now.Add(d)
		require.NoError(t, p.step(now))
	}
	step = func(v string) {
		p.delay.Push(g.act("ann", set("ann", "x", fsm.String(v))))
		tick(time.Second)
	}
	return p, step, tick
}

func TestPipelineJoinGetsTheLatestKeyframeAndTheDeltasSince(t *testing.T) {
	p, step, tick := steppedPipeline(t, 10*time.Second, 3)
	first, err := p.Join(View{})
	require.NoError(t, err)
	keyframes := p.keyframes
	step("a")
	step("b")
	m, err := p.Join(View{})
	require.NoError(t, err)
	require.Equal(t, keyframes, p.keyframes, "a joiner takes the view's keyframe, none is made for it")
	require.Zero(t, decodeKeyframe(t, next(t, m)).Seq)
	require.Equal(t, uint64(1), decodeDelta(t, next(t, m)).Seq)
	require.Equal(t, uint64(2), decodeDelta(t, next(t, m)).Seq)

	step("c") // three deltas since the keyframe: they do not fit a queue of 3 with it
	m3, err := p.Join(View{})
	require.NoError(t, err)
	require.Equal(t, keyframes+1, p.keyframes)
	require.Equal(t, uint64(3), decodeKeyframe(t, next(t, m3)).Seq)

	tick(10 * time.Second) // the interval: a new keyframe per view
	require.Equal(t, keyframes+2, p.keyframes)
	m4, err := p.Join(View{})
	require.NoError(t, err)
	require.Equal(t, uint64(3), decodeKeyframe(t, next(t, m4)).Seq)
	require.Len(t, m4.Frames(), 0)
	for _, m := range []*Member{first, m, m3, m4} {
		p.Leave(m)
	}
	require.Empty(t, p.views)
}

func TestPipelineStopsWhenItsFeedFails(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	p, err := New(pipelineConfig(t, a, fd, clk))
	require.NoError(t, err)
	defer p.Close()
	m, err := p.Join(View{})
	require.NoError(t, err)
	require.Nil(t, p.Err())
	boom := errors.New("archive gap")
	fd.fail(boom)
	for range m.Frames() {
	}
	require.ErrorIs(t, p.Err(), boom)
	_, err = p.Join(View{})
	require.ErrorIs(t, err, boom)
}

func TestPipelineStopsOnAnEventOutOfOrder(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	p, err := New(pipelineConfig(t, a, fd, clk))
	require.NoError(t, err)
	defer p.Close()
	m, err := p.Join(View{})
	require.NoError(t, err)
	fd.push(&fsm.Event{World: "w", Seq: 1, Time: t0}, &fsm.Event{World: "w", Seq: 3, Time: t0})
	for range m.Frames() {
	}
	require.ErrorIs(t, p.Err(), ErrGap)
}

// A filtered feed (a relay's) skips the seqs its view saw nothing of:
// its pipeline takes each event that comes after the last, and still
// stops on one that does not.
func TestPipelineOfAFilteredFeedTakesSeqGapsButNotRepeats(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	cfg := pipelineConfig(t, a, fd, clk)
	cfg.Filtered = true
	p, err := New(cfg)
	require.NoError(t, err)
	defer p.Close()
	m, err := p.Join(View{})
	require.NoError(t, err)
	fd.push(&fsm.Event{World: "w", Seq: 1, Time: t0}, &fsm.Event{World: "w", Seq: 3, Time: t0})
	require.Eventually(t, func() bool { return p.Seq() == 3 }, 10*time.Second, time.Millisecond)
	require.Nil(t, p.Err())
	fd.push(&fsm.Event{World: "w", Seq: 3, Time: t0})
	for range m.Frames() {
	}
	require.ErrorIs(t, p.Err(), ErrGap)
}

func TestPipelineCloseEndsViewersAndJoins(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	p, err := New(pipelineConfig(t, a, fd, clk))
	require.NoError(t, err)
	m, err := p.Join(View{})
	require.NoError(t, err)
	p.Close()
	for range m.Frames() {
	}
	require.ErrorIs(t, p.Err(), ErrClosed)
	_, err = p.Join(View{})
	require.ErrorIs(t, err, ErrClosed)
	p.Leave(m) // after the stop: nothing left to do
	p.Close()  // twice is harmless
}

func TestPipelineReadsNoMoreThanItMayHold(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	cfg := pipelineConfig(t, a, fd, clk)
	cfg.Delay, cfg.MaxClockSkew, cfg.MaxHeld = time.Minute, 0, 1
	p, err := New(cfg)
	require.NoError(t, err)
	defer p.Close()
	fd.push(g.act("ann", set("ann", "x", fsm.String("1"))))
	fd.push(g.act("ann", set("ann", "x", fsm.String("2"))))
	m, err := p.Join(View{})
	require.NoError(t, err)
	next(t, m)
	clk.set(time.Unix(0, g.time).Add(time.Minute))
	require.Eventually(t, func() bool { return p.Seq() == 2 }, 10*time.Second, time.Millisecond,
		"held one at a time, read on as they go")
	p.Leave(m)
}

func TestPipelineStartsFromASeed(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	g.act("ann", set("ann", "x", fsm.String("1")))
	e, err := g.f.Entity("w", "ann")
	require.NoError(t, err)
	fd, clk := newFeed(), &clock{now: time.Unix(0, g.time)}
	var from uint64
	cfg := pipelineConfig(t, a, fd, clk)
	cfg.Seed = SeedState("w", e.Seq, g.time, []fsm.EntityView{e})
	cfg.Subscribe = func(w string, f uint64) (fanout.Subscription, error) { from = f; return fd.subscribe(w, f) }
	fd.push(g.events...)
	p, err := New(cfg)
	require.NoError(t, err)
	defer p.Close()
	require.Equal(t, uint64(2), from, "the feed from the event after the seed")
	m, err := p.Join(View{})
	require.NoError(t, err)
	require.Equal(t, fsm.String("1"), *decodeKeyframe(t, next(t, m)).Entities["ann"].Fields["x"].Value)
	p.Leave(m)
}

func TestPipelineConfigIsValidated(t *testing.T) {
	a := access(t, nil, nil, fsm.TeamRule{})
	fd := newFeed()
	good := DefaultConfig()
	good.World, good.Access, good.Subscribe = "w", a, fd.subscribe
	require.NoError(t, good.Validate())
	for name, mod := range map[string]func(*Config){
		"world":    func(c *Config) { c.World = "" },
		"access":   func(c *Config) { c.Access = nil },
		"feed":     func(c *Config) { c.Subscribe = nil },
		"clock":    func(c *Config) { c.Now = nil },
		"seed":     func(c *Config) { c.Seed = NewState("v") },
		"delay":    func(c *Config) { c.Delay = fsm.MaxViewDelay + 1 },
		"skew":     func(c *Config) { c.MaxClockSkew = -1 },
		"tick":     func(c *Config) { c.Tick = 0 },
		"interval": func(c *Config) { c.KeyframeInterval = 0 },
		"queue":    func(c *Config) { c.Queue = 1 },
		"held":     func(c *Config) { c.MaxHeld = 0 },
	} {
		c := good
		mod(&c)
		_, err := New(c)
		require.Error(t, err, name)
	}
	bad := good
	bad.Subscribe = func(string, uint64) (fanout.Subscription, error) { return nil, errors.New("gap") }
	_, err := New(bad)
	require.ErrorContains(t, err, "gap")
}

func TestPipelineReportsAFrameItCannotEncode(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", a, newFeed().subscribe
	nan := fsm.Float(0)
	nan.Float = nan.Float / nan.Float // NaN: no JSON for it
	cfg.Seed = SeedState("w", 1, 0, []fsm.EntityView{{ID: "e", Fields: []fsm.FieldView{{Name: "x", Value: nan}}}})
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	_, err = p.Join(View{})
	require.Error(t, err)
}

func TestPipelineRefusesASeedNewerThanItsDelay(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	now := time.Unix(1_700_000_000, 0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", a, newFeed().subscribe
	cfg.Now = func() time.Time { return now }
	cfg.Delay, cfg.MaxClockSkew = time.Minute, time.Second
	cfg.Seed = SeedState("w", 5, now.Add(-time.Minute).UnixNano(), nil)
	_, err := newPipeline(cfg)
	require.ErrorIs(t, err, ErrSeedTooNew, "within the skew bound")
	cfg.Seed = SeedState("w", 5, now.Add(-time.Minute-time.Second).UnixNano(), nil)
	_, err = newPipeline(cfg)
	require.NoError(t, err)
}

func TestPipelineEventsViewersGetAKeyframeThenFilteredEvents(t *testing.T) {
	a := access(t, map[string]string{"x": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x", "mine"))
	fd := newFeed()
	now := time.Unix(0, t0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", a, fd.subscribe
	cfg.Now = func() time.Time { return now }
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	p.delay.Push(g.act("ann", set("ann", "x", fsm.String("1"))))
	require.NoError(t, p.step(now))
	pub, err := p.JoinEvents(resolve(t, a, Viewer{}))
	require.NoError(t, err)
	ann, err := p.JoinEvents(resolve(t, a, Viewer{Player: "ann"}))
	require.NoError(t, err)
	deltas, err := p.Join(resolve(t, a, Viewer{}))
	require.NoError(t, err)
	for _, m := range []*Member{pub, ann, deltas} {
		require.Equal(t, uint64(1), decodeKeyframe(t, <-m.ch).Seq)
	}

	p.delay.Push(g.act("ann", set("ann", "mine", fsm.String("secret"))), // only hidden: ann's own
		g.act("bob", set("bob", "x", fsm.String("2")), set("bob", "mine", fsm.String("s2"))),
		g.act("bob", set("bob", "mine", fsm.String("s3")))) // only hidden: bob's
	require.NoError(t, p.step(now))
	var e wire.Events
	require.NoError(t, json.Unmarshal((<-pub.ch).Data, &e))
	require.Equal(t, wire.TypeEvents, e.Type)
	require.Equal(t, uint64(2), e.From)
	require.Equal(t, uint64(4), e.Seq)
	require.Len(t, e.Events, 1, "the hidden-only events are not there")
	require.Equal(t, uint64(3), e.Events[0].Seq)
	require.Len(t, e.Events[0].Changes, 1)
	require.NotContains(t, string((<-ann.ch).Data), "secret")
	require.Equal(t, wire.TypeWatchDelta, (<-deltas.ch).Type)

	p.delay.Push(g.act("bob", set("bob", "mine", fsm.String("s4"))))
	require.NoError(t, p.step(now))
	require.Empty(t, pub.ch, "nothing it may see: no frame")
}

func TestPipelineFramesAreSafeToEncodeWhileItRuns(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{"kills": {Kind: "sum", Field: "kills", By: "team"}}, nil)
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	g := newGame(t, "w", r.Fields)
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	cfg := pipelineConfig(t, a, fd, clk)
	cfg.Aggregates = ag
	p, err := New(cfg)
	require.NoError(t, err)
	defer p.Close()
	m1, err := p.Join(View{})
	require.NoError(t, err)
	m2, err := p.Join(View{})
	require.NoError(t, err)
	done := make(chan struct{})
	for _, m := range []*Member{m1, m2} {
		go func() {
			defer func() { done <- struct{}{} }()
			for f := range m.Frames() {
				if _, err := f.Msgpack(); err != nil {
					t.Error(err) // not FailNow: another goroutine
				}
				if f.Type == wire.TypeView && f.Seq == 20 {
					return
				}
			}
		}()
	}
	for i := range 20 {
		fd.push(g.act("ann", set("ann", "side", fsm.String([]string{"red", "blue"}[i%2])), incr("ann", "kills", 1)))
		clk.set(time.Unix(0, g.time))
	}
	<-done
	<-done
	p.Leave(m1)
	p.Leave(m2)
}

func TestPipelineCountsWhatItEncodesAndWhatViewersAreSent(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	now := time.Unix(0, t0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Queue = "w", a, newFeed().subscribe, 2
	cfg.Now = func() time.Time { return now }
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	m1, err := p.Join(View{})
	require.NoError(t, err)
	m2, err := p.Join(View{})
	require.NoError(t, err)
	<-m2.ch // m2 reads; m1 does not
	for _, v := range []string{"a", "b"} {
		p.delay.Push(g.act("ann", set("ann", "x", fsm.String(v))))
		require.NoError(t, p.step(now))
	}
	st := p.Stats()
	require.Equal(t, 3, st.Encoded, "one keyframe and two deltas, for both viewers")
	require.Equal(t, 1, st.Skips, "m1's queue was full for the second delta")
	f1, b1 := p.Sent(m1)
	f2, b2 := p.Sent(m2)
	require.Equal(t, 2, f1)
	require.Equal(t, 3, f2)
	require.Equal(t, st.QueuedBytes, b1+b2)
	require.Equal(t, 5, st.Queued)
	require.Less(t, b1, b2)
	require.Positive(t, st.EncodedBytes)
}

func TestPipelineSendsAKeyframeWhenAViewersPlayerChangesTeam(t *testing.T) {
	a := access(t, map[string]string{"side": "", "plan": "team"}, nil, fsm.TeamRule{From: "field", Key: "side"})
	g := newGame(t, "w", strFields("side", "plan"))
	now := time.Unix(0, t0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", a, newFeed().subscribe
	cfg.Now = func() time.Time { return now }
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	p.delay.Push(g.act("ann", set("ann", "side", fsm.String("red")), set("ann", "plan", fsm.String("rush"))),
		g.act("bob", set("bob", "side", fsm.String("red"))),
		g.act("cat", set("cat", "side", fsm.String("blue")), set("cat", "plan", fsm.String("hold"))))
	require.NoError(t, p.step(now))
	bobView := resolve(t, a, Viewer{Player: "bob", Team: "blue"}) // the Team a player gives is not taken
	bob, err := p.Join(bobView)
	require.NoError(t, err)
	bobEvents, err := p.JoinEvents(bobView)
	require.NoError(t, err)
	k := decodeKeyframe(t, <-bob.ch)
	require.Contains(t, k.Entities["ann"].Fields, "plan", "bob is red: he sees red's plan")
	require.NotContains(t, k.Entities["cat"].Fields, "plan")
	<-bobEvents.ch

	p.delay.Push(g.act("bob", set("bob", "side", fsm.String("blue"))))
	require.NoError(t, p.step(now))
	k = decodeKeyframe(t, <-bob.ch)
	require.NotContains(t, k.Entities["ann"].Fields, "plan", "bob left red: red's plan is gone from his picture")
	require.Contains(t, k.Entities["cat"].Fields, "plan")
	require.Equal(t, wire.TypeKeyframe, (<-bobEvents.ch).Type)

	p.delay.Push(g.act("ann", set("ann", "plan", fsm.String("rush B"))))
	require.NoError(t, p.step(now))
	require.Empty(t, bob.ch, "red's plan changes reach him no more")
	require.Empty(t, bobEvents.ch)
}

// Member.room's arithmetic: what is queued and what the writer counts in
// flight both take room. This test sets the count by hand (no writer
// runs): as internal/wscork.Batch's count reads for the instant between
// counting a frame and taking it from the queue, the frame is counted
// twice, one frame less room, and the viewer skips to a keyframe one
// frame early; counted once, it skips at its bound. It checks room, not
// the writer's order of count and take, which
// TestBatchCountsAnItemBeforeItLeavesTheQueue (internal/wscork) pins.
func TestPipelineSkipsAViewerAtItsBoundOrAFrameEarlyNeverLate(t *testing.T) {
	p, step, _ := steppedPipeline(t, time.Hour, 3)
	early, err := p.Join(View{})
	require.NoError(t, err)
	exact, err := p.Join(View{})
	require.NoError(t, err)
	for _, m := range []*Member{early, exact} {
		require.Equal(t, wire.TypeKeyframe, next(t, m).Type) // being written
	}
	step("a")
	step("b")                 // both queues: a, b
	early.InFlight().Store(1) // its writer counted a, has not taken it yet
	step("c")
	require.Equal(t, 1, p.Stats().Skips, "early: two queued and a counted twice, the bound of 3 reached a frame early")
	require.Len(t, exact.Frames(), 3, "exact: a, b and c fit its queue of 3")
	step("d")
	require.Equal(t, 2, p.Stats().Skips, "exact: full, it skips at its bound")
	for _, m := range []*Member{early, exact} {
		room := m.room()
		require.GreaterOrEqual(t, room, 0, "never past the bound")
	}
}

// The frames a viewer's writer took from its queue and has not written
// (Member.InFlight) count as queued: the viewer skips to a keyframe once
// they and its queue fill it, and gets the keyframe only when there is
// room beside them.
func TestPipelineCountsFramesInFlightAsQueued(t *testing.T) {
	p, step, _ := steppedPipeline(t, time.Hour, 4)
	m, err := p.Join(View{})
	require.NoError(t, err)
	require.Equal(t, wire.TypeKeyframe, next(t, m).Type) // being written
	m.InFlight().Store(2)                                // a batch took two more
	step("a")
	step("b") // the queue: a, b; with the two in flight, full
	step("c")
	require.Equal(t, 1, p.Stats().Skips, "c found the queue full with what is in flight")
	require.Equal(t, uint64(1), decodeDelta(t, next(t, m)).Seq)
	require.Equal(t, uint64(2), decodeDelta(t, next(t, m)).Seq)
	m.InFlight().Store(4) // the batch took them too
	step("d")
	require.Empty(t, m.Frames(), "no room beside the four in flight: no keyframe yet")
	m.InFlight().Store(0) // the batch was written
	step("e")
	k := decodeKeyframe(t, next(t, m))
	require.Equal(t, uint64(5), k.Seq, "room again: the keyframe of the state it missed")
}
