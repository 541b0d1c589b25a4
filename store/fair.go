package store

import (
	"sort"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// Fair resolution (opt-in per world, fsm.Fairness in the world's rules).
//
// The leader's batcher holds every critical action of a fair world (all of
// them, not only those touching one entity: which actions contend is known
// only once they apply) from the first one's arrival for the world's
// window, then sorts the group by (clamped client input time, player, seq)
// and proposes it in that order, in entry-sized parts (a player's own
// actions keep their seq order: see keepPlayerOrder). Lag compensation is
// bounded: an input time older than arrival - MaxLag counts as arrival -
// MaxLag, one in the future (or none) as arrival, so lying about input
// time buys at most MaxLag. The FSM applies log order as always, so every
// replica resolves the group alike. Bulk actions, other commands and
// worlds without a window go straight to their lanes.

// stopper is the part of *time.Timer the hold uses (tests fire by hand).
type stopper interface{ Stop() bool }

// fairHold is the batcher's set of held groups, one per fair world.
type fairHold struct {
	mu     sync.Mutex
	groups map[string]*fairGroup
	held   int            // actions in all groups: at most the lane's QueueSize
	wg     sync.WaitGroup // one per group whose release has not finished
	// Releases hand their parts to the lane in the order their groups
	// closed: a release takes a ticket when it closes its group and waits
	// for turn to reach it (turnDone, on mu, signals each turn's end).
	// Otherwise a release that is slow to sort a big group would let the
	// world's next, later group into the lane first.
	ticket, turn uint64
	turnDone     *sync.Cond
	// afterSort and onWait, when set (tests, under mu), are called by a
	// release after it cut its group and when it must wait for its turn.
	afterSort func()
	onWait    func()

	// now and after are time.Now and time.AfterFunc; tests replace them
	// (under mu) to control arrival times and windows.
	now   func() time.Time
	after func(time.Duration, func()) stopper
}

// fairGroup is one world's held actions, in arrival order.
type fairGroup struct {
	items []heldAction
	timer stopper
}

type heldAction struct {
	p   *proposal
	key int64 // clamped input time, unix ns
}

func newFairHold() *fairHold {
	h := &fairHold{
		groups: make(map[string]*fairGroup),
		now:    time.Now,
		after:  func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) },
	}
	h.turnDone = sync.NewCond(&h.mu)
	return h
}

// fairKey is the time an action is ordered by: its input time, clamped to
// [arrival - lag, arrival]; arrival when it has none.
func fairKey(input, arrival int64, lag time.Duration) int64 {
	if input == 0 || input > arrival {
		return arrival
	}
	if floor := arrival - int64(lag); input < floor {
		return floor
	}
	return input
}

// fairLess orders held actions: key, then player, then seq.
func fairLess(a, b heldAction) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	x, y := a.p.cmd.Action, b.p.cmd.Action
	if x.Player != y.Player {
		return x.Player < y.Player
	}
	return x.Seq < y.Seq
}

