package edge

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// Play actions that a follower forwards to the same leader for the same
// world share compact act route calls when many are due at once. Below
// actSenders calls in flight an action goes out at once, alone, from its
// caller's goroutine, as before; at it, actions wait in their (leader,
// world) queue, and a caller whose call ends hands what waits, and its
// place, to a sender goroutine, which sends it as one call and keeps
// taking what waits until nothing does. So a loaded follower makes fewer,
// larger calls and the leader parses fewer requests (its group's batcher
// packs them as it packs concurrent actions), and an idle one pays
// nothing more than one call per action. A waiting caller still waits on
// its own context: one that gives up before its action was taken is never
// sent; after, its outcome is unknown, as with a call of its own. A
// call's failure is each of its actions' (not_leader before it left,
// outcome_unknown after). The queues are kept per (leader address, world)
// once used: a few dozen bytes each.
//
// Only calls the leader trusts without a token are shared (a cluster
// secret or mutual TLS, or auth off): one call carries one token.

// actSenders bounds the compact act route calls in flight to one leader
// for one world.
const actSenders = 4

// actQueue is the actions waiting for one leader and world.
type actQueue struct {
	mu      sync.Mutex
	pending []*pendingAct
	senders int // running senders
}

// pendingAct is one waiting action and where its outcome goes.
type pendingAct struct {
	a     *fsm.Action
	ctx   context.Context // the caller's: its values (the trace context) go along
	state atomic.Int32    // actWaiting, then actTaken or actAbandoned
	done  chan actOutcome
}

const (
	actWaiting int32 = iota
	actTaken
	actAbandoned
)

type actOutcome struct {
	ev  wire.Event
	err error
}

// batchable reports whether this node's compact act route calls need no
// player's token, so that one call may carry several players' actions.
func (s *Core) batchable() bool {
	return len(s.cfg.ClusterSecret) > 0 || s.cfg.PeerTLS != nil || s.auth == nil
}

// actBatched runs a on the leader rt names: in a call of its own, from
// this goroutine and under ctx, while fewer than actSenders calls are in
// flight for its leader and world; else it waits in their queue for a
// shared call, until its outcome or ctx.
func (s *Core) actBatched(ctx context.Context, rt Route, a *fsm.Action) (wire.Event, error) {
	v, _ := s.actQueues.LoadOrStore(rt.Addr+"\x00"+a.World, new(actQueue))
	q := v.(*actQueue)
	q.mu.Lock()
	if q.senders < actSenders {
		q.senders++
		q.mu.Unlock()
		ev, err := s.actAlone(ctx, rt, a, "")
		s.senderDone(rt, q)
		return ev, err
	}
	p := &pendingAct{a: a, ctx: ctx, done: make(chan actOutcome, 1)}
	q.pending = append(q.pending, p)
	q.mu.Unlock()
	select {
	case o := <-p.done:
		return o.ev, o.err
	case <-ctx.Done():
		p.state.CompareAndSwap(actWaiting, actAbandoned) // not sent if not yet taken
		return wire.Event{}, ForwardError(rt.Node, ctx.Err(), true)
	}
}

// senderDone counts out a caller that sent its own action, unless actions
// wait: then it hands them, and its place, to a sender goroutine (on a
// closing node they fail instead).
func (s *Core) senderDone(rt Route, q *actQueue) {
	q.mu.Lock()
	waiting := len(q.pending) > 0
	if !waiting {
		q.senders--
	}
	q.mu.Unlock()
	if waiting && !s.goSender(func() { s.sendActs(rt, q) }) {
		for batch := q.take(math.MaxInt); batch != nil; batch = q.take(math.MaxInt) {
			for _, p := range batch {
				p.done <- actOutcome{err: fmt.Errorf("%w: node closing", store.ErrClosed)}
			}
		}
	}
}

// goSender runs f on a goroutine that Close waits for, unless the node is
// closing.
func (s *Core) goSender(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.actSenders.Go(f)
	return true
}

// sendActs sends q's waiting actions, as many per call as one call may
// carry, until none is waiting.
func (s *Core) sendActs(rt Route, q *actQueue) {
	for {
		batch := q.take(s.cfg.MaxBatchActions)
		if batch == nil {
			return
		}
		actions := make([]*fsm.Action, len(batch))
		for i, p := range batch {
			actions[i] = p.a
		}
		// The call serves many callers: it ends with its own deadline
		// (sendTyped) or when the node closes, not with any one caller.
		// It carries the first one's values: an unsampled trace context
		// (a sampled action goes alone), so that the leader does not
		// sample on its own what this node's edge did not.
		ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
		stop := context.AfterFunc(s.closing, cancel)
		results, err := s.postActs(ctx, rt, actions, "")
		stop()
		cancel()
		for i, p := range batch {
			o := actOutcome{err: err}
			if err == nil {
				o.ev, o.err = results[i].outcome()
			}
			p.done <- o
		}
	}
}

// take removes and returns up to max waiting actions, marked taken (those
// their callers abandoned are dropped), or nil, having counted this
// sender out, when none is waiting.
func (q *actQueue) take(max int) []*pendingAct {
	q.mu.Lock()
	defer q.mu.Unlock()
	var batch []*pendingAct
	n := 0
	for _, p := range q.pending {
		n++
		if p.state.CompareAndSwap(actWaiting, actTaken) {
			batch = append(batch, p)
			if len(batch) == max {
				break
			}
		}
	}
	clear(q.pending[:n]) // the backing array outlives them
	q.pending = q.pending[n:]
	if len(batch) == 0 {
		q.senders--
		return nil
	}
	return batch
}
