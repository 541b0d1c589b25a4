package spectator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Defaults of a pipeline's Config.
const (
	DefaultTick             = 100 * time.Millisecond
	DefaultKeyframeInterval = 5 * time.Second
	DefaultQueue            = 256
	DefaultMaxHeld          = 1 << 20
)

// Config configures a Pipeline.
type Config struct {
	// World is the world watched (required).
	World string
	// Access is the world's visibility rules (required).
	Access *Access
	// Subscribe opens the world's feed (required): the seam the event
	// streams' fan-out reads too (fanout.SubscribeFunc, store.Subscribe).
	Subscribe fanout.SubscribeFunc
	// Seed is the state to start from: the feed is read from the event
	// after it. Nil starts from the world's first event. A seed newer than
	// the delay allows is refused (ErrSeedTooNew): start from an older one.
	Seed *State
	// TeamOf gives players' teams when they come from claims or session
	// data; nil: no such teams.
	TeamOf TeamFunc
	// Aggregates are the world's aggregated views (NewAggregates), kept by
	// the pipeline from the events it releases; nil: none. One per
	// pipeline: it holds their state.
	Aggregates *Aggregates
	// Delay is how old an event must be (in the leader's time) before any
	// frame reflects it; every view of the pipeline has this delay.
	Delay time.Duration
	// MaxClockSkew bounds how far this node's clock may be from the
	// leader's for the delay to hold (see Delay).
	MaxClockSkew time.Duration
	// Tick is how often released events make deltas.
	Tick time.Duration
	// KeyframeInterval is how often each view's join keyframe is made
	// anew; a viewer joining gets the latest one and the deltas since.
	KeyframeInterval time.Duration
	// Queue is how many frames a viewer may have waiting; a viewer with a
	// full queue skips deltas and gets a keyframe once it has room again.
	Queue int
	// MaxHeld bounds the events the delay holds; beyond it the pipeline
	// stops reading the feed until some are released (the feed keeps them).
	MaxHeld int
	// Now is the clock (time.Now unless set).
	Now func() time.Time
	// Filtered says the feed is already cut to one view (a relay follows
	// a node's filtered event stream): its seqs may skip the events the
	// view saw nothing of, so each event need only come after the last.
	Filtered bool
	// Checkpoint gives the keyframes' signed audit checkpoints (nil:
	// keyframes carry none); see AddCheckpoint for which views get one.
	Checkpoint CheckpointFunc
}

// DefaultConfig returns a Config with the defaults; World, Access and
// Subscribe are left to the caller.
func DefaultConfig() Config {
	return Config{MaxClockSkew: DefaultMaxClockSkew, Tick: DefaultTick, KeyframeInterval: DefaultKeyframeInterval,
		Queue: DefaultQueue, MaxHeld: DefaultMaxHeld, Now: time.Now}
}

// Validate reports a Config a Pipeline cannot run with.
func (c Config) Validate() error {
	switch {
	case c.World == "":
		return errors.New("spectator: no World")
	case c.Access == nil:
		return errors.New("spectator: nil Access")
	case c.Subscribe == nil:
		return errors.New("spectator: nil Subscribe")
	case c.Now == nil:
		return errors.New("spectator: nil Now")
	case c.Seed != nil && c.Seed.world != c.World:
		return fmt.Errorf("spectator: seed of world %s for world %s", c.Seed.world, c.World)
	case c.Delay < 0 || c.Delay > fsm.MaxViewDelay:
		return fmt.Errorf("%w: %s is outside 0..%s", ErrBadDelay, c.Delay, fsm.MaxViewDelay)
	case c.MaxClockSkew < 0:
		return errors.New("spectator: MaxClockSkew must be >= 0")
	case c.Tick <= 0 || c.KeyframeInterval <= 0:
		return errors.New("spectator: Tick and KeyframeInterval must be > 0")
	case c.Queue < 2+c.Aggregates.Len() || c.MaxHeld < 1:
		return errors.New("spectator: Queue must hold a keyframe, a delta and a frame per aggregated view; MaxHeld must be at least 1")
	}
	return nil
}