// keepPlayerOrder raises each held action's key to at least the keys of
// the same player's lower seqs in the group, so sorting never puts a
// player's own actions out of their seq order (input times that go back,
// from a clock correction or from actions without one, would otherwise).
// Other players' actions are ordered against the raised key.
func keepPlayerOrder(hs []heldAction) {
	idx := make([]int, len(hs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool {
		x, y := hs[idx[i]].p.cmd.Action, hs[idx[j]].p.cmd.Action
		if x.Player != y.Player {
			return x.Player < y.Player
		}
		return x.Seq < y.Seq
	})
	for n := 1; n < len(idx); n++ {
		prev, cur := &hs[idx[n-1]], &hs[idx[n]]
		if prev.p.cmd.Action.Player == cur.p.cmd.Action.Player && cur.key < prev.key {
			cur.key = prev.key
		}
	}
}

// hold adds p, a critical action of a fair world, to its world's group,
// starting the group (and its window) if there is none. Called by submit
// under b.mu's read lock with b open, so close has not begun.
func (b *batcher) hold(p *proposal, fair fsm.Fairness) error {
	h := b.fair
	a := p.cmd.Action
	h.mu.Lock()
	defer h.mu.Unlock()
	// One bound for all fair worlds together, as the lane has one for all
	// worlds: a bound per world would multiply it by the fair worlds.
	if h.held >= b.cfg.QueueSize {
		return ErrOverloaded
	}
	g := h.groups[a.World]
	if g == nil {
		g = &fairGroup{}
		h.groups[a.World] = g
		h.wg.Add(1)
		g.timer = h.after(fair.Window, func() { b.release(a.World, g) })
	}
	g.items = append(g.items, heldAction{p: p, key: fairKey(a.InputTime, h.now().UnixNano(), fair.Lag())})
	h.held++
	b.metrics.fairHeld.Inc()
	return nil
}

// release ends a group's window: it sorts the group and hands it to the
// critical lane as entry-sized parts (splitGroup), each of which the
// batcher puts into one entry whole.
func (b *batcher) release(world string, g *fairGroup) {
	h := b.fair
	defer h.wg.Done()
	h.mu.Lock()
	if h.groups[world] == g {
		delete(h.groups, world)
	}
	items := g.items
	h.held -= len(items)
	ticket := h.ticket
	h.ticket++
	afterSort, onWait := h.afterSort, h.onWait
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.turn++
		h.turnDone.Broadcast()
		h.mu.Unlock()
	}()

	sorted := make([]heldAction, len(items))
	copy(sorted, items)
	keepPlayerOrder(sorted)
	sort.SliceStable(sorted, func(i, j int) bool { return fairLess(sorted[i], sorted[j]) })
	ordered := make([]*proposal, len(sorted))
	moved := 0
	for i, it := range sorted {
		if it.p != items[i].p {
			moved++
		}
		ordered[i] = it.p
	}
	b.metrics.fairReordered.Add(float64(moved))
	parts := splitGroup(ordered, b.cfg.MaxActions, b.cfg.MaxBytes)
	if afterSort != nil {
		afterSort()
	}
	h.mu.Lock()
	for h.turn != ticket {
		if onWait != nil {
			onWait()
			onWait = nil
		}
		h.turnDone.Wait()
	}
	h.mu.Unlock()
	for i, gp := range parts {
		select {
		case b.critical <- gp:
		case <-b.stop:
			for _, rest := range parts[i:] {
				rest.fail(ErrNotLeader)
			}
			return
		}
	}
}

// splitGroup cuts a sorted group into parts that each fit one log entry
// (at most maxActions actions and maxBytes bytes; an action over maxBytes
// alone is a part of its own), in order: a big group becomes consecutive
// parts of the critical lane instead of one entry of unbounded size.
func splitGroup(ps []*proposal, maxActions, maxBytes int) []*proposal {
	var (
		parts []*proposal
		cur   *proposal
	)
	for _, p := range ps {
		if cur == nil || len(cur.group) >= maxActions || cur.size+p.size > maxBytes {
			cur = &proposal{}
			parts = append(parts, cur)
		}
		cur.group = append(cur.group, p)
		cur.size += p.size
	}
	return parts
}

// closeHold answers every group still waiting for its window: nothing of
// it was proposed. Releases already running finish on their own (they see
// b.stop or reach the lane, which close drains).
func (b *batcher) closeHold() {
	h := b.fair
	h.mu.Lock()
	for world, g := range h.groups {
		if g.timer.Stop() {
			for _, it := range g.items {
				it.p.fail(ErrNotLeader)
			}
			h.held -= len(g.items)
			h.wg.Done()
		}
		delete(h.groups, world)
	}
	h.mu.Unlock()
}

// heldCount returns how many actions of world are held now (tests, debug).
func (b *batcher) heldCount(world string) int {
	b.fair.mu.Lock()
	defer b.fair.mu.Unlock()
	if g := b.fair.groups[world]; g != nil {
		return len(g.items)
	}
	return 0
}
