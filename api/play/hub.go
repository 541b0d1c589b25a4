package play

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/store"
)

// The hub and its connections' pushers: this file holds the hub's
// lifecycle (joinHub, startHub, leaveHub), its run loop and fan-out of
// each batch of events to the shared stream and the attached members, its
// tick, attach and detach; the pusher goroutine of a play connection
// that reads on alone while detached is in pusher.go. What a hub offers
// is prepared in frames.go, queued per connection in outbox.go, filtered
// by the interest index in interest.go (and completed by enter snapshots,
// enter.go); ws.go writes what the outbox gives.

// The play fan-out (docs/ARCHITECTURE.md, "Player edge"): one hub per
// world on this node reads the world's events once, prepares each once
// (its JSON for events frames, its coalescable bulk changes, the entities
// it touches) and offers them to every connection attached to it. An offer
// never blocks: a connection's outbox queues critical events (bounded by
// Config.QueueSize frames), merges bulk changes into a pending delta
// (latest value per entity/field) that the hub's tick flushes, and drops
// what lies outside the player's area of interest. A connection whose
// queue is full is detached: its pusher goroutine reads on from its own
// subscription, waiting for room at most SlowTimeout (then 4429), and
// attaches again once it has caught up with the hub. A connection that
// resumes from an older position catches up the same way first. With
// interest off, all the connections want the same stream: the hub runs it
// once in an outbox of its own and queues the same frames on every
// connection that joined it (see hub).

// member is how a connection of a hub gets its events.
type member uint8

const (
	memberDetached member = iota // from its own subscription (catching up)
	memberAttached               // from the hub, through its own outbox's offers
	memberShared                 // from the hub's shared stream
	memberCell                   // from its interest cell's stream (cells.go)
)

// hub fans one world's events out to this node's play connections. With
// interest off every connection gets the same stream: the hub runs it
// once, in its own outbox (shared), and queues the same frames, encoded
// once per codec, on every shared member. An attached member joins the
// shared stream at the first tick that finds it at the stream's position;
// one that finds its queue full leaves it (detached) with a copy of the
// stream's pending delta. With interest on, every attached member gets its
// own offers, until a tick finds it where its cell's stream stands
// (cells.go).
type hub struct {
	s      *Service
	world  string
	idx    *interestIndex // nil: interest off
	shared *outbox        // the shared stream (nil: interest on)

	// The view the hub cuts events to (views.go; nil: the world's hub),
	// the world's prepared events it cuts them in, the run goroutine's own
	// once it is behind those, and the rules version it serves under.
	pv       *playView
	events   *spectator.Events
	own      *spectator.Events
	rules    edge.RulesRef
	interest InterestConfig // the world's (its rules', else the node's)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	next    uint64 // events before next were offered to the attached
	members map[*playConn]member
	err     error // the hub's subscription failed
	ticks   uint64

	// A member's share of a batch (interest on), reused: offer copies
	// the events it queues.
	sel    []*hubEvent
	selIdx []int
	plan   *interestPlan // the batch's (interest on), reused

	// With a grid, the streams shared per cell (cells.go): each group by
	// its key (and by its cell), each member's group, the members by player, and the
	// batches offered to them.
	groups    map[groupKey]*cellGroup
	groupsAt  map[cellKey][]*cellGroup // the groups with a cell, by it
	groupOf   map[*playConn]*cellGroup
	cellConns map[string][]*playConn
	batches   uint64
	// ownOffers keeps every member on its own offers (the tests compare
	// the cells' streams with them).
	ownOffers bool
}

// joinHub registers c with its world's hub, or its view's (views.go),
// starting one if needed.
func (s *Service) joinHub(c *playConn) (*hub, error) {
	pv, rules, err := s.viewOf(c)
	if err != nil {
		return nil, err
	}
	c.soloRules = rules // the pusher's, which calls joinHub
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	h := s.hubs[c.world]
	if pv != nil {
		h = s.viewHubs[pv.key]
	}
	if h == nil || h.failed() {
		if h, err = s.startHub(c.world, pv); err != nil {
			return nil, err
		}
		if pv != nil {
			if s.viewHubs == nil {
				s.viewHubs = make(map[hubKey]*hub)
			}
			s.viewHubs[pv.key] = h
		} else {
			if s.hubs == nil {
				s.hubs = make(map[string]*hub)
			}
			s.hubs[c.world] = h
		}
	}
	h.mu.Lock()
	h.members[c] = memberDetached
	h.mu.Unlock()
	return h, nil
}

