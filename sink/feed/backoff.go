package feed

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff doubles a wait from a minimum up to a maximum; each sleep lasts
// a random time in [wait/2, wait], so that nodes and worlds retrying after
// one outage spread out.
type Backoff struct{ wait, min, max time.Duration }

// NewBackoff returns a Backoff from lo up to hi (0 < lo <= hi).
func NewBackoff(lo, hi time.Duration) Backoff { return Backoff{wait: lo, min: lo, max: hi} }

// Wait returns the upper bound of the next sleep.
func (b *Backoff) Wait() time.Duration { return b.wait }

// Reset starts the waits over from the minimum.
func (b *Backoff) Reset() { b.wait = b.min }

// Sleep waits (false if ctx ends first) and doubles the wait.
func (b *Backoff) Sleep(ctx context.Context) bool {
	d := b.wait/2 + rand.N(b.wait/2+1)
	b.wait = min(2*b.wait, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