// Pipeline serves the watchers of one world with one delay: it reads the
// world's feed once, holds the events in a Delay, applies the released
// ones to the world's State once per tick, and makes each view's delta
// once per tick and its keyframe once per interval, encoded once and
// shared by the view's viewers. A viewer joins with a keyframe then gets
// deltas; one too slow for its queue skips to a keyframe.
//
// Goroutines: a reader of the feed and the loop, both owned by the
// pipeline; Close stops them and waits. A feed that fails stops the
// pipeline: its viewers' channels close and Err says why.
type Pipeline struct {
	cfg    Config
	delay  *Delay // the loop's only
	sub    fanout.Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	ticker    *Ticker
	views     map[viewKey]*viewState
	lastKey   time.Time
	err       error
	stopped   bool
	keyframes int // keyframes made, for tests and metrics
	stats     Stats
	aggs      []*aggFrame // each aggregate's latest frame, for joiners
}

// viewKey is a view and what its viewers get after their keyframe.
type viewKey struct {
	view   View
	events bool // filtered events, not deltas
}

// viewState is one view's viewers and its join point: the latest keyframe
// and the deltas made since.
type viewState struct {
	members map[*Member]struct{}
	key     *Frame
	since   []*Frame
	cur     *Frame // keyframe at the state's seq, made for a lagging viewer
}

// New starts a pipeline.
func New(cfg Config) (*Pipeline, error) {
	p, err := newPipeline(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	evs := make(chan []*fsm.Event)
	errs := make(chan error, 1)
	p.wg.Add(2)
	go p.read(ctx, evs, errs)
	go p.loop(ctx, evs, errs)
	return p, nil
}

// newPipeline makes a pipeline without starting it.
func newPipeline(cfg Config) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := cfg.Seed
	if s == nil {
		s = NewState(cfg.World)
	}
	s.gaps = cfg.Filtered
	s.quantise(cfg.Access.quanta) // spectators get quantised fields rounded
	delay := NewDelay(cfg.Delay, cfg.MaxClockSkew)
	if cfg.Delay > 0 && s.time > delay.Cutoff(cfg.Now()) {
		// Its keyframes would show what the delay still holds back.
		return nil, fmt.Errorf("%w: seq %d of world %s", ErrSeedTooNew, s.seq, cfg.World)
	}
	sub, err := cfg.Subscribe(cfg.World, s.seq+1)
	if err != nil {
		return nil, fmt.Errorf("spectator: subscribe world %s from %d: %w", cfg.World, s.seq+1, err)
	}
	p := &Pipeline{cfg: cfg, delay: delay, sub: sub,
		ticker: NewTicker(cfg.Access, s, cfg.TeamOf), views: make(map[viewKey]*viewState),
		lastKey: cfg.Now(), cancel: func() {}}
	if ag := cfg.Aggregates; ag != nil {
		ag.update(s, cfg.TeamOf, maps.Keys(s.ents))
		fs, err := ag.frames(cfg.World, s.seq)
		if err != nil {
			return nil, err
		}
		p.aggs = fs
	}
	return p, nil
}

// read hands the feed's events to the loop until ctx ends or the feed
// fails.
func (p *Pipeline) read(ctx context.Context, out chan<- []*fsm.Event, errs chan<- error) {
	defer p.wg.Done()
	for {
		evs, err := p.sub.Next(ctx)
		if err != nil {
			errs <- err
			return
		}
		select {
		case out <- evs:
		case <-ctx.Done():
			return
		}
	}
}

// loop holds events, and steps once per tick.
func (p *Pipeline) loop(ctx context.Context, evs <-chan []*fsm.Event, errs <-chan error) {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		in := evs
		if p.delay.Len() >= p.cfg.MaxHeld {
			in = nil // the feed keeps them meanwhile
		}
		select {
		case <-ctx.Done():
			p.stop(ErrClosed)
			return
		case err := <-errs:
			if ctx.Err() != nil {
				err = ErrClosed // the read ended because the pipeline did
			} else {
				err = fmt.Errorf("spectator: world %s feed: %w", p.cfg.World, err)
			}
			p.stop(err)
			return
		case b := <-in:
			p.delay.Push(b...)
		case <-t.C:
			if err := p.step(p.cfg.Now()); err != nil {
				p.stop(err)
				return
			}
		}
	}
}