// leaveHub unregisters c; the last member stops the hub.
func (s *Service) leaveHub(h *hub, c *playConn) {
	s.hubMu.Lock()
	h.mu.Lock()
	h.dropCell(c)
	delete(h.members, c)
	last := len(h.members) == 0
	h.mu.Unlock()
	switch {
	case !last:
	case h.pv != nil && s.viewHubs[h.pv.key] == h:
		delete(s.viewHubs, h.pv.key)
	case h.pv == nil && s.hubs[h.world] == h:
		delete(s.hubs, h.world)
	}
	s.hubMu.Unlock()
	if last {
		h.cancel()
		h.wg.Wait()
		if h.pv != nil {
			s.vis.ReleaseEvents(h.world, h.pv.version)
		}
	}
}

// hubCount returns the running hubs (for tests and metrics).
func (s *Service) hubCount() int {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	return len(s.hubs) + len(s.viewHubs)
}

// startHub starts world's hub, or the hub of view pv when it is set.
func (s *Service) startHub(world string, pv *playView) (*hub, error) {
	var events *spectator.Events
	if pv != nil {
		// Before the world's seq is read: the prepared events may be
		// seeded with the world's state, and the hub starts after it.
		events = s.vis.Events(world, pv.version, pv.access)
	}
	_, info, err := s.vis.Access(world)
	var sub *store.Subscription
	if err == nil {
		// The hub's own subscription, opened here so that a world whose
		// feed cannot be read fails its first member at once.
		sub, err = s.b.Subscribe(world, info.Seq+1)
	}
	if err != nil {
		if pv != nil {
			s.vis.ReleaseEvents(world, pv.version)
		}
		return nil, err
	}
	h := s.newHubWith(world, info.Seq, s.interestOf(info.Rules))
	h.pv, h.rules, h.events = pv, edge.RulesOf(info), events
	if sr, ok := s.b.(stateReader); ok && h.idx != nil && h.interest.Cell > 0 {
		// Every entity in the grid from the start, for the members'
		// area snapshots (enter.go): a copy of the world's entities.
		if ents, _, err := sr.Entities(world); err == nil {
			h.idx.seedAll(ents)
		}
	}
	if pv != nil {
		h.rules = pv.version
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Add(2)
	go h.run(sub)
	go h.ticker()
	return h, nil
}

// newHub returns world's hub, before it runs, at the world's seq, with
// the node's interest config.
func (s *Service) newHub(world string, seq uint64) *hub {
	return s.newHubWith(world, seq, s.cfg.Interest)
}

// newHubWith returns world's hub, before it runs, at the world's seq, with
// interest config ic.
func (s *Service) newHubWith(world string, seq uint64, ic InterestConfig) *hub {
	h := &hub{s: s, world: world, next: seq + 1, members: make(map[*playConn]member), interest: ic}
	if ic.enabled() {
		h.idx = newInterestIndex(ic, func(id string) (fsm.EntityView, error) {
			return s.b.Entity(context.Background(), world, id, store.Stale)
		})
	} else {
		h.shared = newOutbox(math.MaxInt, codecJSON)
		h.shared.start(seq)
	}
	return h
}

func (h *hub) failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err != nil
}

// run feeds the hub from its world's fan on this node (Service.fans, the
// fanout machinery the event streams use too): the fan reads the world's
// feed and prepares each window once, and the hub offers it to its
// members. When the hub starts behind the fan, or the fan lets it go (a
// full queue) or ends (its feed failed), the hub reads from a subscription
// of its own until it can attach again; a failing feed fails the hub and
// its members there.
func (h *hub) run(sub *store.Subscription) {
	defer h.wg.Done()
	key := fanout.Key{World: h.world}
	for {
		m, pos := h.s.fans.Attach(key, h.position())
		ok := h.readUpTo(pos, &sub) && h.follow(m.Chunks(), &sub)
		h.s.fans.Detach(m)
		if !ok || !h.readOwn(&sub) {
			return
		}
	}
}

// position returns the seq of the next event the hub offers.
func (h *hub) position() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next
}

