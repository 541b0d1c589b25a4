package spectator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// ReplayConfig configures a Replay.
type ReplayConfig struct {
	// World, Access, Subscribe, Seed and TeamOf are as in Config.
	World     string
	Access    *Access
	Subscribe fanout.SubscribeFunc
	Seed      *State
	TeamOf    TeamFunc
	// Delay and MaxClockSkew bound what a replay of a live world may show:
	// never an event newer than now - Delay (see Delay).
	Delay        time.Duration
	MaxClockSkew time.Duration
	// Now is the clock (time.Now unless set).
	Now func() time.Time
}

// Replay plays one view of a world's archived events from its start (or a
// seed): Seek moves to a seq or a leader time and gives the keyframe
// there, Advance moves on to a later leader time and gives the delta of
// what passed. The caller paces it: advancing by N seconds of leader time
// per second plays at N times real time. It reads the feed with its own
// subscription and only forward, ahead of what it applies (readAhead); to
// seek back, make a new one. Not safe for concurrent use.
type Replay struct {
	cfg     ReplayConfig
	view    View
	delay   *Delay
	sub     fanout.Subscription
	tk      *Ticker
	pending []*fsm.Event // read, not applied yet
	ra      *readAhead   // reading on, or nil
}

// ErrNotReached reports a seek or advance to a point the world (or the
// delay) has not reached; the replay stopped at the last event it may
// show.
var ErrNotReached = errors.New("gsd/spectator: replay position not reached")

// NewReplay returns a replay of view at the state of cfg.Seed (or before
// the world's first event).
func NewReplay(cfg ReplayConfig, view View) (*Replay, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pc := DefaultConfig()
	pc.World, pc.Access, pc.Subscribe, pc.Seed, pc.Now = cfg.World, cfg.Access, cfg.Subscribe, cfg.Seed, cfg.Now
	pc.Delay, pc.MaxClockSkew = cfg.Delay, cfg.MaxClockSkew
	p, err := newPipeline(pc) // the same checks, the seed's included
	if err != nil {
		return nil, err
	}
	return &Replay{cfg: cfg, view: view, delay: p.delay, sub: p.sub, tk: p.ticker}, nil
}

// Seq returns the seq of the last event the replay applied.
func (r *Replay) Seq() uint64 { return r.tk.State().Seq() }

// SeekSeq moves forward to just after event seq and returns the keyframe
// there. Short of it (the world or the delay has not reached it), it
// returns the keyframe where it stopped and ErrNotReached.
func (r *Replay) SeekSeq(ctx context.Context, seq uint64) (*Frame, error) {
	err := r.run(ctx, false, func(ev *fsm.Event) bool { return ev.Seq <= seq })
	if err == nil && r.Seq() < seq {
		err = fmt.Errorf("%w: seq %d (at %d)", ErrNotReached, seq, r.Seq())
	}
	return r.keyframe(err)
}

// SeekTime moves forward past every event with a leader time up to t and
// returns the keyframe there.
func (r *Replay) SeekTime(ctx context.Context, t time.Time) (*Frame, error) {
	return r.keyframe(r.run(ctx, false, func(ev *fsm.Event) bool { return ev.Time <= t.UnixNano() }))
}

// Advance moves forward past every event with a leader time up to t and
// returns the delta of what changed in the view, or nil when nothing it
// may see did (a keyframe when the view's player changed team).
// Short of t for the delay, it returns the delta up to where it stopped
// and ErrNotReached.
func (r *Replay) Advance(ctx context.Context, t time.Time) (*Frame, error) {
	err := r.run(ctx, true, func(ev *fsm.Event) bool { return ev.Time <= t.UnixNano() })
	if err != nil && !errors.Is(err, ErrNotReached) {
		return nil, err
	}
	if r.tk.Resync(r.view) {
		return r.keyframe(err) // its player changed team: the whole picture
	}
	d := r.tk.tickDelta(r.view, true)
	if d == nil {
		return nil, err
	}
	f, encErr := d.frame()
	if encErr != nil {
		return nil, encErr
	}
	return f, err
}

func (r *Replay) keyframe(err error) (*Frame, error) {
	if err != nil && !errors.Is(err, ErrNotReached) {
		return nil, err
	}
	k := Keyframe(r.cfg.Access, r.tk.State(), r.cfg.TeamOf, r.view)
	f, encErr := encode(wire.TypeKeyframe, k.Seq, k)
	if encErr != nil {
		return nil, encErr
	}
	return f, err
}

// run applies events while want holds, the delay lets them go, and the
// feed holds them; it stops at the first that fails any. Only for a
// delta (touch) does it record what they touched: a seek ends in a
// keyframe, and passes over what it skips at the cost of the state alone.
func (r *Replay) run(ctx context.Context, touch bool, want func(*fsm.Event) bool) error {
	r.tk.Reset() // each call's delta is its own
	cut := r.delay.Cutoff(r.cfg.Now())
	for {
		if len(r.pending) == 0 {
			if err := r.read(ctx); err != nil {
				return err
			}
			if len(r.pending) == 0 {
				return nil // the feed's end, for now
			}
		}
		ev := r.pending[0]
		if !want(ev) {
			return nil
		}
		if r.cfg.Delay > 0 && ev.Time > cut {
			return fmt.Errorf("%w: seq %d is within the delay", ErrNotReached, ev.Seq)
		}
		var err error
		if touch {
			err = r.tk.Apply(ev)
		} else {
			err = r.tk.State().Apply(ev)
		}
		if err != nil {
			return err
		}
		r.pending = r.pending[1:]
	}
}

// read reads the next events the subscription holds, without waiting for
// new ones: what was read ahead while the last were applied, else now.
func (r *Replay) read(ctx context.Context) error {
	for {
		if r.ra == nil {
			r.ra = startReadAhead(r.sub)
		}
		b, ok, err := r.ra.take(ctx)
		if err != nil {
			return err
		}
		if !ok {
			r.ra = r.ra.next // it gave all it read: its successor's, or read on
			continue
		}
		if len(b.evs) == 0 {
			// The feed's end or an error, when it was read: maybe long
			// before now. Ask it again, as a read now would. (A read-ahead
			// that gives an empty batch did not end full: no successor
			// reads the feed.)
			<-r.ra.done
			r.ra = nil
			b = readHeld(r.sub)
		} else {
			r.ra.chain(r.sub)
		}
		r.pending = b.evs // run reads only when it applied all
		return b.err
	}
}
