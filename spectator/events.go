package spectator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
)

// ErrTooOld reports an event older than what an Events still holds
// prepared: its reader needs an Events of its own, started before it.
var ErrTooOld = errors.New("gsd/spectator: event older than the prepared ones held")

// Events prepares one world's events for filtering once, in seq order,
// for any number of readers at different positions: event streams that
// resume from a seq, fans that encode chunks, a stream's catch-up. A
// reader hands in the events it read (from its own subscription or a
// fan's window) and gets each one's Prepared; the first reader to reach
// an event prepares it, the others find it among the last Keep held.
// A reader ahead of the others makes Events read the events in between
// from its own subscription (they are held: a later one exists). Safe for
// concurrent use.
type Events struct {
	mu        sync.Mutex
	filter    *Filter
	subscribe fanout.SubscribeFunc
	ring      []*Prepared // ring[seq%len]: the last prepared events
}

// NewEvents returns an Events under a whose state is s (the world before
// the next event it prepares), reading what it lacks from subscribe, and
// holding the last keep prepared events (at least 1).
func NewEvents(a *Access, s *State, teamOf TeamFunc, subscribe fanout.SubscribeFunc, keep int) *Events {
	return &Events{filter: NewFilter(a, s, teamOf), subscribe: subscribe, ring: make([]*Prepared, max(keep, 1))}
}

// Prepare returns ev's Prepared. An event older than those held is
// ErrTooOld; one that does not match the world's feed (another world,
// another event at that seq) is ErrGap.
func (e *Events) Prepare(ev *fsm.Event) (*Prepared, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.filter.State()
	if ev.World != s.world {
		return nil, fmt.Errorf("%w: world %s in the events of %s", ErrGap, ev.World, s.world)
	}
	if ev.Seq <= s.seq {
		p := e.ring[ev.Seq%uint64(len(e.ring))]
		if p == nil || p.Event.Seq != ev.Seq {
			return nil, fmt.Errorf("%w: seq %d (holding %d back from %d)", ErrTooOld, ev.Seq, len(e.ring), s.seq)
		}
		if p.Event.Index != ev.Index || p.Event.Time != ev.Time {
			return nil, fmt.Errorf("%w: seq %d is another event", ErrGap, ev.Seq)
		}
		return p, nil
	}
	if s.seq+1 < ev.Seq { // the events in between, from the feed
		if err := e.catchUpLocked(ev.Seq); err != nil {
			return nil, err
		}
	}
	if err := e.prepareLocked(ev); err != nil {
		return nil, err
	}
	return e.ring[ev.Seq%uint64(len(e.ring))], nil
}

// catchUpLocked prepares the events before seq that the state lacks,
// read from a subscription of their own: they are held, since a later
// event exists.
func (e *Events) catchUpLocked(seq uint64) error {
	s := e.filter.State()
	sub, err := e.subscribe(s.world, s.seq+1)
	if err != nil {
		return fmt.Errorf("spectator: world %s events before %d: %w", s.world, seq, err)
	}
	for s.seq+1 < seq {
		evs, err := sub.Next(doneCtx)
		if err != nil {
			return fmt.Errorf("spectator: world %s events before %d: %w", s.world, seq, err)
		}
		for _, o := range evs {
			if o.Seq >= seq {
				break
			}
			if err := e.prepareLocked(o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *Events) prepareLocked(ev *fsm.Event) error {
	p, err := e.filter.Prepare(ev)
	if err != nil {
		return err
	}
	e.ring[ev.Seq%uint64(len(e.ring))] = p
	return nil
}

// Event returns p's event as view may see it (Filter.Event).
func (e *Events) Event(p *Prepared, view View) *fsm.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.filter.Event(p, view)
}

// Encoder returns a fanout.Encoder for view's event stream: each event is
// prepared here and encoded with enc as view may see it; an event the
// view may see nothing of takes no bytes (its offset equals the next
// one's), so a chunk still has an offset per seq.
func (e *Events) Encoder(view View, enc func(b []byte, ev *fsm.Event) ([]byte, error)) fanout.Encoder {
	return func(data []byte, offs []int, evs []*fsm.Event) ([]byte, []int, error) {
		for _, ev := range evs {
			p, err := e.Prepare(ev)
			if err != nil {
				return data, offs, err
			}
			offs = append(offs, len(data))
			if out := e.Event(p, view); out != nil {
				if data, err = enc(data, out); err != nil {
					return data, offs, err
				}
			}
		}
		return data, offs, nil
	}
}

// doneCtx is always done: Next with it returns what is held, at once.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