// follow offers the fan's batches until the fan lets the hub go (true) or
// the hub stops (false). The hub is its fan's only member on this node, so
// a batch starts at the hub's position; should one start after it (the
// fan ran ahead), the hub reads up to it alone first, and a batch that
// starts before it (the hub read ahead alone) is offered from the
// position on.
func (h *hub) follow(batches <-chan *playBatch, sub **store.Subscription) bool {
	for {
		var b *playBatch
		select {
		case b = <-batches:
			if b == nil {
				return true
			}
		case <-h.ctx.Done():
			return false
		}
		if !h.readUpTo(b.evs[0].Seq, sub) {
			return false
		}
		if evs, hevs := b.from(h.position()); len(evs) > 0 {
			err := h.checkRules()
			var end error // a rules update's event ends h after it (views.go)
			if err == nil {
				var n int
				n, end = h.rulesCut(evs)
				evs, hevs = evs[:n], hevs[:n]
			}
			if err == nil && h.pv != nil {
				hevs, err = h.prepare(evs, &h.own, h.s.cfg.CoalesceBulk)
			}
			if err != nil {
				h.fail(err)
				return false
			}
			h.fanout(evs, hevs)
			if end != nil {
				h.fail(end)
				return false
			}
		}
	}
}

// readUpTo reads from the hub's own subscription until its position is at
// least pos.
func (h *hub) readUpTo(pos uint64, sub **store.Subscription) bool {
	for h.position() < pos {
		if !h.readOwn(sub) {
			return false
		}
	}
	return true
}

// readOwn reads the next events from the hub's own subscription (opened at
// its position when it has none there) and offers them; a failure fails
// the hub.
func (h *hub) readOwn(sub **store.Subscription) bool {
	next := h.position()
	var err error
	if *sub == nil || (*sub).Position() != next {
		*sub, err = h.s.b.Subscribe(h.world, next)
	}
	var evs []*fsm.Event
	if err == nil {
		evs, err = (*sub).Next(h.ctx)
	}
	if h.ctx.Err() != nil {
		return false
	}
	var hevs []*hubEvent
	if err == nil {
		err = h.checkRules()
	}
	var end error // a rules update's event ends h after it (views.go)
	if err == nil {
		var n int
		n, end = h.rulesCut(evs)
		evs = evs[:n]
		hevs, err = h.prepare(evs, &h.own, h.s.cfg.CoalesceBulk)
	}
	if err != nil {
		h.fail(err)
		return false
	}
	h.fanout(evs, hevs)
	if end != nil {
		h.fail(end)
		return false
	}
	return true
}

// fail fails the hub and its members with err.
func (h *hub) fail(err error) {
	h.mu.Lock()
	h.err = err
	for c := range h.members {
		c.fail(err)
	}
	h.mu.Unlock()
}

// playBatch is one window of a world's events as the fan prepared them
// for the hubs (frames.go): shared, read-only.
type playBatch struct {
	evs  []*fsm.Event
	hevs []*hubEvent
}

// End returns the seq after the batch's last event.
func (b *playBatch) End() uint64 { return b.evs[len(b.evs)-1].Seq + 1 }

// from returns the batch's events from seq next on.
func (b *playBatch) from(next uint64) ([]*fsm.Event, []*hubEvent) {
	i := 0
	for i < len(b.evs) && b.evs[i].Seq < next {
		i++
	}
	return b.evs[i:], b.hevs[i:]
}

