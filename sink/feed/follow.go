package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// FollowConfig configures a Follower.
type FollowConfig struct {
	// Worlds limits the follower to these worlds; empty follows every
	// world.
	Worlds []string
	// Except are worlds the follower never follows (a sink's own
	// positions world, feed.PositionsWorld).
	Except []string
	// Reserved follows gsd's own worlds (Reserved: gsd.sinks,
	// gsd.relays, gsd.moderation) too when Worlds is empty; Worlds that
	// names one follows it either way.
	Reserved bool
	// AllNodes follows every world on this node; false (the sinks) only
	// the worlds whose group this node leads, checked on each check and
	// again before each batch.
	AllNodes bool
	// BatchSize bounds the events of one Deliver (0: what one read
	// returns, however many).
	BatchSize int
	// Linger is how long a read waits for more events to fill a batch
	// once it has some (0: deliver what one read returns).
	Linger time.Duration
	// CheckInterval is how often the follower looks for worlds to start
	// or stop following.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a failed session.
	RetryMin, RetryMax time.Duration

	Logger *slog.Logger
}

// Validate checks the config.
func (c FollowConfig) Validate() error {
	var errs []error
	if c.BatchSize < 0 {
		errs = append(errs, errors.New("feed follower: batch size must not be negative"))
	}
	if c.Linger < 0 {
		errs = append(errs, errors.New("feed follower: linger must not be negative"))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, errors.New("feed follower: check interval must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("feed follower: want 0 < RetryMin <= RetryMax"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("feed follower: Logger is required"))
	}
	return errors.Join(errs...)
}

// Follower runs, on one node, the loop every sink needs for each world it
// follows: load the stored position, pick the world's incarnation, read
// the committed feed from there with a linger and a batch limit, hand each
// batch to the sink's Target and go on from the position it returns, and
// after a failure back off (jittered) and start over from the stored
// position. The sink keeps only what is its own (a transaction, a signed
// POST, a file).
//
// Incarnations: a position names the incarnation it belongs to
// (Position.Incarnation: the world's creation index). A session starts
// from the stored position of the incarnation this node holds; when the
// sink stored only positions of other incarnations (the world was deleted
// and created again, or the positions were stored under the sinks'
// earlier definition, event 1's leader time), the session starts the
// incarnation from seq 1 instead of skipping its first events. A world
// re-created while a session follows it ends the session
// (ErrNewIncarnation).
type Follower[T Target] struct {
	cfg FollowConfig
	src Source
	h   Hooks[T]
	log *slog.Logger

	// owned by Run
	loops    map[string]*loop[T]
	stopping map[string]*loop[T] // stopped, maybe not ended yet
	wg       sync.WaitGroup
}

// NewFollower returns a follower of src's worlds that delivers through
// the Targets h.Start returns; it reads nothing until Run.
func NewFollower[T Target](cfg FollowConfig, src Source, h Hooks[T]) (*Follower[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("feed follower: no source")
	}
	if h.Start == nil || h.Fail == nil {
		return nil, errors.New("feed follower: Hooks.Start and Hooks.Fail are required")
	}
	return &Follower[T]{cfg: cfg, src: src, h: h, log: cfg.Logger}, nil
}

// Run follows until ctx ends, then stops every world's loop, waits for
// them and returns nil; call it once.
func (f *Follower[T]) Run(ctx context.Context) error {
	f.loops = make(map[string]*loop[T])
	f.stopping = make(map[string]*loop[T])
	defer f.stopAll()
	t := time.NewTicker(f.cfg.CheckInterval)
	defer t.Stop()
	for {
		f.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// follows reports whether this node should follow world now.
func (f *Follower[T]) follows(world string) bool {
	if !Selected(world, f.cfg.Worlds, f.cfg.Reserved) || slices.Contains(f.cfg.Except, world) {
		return false
	}
	return f.cfg.AllNodes || f.src.Leads(world)
}

// reconcile starts a loop for every world to follow and stops the others.
func (f *Follower[T]) reconcile(ctx context.Context) {
	follow := make(map[string]bool)
	for _, w := range f.src.Worlds() {
		if !f.follows(w.ID) {
			continue
		}
		follow[w.ID] = true
		l := f.loops[w.ID]
		if l != nil && l.recreated(w) {
			// Deleted and created again since its session began, which
			// may wait for a seq the new incarnation has not reached:
			// start over (on a later check, once the loop ended).
			f.log.Info("the world was deleted and created again: following it anew", "world", w.ID)
			f.stop(w.ID, l)
			l = nil
		}
		if l != nil && l.movedIn(w) {
			// Its session reads the old home, which gets no event after
			// the move's fence: go on at the new home (on a later check).
			f.log.Info("the world moved to another group: following it at its new home", "world", w.ID, "imported", w.Imported)
			f.stop(w.ID, l)
			l = nil
		}
		if l == nil {
			if l = f.start(ctx, w.ID); l == nil {
				continue
			}
		}
		if f.h.Check != nil {
			f.h.Check(w.ID, l.t, w)
		}
	}
	for id, l := range f.loops {
		if !follow[id] {
			f.log.Info("world no longer followed here (not leading its group, deleted or not selected): stopped", "world", id)
			f.stop(id, l)
		}
	}
	for id, l := range f.stopping {
		select {
		case <-l.done:
			delete(f.stopping, id) // ended: forget it (deleted worlds would pile up)
		default:
		}
	}
	if f.h.Followed != nil {
		f.h.Followed(len(f.loops))
	}
	if f.h.Checked != nil {
		following := make(map[string]int64, len(f.loops)+len(f.stopping))
		add := func(id string, inc int64) {
			if prev, ok := following[id]; ok && prev != inc {
				inc = 0 // a session ending beside a new one: keep all
			}
			following[id] = inc
		}
		for id, l := range f.stopping {
			add(id, l.inc.Load())
		}
		for id, l := range f.loops {
			add(id, l.inc.Load())
		}
		f.h.Checked(ctx, following)
	}
}

// start starts world's loop, unless its previous loop is still ending (a
// sink's Ender may be storing what it held): then the next check starts
// it, so two loops never run for one world.
func (f *Follower[T]) start(ctx context.Context, world string) *loop[T] {
	if old := f.stopping[world]; old != nil {
		select {
		case <-old.done:
			delete(f.stopping, world)
		default:
			return nil
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &loop[T]{f: f, world: world, t: f.h.Start(world), cancel: cancel, done: make(chan struct{})}
	f.loops[world] = l
	f.wg.Add(1)
	go l.run(ctx)
	f.log.Debug("following world", "world", world)
	return l
}

func (f *Follower[T]) stop(world string, l *loop[T]) {
	l.cancel()
	delete(f.loops, world)
	f.stopping[world] = l
	if f.h.Stop != nil {
		f.h.Stop(world, l.t)
	}
}

func (f *Follower[T]) stopAll() {
	for id, l := range f.loops {
		f.stop(id, l)
	}
	f.wg.Wait()
	f.loops, f.stopping = nil, nil
	if f.h.Followed != nil {
		f.h.Followed(0)
	}
}

// loop follows one world until its context ends.
type loop[T Target] struct {
	f      *Follower[T]
	world  string
	t      T
	cancel context.CancelFunc
	done   chan struct{}
	inc    atomic.Int64 // the incarnation the session follows; 0: unknown yet
	// imported is fsm.WorldInfo.Imported of the world's home when the
	// session began (0: created there); another home imports it at
	// another index (a world move, shard.Move).
	imported atomic.Uint64
	began    atomic.Bool
}

// movedIn reports whether w, the world this node holds now, lives on
// another group than the one the loop's session reads (it was imported
// there since: a world move).
func (l *loop[T]) movedIn(w fsm.WorldInfo) bool {
	return l.began.Load() && w.Imported != l.imported.Load()
}

// recreated reports whether w, the world this node holds now, is another
// incarnation than the one the loop's session follows.
func (l *loop[T]) recreated(w fsm.WorldInfo) bool {
	cur := l.inc.Load()
	inc, ok := incarnationOf(l.f.src, w)
	return cur != 0 && ok && inc != cur
}

// run runs sessions until ctx ends, backing off after each failure.
func (l *loop[T]) run(ctx context.Context) {
	defer l.f.wg.Done()
	defer close(l.done)
	b := NewBackoff(l.f.cfg.RetryMin, l.f.cfg.RetryMax)
	for {
		progressed, err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			b.Reset()
		}
		l.f.h.Fail(l.world, l.t, err, b.Wait())
		if !b.Sleep(ctx) {
			return
		}
	}
}

// session goes on from the stored position until something fails or ctx
// ends; progressed says whether it delivered anything.
func (l *loop[T]) session(ctx context.Context) (progressed bool, err error) {
	if info, err := l.f.src.World(l.world); err == nil {
		l.imported.Store(info.Imported)
		l.began.Store(true)
	}
	pos, known, err := l.resume(ctx)
	if err != nil {
		return false, err
	}
	l.inc.Store(pos.Incarnation)
	if e, ok := any(l.t).(Ender); ok {
		defer func() {
			if eerr := e.End(err); eerr != nil {
				err = errors.Join(err, eerr)
			}
		}()
	}
	src := l.f.src
	sub, err := src.Subscribe(l.world, pos.Seq+1)
	if err != nil {
		return false, fmt.Errorf("subscribe to world %s from %d: %w", l.world, pos.Seq+1, err)
	}
	for {
		evs, err := l.read(ctx, sub)
		if errors.Is(err, errFlushDue) {
			if err := any(l.t).(Flusher).Flush(ctx); err != nil {
				return progressed, err
			}
			progressed = true
			continue
		}
		if err != nil {
			return progressed, err
		}
		if len(evs) == 0 {
			continue
		}
		if !known {
			// A world from before incarnations: its event 1 names it
			// (check then refuses it if the world was re-created since).
			if evs[0].Seq != 1 {
				return progressed, fmt.Errorf("%w: world %s starts at seq %d", ErrFeedOrder, l.world, evs[0].Seq)
			}
			if pos.Incarnation, known = FirstEventIncarnation(evs[0].Time); !known {
				return progressed, fmt.Errorf("%w: world %s event 1 has leader time %d", ErrFeedOrder, l.world, evs[0].Time)
			}
			l.inc.Store(pos.Incarnation)
		}
		if err := l.check(pos, evs); err != nil {
			return progressed, err
		}
		if !l.f.cfg.AllNodes && !src.Leads(l.world) {
			return progressed, ErrNotLeading
		}
		for len(evs) > 0 {
			n := len(evs)
			if l.f.cfg.BatchSize > 0 {
				n = min(n, l.f.cfg.BatchSize)
			}
			if pos, err = l.t.Deliver(ctx, pos, evs[:n]); err != nil {
				return progressed, err
			}
			progressed = true
			evs = evs[n:]
		}
	}
}

// check refuses events that do not follow pos, or that belong to another
// incarnation of the world than pos's. It reads the world's incarnation
// after the events were read, so events of a world re-created before
// they were read are never taken for the old incarnation's.
func (l *loop[T]) check(pos Position, evs []*fsm.Event) error {
	for i, ev := range evs {
		if ev.Seq != pos.Seq+1+uint64(i) {
			return fmt.Errorf("%w: world %s: event %d after position %d", ErrFeedOrder, l.world, ev.Seq, pos.Seq+uint64(i))
		}
	}
	if pos.Incarnation == 0 {
		return nil // unknown: nothing to check against
	}
	inc, ok := Incarnation(l.f.src, l.world)
	if !ok {
		return nil // not readable here (event 1 pruned): the stored one goes on
	}
	if inc != pos.Incarnation {
		return fmt.Errorf("%w: world %s: incarnation %d, following %d", ErrNewIncarnation, l.world, inc, pos.Incarnation)
	}
	if inc > 0 && evs[0].Index <= uint64(inc) {
		// Every event of an incarnation follows its creation in the log.
		return fmt.Errorf("%w: world %s: event %d at index %d precedes incarnation %d",
			ErrFeedOrder, l.world, evs[0].Seq, evs[0].Index, inc)
	}
	return nil
}

// resume picks the position to go on from and tells the target; known is
// false when neither the sink nor this node can name the incarnation yet
// (the world has no event here).
func (l *loop[T]) resume(ctx context.Context) (pos Position, known bool, err error) {
	stored, err := l.t.Positions(ctx)
	if err != nil {
		return Position{}, false, err
	}
	if pos, known, err = l.pick(ctx, stored); err != nil {
		return Position{}, false, err
	}
	if err := l.t.Resume(ctx, pos); err != nil {
		return Position{}, false, err
	}
	return pos, known, nil
}

func (l *loop[T]) pick(ctx context.Context, stored []Position) (Position, bool, error) {
	held, inc, ok := ^uint64(0), int64(0), false // the world's last seq here (unknown: any) and incarnation
	if info, err := l.f.src.World(l.world); err == nil {
		held = info.Seq
		inc, ok = incarnationOf(l.f.src, info)
	}
	if ok {
		for _, p := range stored {
			if p.Incarnation == inc {
				return p, true, l.verify(ctx, p, held)
			}
		}
		if len(stored) == 1 && stored[0].Incarnation == 0 {
			// Stored before the sinks recorded incarnations: worlds
			// could not be deleted then, so it is this one's.
			return Position{Incarnation: inc, Seq: stored[0].Seq}, true, nil
		}
		if len(stored) > 0 {
			l.logRestart(inc, stored)
		}
		return Position{Incarnation: inc}, true, nil
	}
	if len(stored) == 0 {
		return Position{}, false, nil
	}
	// A world from before incarnations whose event 1 is pruned here: go
	// on with the newest incarnation stored, after the sink checked, if
	// it can, that its last event is this world's.
	p := stored[0]
	return p, true, l.verify(ctx, p, held)
}

// verify asks a Verifier target whether the last event both the sink (up
// to p) and this node (up to seq held) have, if this node still holds
// it, is the same.
func (l *loop[T]) verify(ctx context.Context, p Position, held uint64) error {
	v, ok := any(l.t).(Verifier)
	seq := min(p.Seq, held)
	if !ok || seq == 0 {
		return nil
	}
	ev, ok := l.f.src.Event(l.world, seq)
	if !ok {
		return nil
	}
	return v.Verify(ctx, Position{Incarnation: p.Incarnation, Seq: seq}, ev)
}

// logRestart says why a session starts incarnation inc from seq 1 although
// the sink stored positions of the world.
func (l *loop[T]) logRestart(inc int64, stored []Position) {
	if ev, ok := l.f.src.Event(l.world, 1); ok {
		for _, p := range stored {
			if p.Incarnation == ev.Time {
				l.f.log.Warn("the stored position names this incarnation by its earlier definition (event 1's leader time): "+
					"exporting the world again from seq 1 under its creation index", "world", l.world,
					"incarnation", inc, "stored_incarnation", p.Incarnation, "stored_seq", p.Seq)
				return
			}
		}
	}
	l.f.log.Info("a new incarnation of the world: following it from seq 1", "world", l.world, "incarnation", inc)
}

// errFlushDue ends a read when the target's held events must be flushed.
var errFlushDue = errors.New("gsd/feed: flush due")

// read returns the next events, lingering up to Linger for more once it
// has some; errFlushDue when the target's flush deadline passed first.
func (l *loop[T]) read(ctx context.Context, sub Subscription) ([]*fsm.Event, error) {
	rctx, flushing := ctx, false
	if fl, ok := any(l.t).(Flusher); ok {
		if at, held := fl.FlushAt(); held {
			var cancel context.CancelFunc
			rctx, cancel = context.WithDeadline(ctx, at)
			defer cancel()
			flushing = true
		}
	}
	evs, err := sub.Next(rctx)
	if err != nil {
		if flushing && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, errFlushDue
		}
		return nil, err
	}
	batch := l.f.cfg.BatchSize
	if l.f.cfg.Linger > 0 && (batch == 0 || len(evs) < batch) {
		lctx, cancel := context.WithTimeout(ctx, l.f.cfg.Linger)
		for batch == 0 || len(evs) < batch {
			more, err := sub.Next(lctx)
			if err != nil {
				break // a timeout, or an error the next read meets again
			}
			evs = append(evs, more...)
		}
		cancel()
	}
	return evs, ctx.Err()
}
