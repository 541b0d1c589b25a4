package play

import (
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/store"
)

// A play connection's pusher: the goroutine that feeds its outbox from
// its own subscription while it catches up with its hub (hub.go), and
// whenever the hub detaches it.

// pusher feeds c's outbox: from its own subscription until it has caught
// up with the hub, then from the hub; again from its own subscription
// whenever the hub detaches it.
func (c *playConn) pusher(sub *store.Subscription) {
	defer c.wg.Done()
	h, err := c.s.joinHub(c)
	if err != nil {
		c.fail(err)
		return
	}
	defer c.s.leaveHub(h, c)
	var own *spectator.Events // c's own prepared events, once behind the hub's
	for {
		for {
			ok, err := h.attach(c)
			if err != nil {
				c.fail(err)
				return
			}
			if ok {
				break
			}
			evs, err := sub.Next(c.ctx)
			if c.ctx.Err() != nil {
				return
			}
			var hevs []*hubEvent
			var end error // a rules update's event ends c after it (views.go)
			if err == nil {
				var n int
				n, end = c.soloCut(h, evs)
				hevs, err = h.prepare(evs[:n], &own, c.cfg.CoalesceBulk)
			}
			if err != nil {
				c.fail(err)
				return
			}
			if !c.offerWait(hevs, h.wants(c)) {
				return
			}
			if end != nil {
				c.fail(end)
				return
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.detached:
		}
		if sub, err = c.s.b.Subscribe(c.world, c.ob.position()+1); err != nil {
			c.fail(err)
			return
		}
	}
}

// offerWait offers evs, waiting for room in the queue; a queue that stays
// full for SlowTimeout cuts the connection off (4429).
func (c *playConn) offerWait(evs []*hubEvent, want func(*hubEvent) bool) bool {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		evs = evs[c.ob.offer(evs, want):]
		if len(evs) == 0 {
			return true
		}
		if t == nil {
			t = time.NewTimer(c.cfg.SlowTimeout)
		}
		select {
		case <-c.ob.room:
			t.Reset(c.cfg.SlowTimeout) // progress: the wait starts over (no stale fire since Go 1.23)
		case <-t.C:
			c.fail(fmt.Errorf("%w: outbound queue of %d frames full for %s", edge.ErrSlowConsumer, c.cfg.QueueSize, c.cfg.SlowTimeout))
			return false
		case <-c.ctx.Done():
			return false
		}
	}
}