// fanout offers one batch of events, prepared as hevs, to the shared
// stream and the attached members.
func (h *hub) fanout(evs []*fsm.Event, hevs []*hubEvent) {
	now := time.Now().UnixNano()
	for _, ev := range evs {
		if ev.Time > 0 {
			h.s.playMetrics.stageFanout.Observe(float64(now-ev.Time) / 1e9)
		}
	}
	if h.idx != nil {
		h.idx.update(evs)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shared != nil {
		h.fanShared(hevs)
	}
	last := evs[len(evs)-1].Seq
	var (
		plan  *interestPlan
		snaps map[string]snap // the batch's enter snapshots (enter.go), made when one is
		moved bool            // an entity changed cell in the batch
		lazy  bool            // only bulk events moved them (interestIndex.bulkMoves)
	)
	if h.idx != nil {
		h.plan = h.idx.planInto(h.plan, hevs)
		plan = h.plan
		moved = h.idx.anyMovers()
		lazy = moved && h.idx.bulkMoves(hevs)
		h.fanCells(plan, hevs, moved, lazy, &snaps, last)
	}
	for c, m := range h.members {
		if m != memberAttached {
			continue
		}
		offered := hevs
		var me entInterest
		if plan != nil {
			me = h.idx.get(c.player)
			h.sel, h.selIdx = h.idx.selectForMe(plan, c.player, me, hevs, h.sel, h.selIdx)
			offered = h.sel
		}
		if c.ob.offer(offered, nil) < len(offered) || plan != nil && !h.enterAs(c, me, moved, &snaps, last, lazy) {
			// Its queue is full: it reads on by itself, and the hub
			// never waits for it.
			h.detach(c)
			continue
		}
		if plan != nil {
			c.ob.skip(last) // past the events it does not want
		}
	}
	clear(h.sel) // the frames hold the events, not this buffer
	h.next = last + 1
	h.s.TraceFanout(evs, now, len(h.members))
}

// detach leaves c to read on by itself.
func (h *hub) detach(c *playConn) {
	h.members[c] = memberDetached
	h.s.playMetrics.detaches.Inc()
	wake(c.detached)
}

// fanShared runs hevs through the shared stream and queues the frames it
// makes on every shared member.
func (h *hub) fanShared(hevs []*hubEvent) {
	pos := h.shared.position()
	for _, he := range hevs {
		if he.frame != nil && he.ev.Seq > pos {
			// It makes a frame: who has no room for it leaves first.
			h.leaveBehind(false)
			break
		}
	}
	h.shared.offer(hevs, nil)
	h.pushShared(h.shared.takeShared()...)
}

// pushShared queues frames of the shared stream on every shared member.
func (h *hub) pushShared(sfs ...*sharedFrame) {
	sfs = slices.DeleteFunc(sfs, func(sf *sharedFrame) bool { return sf == nil })
	if len(sfs) == 0 {
		return
	}
	pos := h.shared.position()
	for c, m := range h.members {
		if m == memberShared {
			for _, sf := range sfs {
				c.ob.push(sf.item, pos)
			}
		}
	}
}

// leaveBehind detaches the shared members whose queue is full, or which
// are sharedLagDeltas behind before a delta frame, before the stream's next
// frame: each goes on alone from the stream's position, with a copy of its
// pending delta.
func (h *hub) leaveBehind(delta bool) {
	for c, m := range h.members {
		if m == memberShared && c.ob.behind(delta) {
			c.ob.resume(h.shared.pending())
			h.detach(c)
		}
	}
}

// ticker flushes the members' coalesced changes every TickInterval.
func (h *hub) ticker() {
	defer h.wg.Done()
	t := time.NewTicker(h.s.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
			h.tick()
		}
	}
}

// tick flushes the shared stream's pending delta to the shared members,
// lets the attached members at the stream's position join it, and asks
// every other member for its pending delta.
func (h *hub) tick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ticks++
	var pos uint64
	if h.shared != nil {
		h.shared.onTick(h.ticks)
		if h.shared.dueDelta() {
			h.leaveBehind(true)
		}
		h.pushShared(h.shared.takeSharedDelta())
		pos = h.shared.position()
	}
	h.tickCells()
	for c, m := range h.members {
		switch {
		case m == memberShared, m == memberCell:
		case m == memberAttached && h.shared != nil && c.ob.join(h.ticks, pos):
			h.members[c] = memberShared
		case m == memberAttached && h.joinCell(c):
		default:
			c.ob.onTick(h.ticks)
		}
		c.ob.wakeLazy() // after the tick's own wake, if any: one write for both
	}
}

// attach makes c an attached member if it has caught up with the hub.
func (h *hub) attach(c *playConn) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return false, h.err
	}
	if c.ob.position()+1 < h.next {
		return false, nil
	}
	// Its area goes whole first (enter.go): what it missed while detached,
	// or everything near a player who just joined.
	c.area = enterState{}
	var snaps map[string]snap
	if h.idx != nil && !h.enterAs(c, h.idx.get(c.player), false, &snaps, c.ob.position(), false) {
		return false, nil // no room: it reads on by itself and tries again
	}
	h.members[c] = memberAttached
	return true, nil
}

// wants returns c's interest filter (nil: everything).
func (h *hub) wants(c *playConn) func(*hubEvent) bool {
	if h.idx == nil {
		return nil
	}
	return func(he *hubEvent) bool { return h.idx.wants(c.player, he) }
}