// step releases what the delay lets go at now, makes the tick's deltas and,
// when due, new keyframes, and serves lagging viewers. The event of a
// rules update later than the pipeline's rules (NewAccessAt, RulesUpdate)
// is the last it applies: the tick's frames up to it go out under its
// rules, then it stops with ErrRulesChanged (its viewers join again,
// under the new rules), so no event after the update is cut under the
// old rules.
func (p *Pipeline) step(now time.Time) error {
	released := p.delay.Release(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	var end error
	for _, ev := range released {
		if err := p.ticker.Apply(ev); err != nil {
			return err
		}
		if ag := p.cfg.Aggregates; ag != nil {
			ag.observe(ev)
		}
		if p.cfg.Access.ends(ev) {
			end = fmt.Errorf("%w: at seq %d of world %s", ErrRulesChanged, ev.Seq, p.cfg.World)
			break
		}
	}
	if p.ticker.Pending() {
		var aggs []*aggFrame
		if ag := p.cfg.Aggregates; ag != nil {
			ag.update(p.ticker.State(), p.cfg.TeamOf, p.ticker.touchedIDs)
			var err error
			if aggs, err = ag.frames(p.cfg.World, p.ticker.State().Seq()); err != nil {
				return err
			}
			p.mergeAggsLocked(aggs)
			for _, a := range aggs {
				p.encodedLocked(a.frame, nil)
			}
		}
		parts := map[partKey]*Frame{} // the tick's frames cut to a group, each made once
		for key, vs := range p.views {
			f, err := p.tickFrameLocked(key)
			if err != nil {
				return err
			}
			if f != nil {
				vs.since = append(vs.since, f)
				p.sendLocked(vs, f)
			}
			for _, a := range aggs {
				f, err := p.aggFrameLocked(key.view, a, parts)
				if err != nil {
					return err
				}
				if f != nil {
					p.sendLocked(vs, f)
				}
			}
			vs.cur = nil
		}
		p.ticker.Reset()
	}
	if end != nil {
		return end
	}
	if now.Sub(p.lastKey) >= p.cfg.KeyframeInterval {
		p.lastKey = now
		for key, vs := range p.views {
			k, err := p.keyframeLocked(key)
			if err != nil {
				return err
			}
			vs.key, vs.since, vs.cur = k, nil, k
		}
	}
	for key, vs := range p.views {
		aggs, err := p.aggsFor(key.view)
		if err != nil {
			return err
		}
		for m := range vs.members {
			if !m.lagging || m.room() < 1+len(aggs) {
				continue
			}
			if vs.cur == nil {
				k, err := p.keyframeLocked(key)
				if err != nil {
					return err
				}
				vs.cur = k
			}
			p.queueLocked(m, vs.cur)
			for _, f := range aggs {
				p.queueLocked(m, f)
			}
			m.lagging = false
		}
	}
	return nil
}

// mergeAggsLocked records the aggregates' latest frames.
func (p *Pipeline) mergeAggsLocked(fs []*aggFrame) {
	for _, f := range fs {
		i := slices.IndexFunc(p.aggs, func(o *aggFrame) bool { return o.agg == f.agg })
		if i < 0 {
			p.aggs = append(p.aggs, f)
		} else {
			p.aggs[i] = f
		}
	}
}

// Views returns the aggregated views view may see as of the seq the
// pipeline's state is at (released events only: a delayed pipeline's
// views hold nothing the delay holds back), and that seq. After the
// pipeline stopped it returns its error.
func (p *Pipeline) Views(view View) (uint64, []wire.ViewFrame, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return 0, nil, p.err
	}
	seq := p.ticker.State().Seq()
	if p.cfg.Aggregates == nil {
		return seq, nil, nil
	}
	view = p.cfg.Access.bound(view, p.ticker.State(), p.cfg.TeamOf)
	return seq, p.cfg.Aggregates.current(p.cfg.World, p.ticker.State(), p.cfg.TeamOf, view), nil
}

