package spectator

import (
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// DefaultMaxClockSkew is the clock-skew bound of the delay guarantee
// unless configured: how far this node's clock may be from the leader's
// that stamped the events.
const DefaultMaxClockSkew = time.Second

// Delay holds a world's events, in seq order, until they are old enough to
// be shown with a delay d: an event stamped T by the leader is released
// when this node's clock reads at least T + d + skew. If this node's clock
// is within skew of the leader's, the event is then at least d old in the
// leader's time too: nothing newer than now - d is ever released. Events
// go out in seq order only (one still held holds back those after it), so
// the state built from released events, and every keyframe made from it,
// is never newer than now - d either. With d = 0 nothing is held. Not safe
// for concurrent use.
type Delay struct {
	d, skew time.Duration
	q       []*fsm.Event
}

// NewDelay returns a buffer that releases events d after their leader time,
// with the clock-skew bound skew (d and skew at least 0).
func NewDelay(d, skew time.Duration) *Delay {
	return &Delay{d: max(d, 0), skew: max(skew, 0)}
}

// Push adds the next events.
func (b *Delay) Push(evs ...*fsm.Event) { b.q = append(b.q, evs...) }

// Len returns how many events are held.
func (b *Delay) Len() int { return len(b.q) }

// Cutoff returns the newest leader time an event may carry to be released
// at now (now itself with no delay).
func (b *Delay) Cutoff(now time.Time) int64 {
	if b.d == 0 {
		return now.UnixNano()
	}
	return now.Add(-b.d - b.skew).UnixNano()
}

// Release returns, in order, the held events that may go out at now: those
// up to the first one still too new. With no delay it returns all.
func (b *Delay) Release(now time.Time) []*fsm.Event {
	n := len(b.q)
	if b.d > 0 {
		cut := b.Cutoff(now)
		n = 0
		for n < len(b.q) && b.q[n].Time <= cut {
			n++
		}
	}
	out := b.q[:n:n]
	b.q = b.q[n:]
	if len(b.q) == 0 {
		b.q = nil // let the released array go
	}
	return out
}

// Next returns when the first held event may go out, and false when none
// is held.
func (b *Delay) Next() (time.Time, bool) {
	if len(b.q) == 0 {
		return time.Time{}, false
	}
	if b.d == 0 {
		return time.Time{}, true
	}
	return time.Unix(0, b.q[0].Time).Add(b.d + b.skew), true
}
