package store

import "fmt"

// Budget bounds the log entries in flight over all the groups of a node
// that share it (shard.Manager gives one to every group it opens). Every
// entry costs its group an append on each follower, a log write and an
// FSM dispatch whatever it carries, so the node's cost follows its
// entries, not its events. Without a shared bound each group pipelines up
// to Batch.MaxInflight entries of its own: spread over 4 groups, 64
// writers made entries of 6.8 actions against 33 on one group. A group
// that waits for the budget keeps gathering, so its next entry carries
// what would have been several.
type Budget struct {
	tokens chan struct{} // one per entry in flight
}

// NewBudget returns a budget of n entries in flight.
func NewBudget(n int) (*Budget, error) {
	if n < 1 {
		return nil, fmt.Errorf("store: an in-flight budget must allow at least one entry, got %d", n)
	}
	return &Budget{tokens: make(chan struct{}, n)}, nil
}

// Size returns how many entries may be in flight at once.
func (b *Budget) Size() int { return cap(b.tokens) }

// InUse returns how many entries are in flight now.
func (b *Budget) InUse() int { return len(b.tokens) }

// gathering is the batch the batcher is building: its proposals, their
// bytes and a fair group's part that did not fit (carried to the next
// batch).
type gathering struct {
	batch              []*proposal
	bytes              int
	carry              *proposal
	critical           bool // it holds a critical action or another command that may not wait (see mayWait)
	maxActions, maxLen int
	acksWait           bool // session acks may wait (BulkPipelineMin > 0; see mayWait)
}

// full reports whether the batch takes nothing more.
func (g *gathering) full() bool {
	return g.carry != nil || len(g.batch) >= g.maxActions || g.bytes >= g.maxLen
}

// add appends p, or carries it to the next batch when p is a part that
// would take the batch over its limits (a part goes into an entry whole).
func (g *gathering) add(p *proposal) {
	if p.group != nil && (len(g.batch)+len(p.group) > g.maxActions || g.bytes+p.size > g.maxLen) {
		g.carry = p
		return
	}
	g.batch, g.bytes = addTo(g.batch, p), g.bytes+p.size
	g.critical = g.critical || p.group != nil || !mayWait(p, g.acksWait)
}

// takeSlot sends a token to slot (the group's in-flight bound, or the
// node's budget), gathering from the lanes while it waits: an entry that
// waits for a slot grows instead of leaving its followers to make small
// entries of their own. It returns false when the batcher stops.
func (b *batcher) takeSlot(slot chan struct{}, g *gathering) bool {
	for {
		select {
		case slot <- struct{}{}:
			return true
		default:
		}
		var critical, bulk chan *proposal
		if !g.full() {
			if b.takeCritical(g) {
				continue
			}
			critical, bulk = b.critical, b.bulk
		}
		select {
		case slot <- struct{}{}:
			return true
		case p := <-critical:
			g.add(p)
		case p := <-bulk:
			g.add(p)
		case <-b.stop:
			return false
		}
	}
}