// aggsFor returns the latest frames of the aggregates view may see, whole
// or cut to the one group it may see (Aggregates.part).
func (p *Pipeline) aggsFor(view View) ([]*Frame, error) {
	var out []*Frame
	for _, a := range p.aggs {
		f, err := p.aggFrameLocked(view, a, nil)
		if err != nil {
			return nil, err
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out, nil
}

// partKey is an aggregate's frame cut to one group.
type partKey struct {
	agg   *aggregate
	group string
}

// aggFrameLocked returns a's frame for view: whole when view may see it,
// cut to the group it may see of it (made once per parts, when given),
// or nil.
func (p *Pipeline) aggFrameLocked(view View, a *aggFrame, parts map[partKey]*Frame) (*Frame, error) {
	ag := p.cfg.Aggregates
	if ag.sees(view, a.agg) {
		return a.frame, nil
	}
	grp, ok := ag.part(p.cfg.Access.bound(view, p.ticker.State(), p.cfg.TeamOf), a.agg)
	if !ok {
		return nil, nil
	}
	if f := parts[partKey{a.agg, grp}]; f != nil {
		return f, nil
	}
	g := a.agg
	s := p.ticker.State() // the group as it is now: at its seq
	f, err := p.encodedLocked(encode(wire.TypeView, s.Seq(), &wire.ViewFrame{Type: wire.TypeView, World: p.cfg.World,
		Name: g.name, Kind: g.rule.Kind, Seq: s.Seq(), Groups: ag.group(s, p.cfg.TeamOf, g, grp)}))
	if err == nil && parts != nil {
		parts[partKey{a.agg, grp}] = f
	}
	return f, err
}

// tickFrameLocked returns the tick's frame for key's viewers: its delta,
// or its filtered events; nil when there is nothing for them.
func (p *Pipeline) tickFrameLocked(key viewKey) (*Frame, error) {
	if p.ticker.Resync(key.view) {
		return p.keyframeLocked(key) // its player changed team
	}
	if key.events {
		if e := p.ticker.Events(key.view); e != nil {
			return p.encodedLocked(encode(wire.TypeEvents, e.Seq, e))
		}
		return nil, nil
	}
	// The slice form, sorted, writes its JSON straight (as a replay's
	// does): no map per entity; the wire form is made only for Msgpack.
	if d := p.ticker.tickDelta(key.view, true); d != nil {
		return p.encodedLocked(d.frame())
	}
	return nil, nil
}

// keyframeLocked makes key's keyframe at the state now: with quantised
// fields rounded for deltas' viewers, whole for events' (whose events
// are whole).
func (p *Pipeline) keyframeLocked(key viewKey) (*Frame, error) {
	s := p.ticker.State()
	k := keyframe(p.cfg.Access, s, p.cfg.TeamOf, key.view, key.events)
	AddCheckpoint(k, p.cfg.Access, p.cfg.Checkpoint)
	p.keyframes++
	return p.encodedLocked(encode(wire.TypeKeyframe, k.Seq, k))
}

// encodedLocked counts a frame made.
func (p *Pipeline) encodedLocked(f *Frame, err error) (*Frame, error) {
	if err == nil {
		p.stats.Encoded++
		p.stats.EncodedBytes += len(f.Data)
	}
	return f, err
}

// stop ends the pipeline with err: every viewer's channel closes.
func (p *Pipeline) stop(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped, p.err = true, err
	for v, vs := range p.views {
		for m := range vs.members {
			close(m.ch)
		}
		delete(p.views, v)
	}
	p.cancel()
}

// Err returns why the pipeline stopped, or nil while it runs.
func (p *Pipeline) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Seq returns the seq of the last event the pipeline released.
func (p *Pipeline) Seq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ticker.State().Seq()
}

// Close stops the pipeline and waits for its goroutines.
func (p *Pipeline) Close() {
	p.cancel()
	p.wg.Wait()
	p.stop(ErrClosed)
}
