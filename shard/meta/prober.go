package meta

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The meta leader's report loop decides member steps from probes
// (joinable, caughtNonvoters), but must not wait for them: a node that
// accepts the connection and never answers, or whose SYN is dropped,
// would hold every report, load figure and other node's step for up to
// probeTimeout a tick. So the loop's probes run on the Group's prober,
// in the background: the loop asks for the latest answer of each node
// it decides about, which starts a probe when none is in flight, and
// decides with what it has; a node that has not answered yet is not
// added or promoted this tick, as one that does not answer. An answer
// only nominates a node to add or to promote: the step itself waits for
// a fresh answer (confirm, members.go's confirmed), which a node that
// answered a moment ago gives about as fast again (confirm waits twice
// as long as its last answer took).
//
// Answers belong to the leadership that asked for them: lead drops
// everything known when the leader's term is not the one they were
// asked in (a leader that lost and won back its leadership, or answers
// from before a stretch as a follower), and forget drops a node's once
// the map removed it or marked it down, so an answer from before either
// never drives a decision after it. A probe in flight then records its
// result where nobody reads it.
//
// Each probe has a number (seq) that grows with the probes started, so
// the loop can tell an answer asked for after a point (members.go's
// marks) from an older one. A node's probes are one at a time; after a
// failure the next waits a backoff that doubles up to probeBackoffMax,
// and an answer restarts it. An answer is used while it is at most keep
// old, and however old it is when its probe was started at the node's
// previous ask: a loop whose ticks are slower than keep (reconcile
// waiting on stalled shard leaders) still gets the answer to what it
// asked last time. A node is forgotten once it was neither asked for
// within keep nor in the last forgetCalls asks of any node, so one the
// loop asks for every tick is kept however slow the ticks. admitDown and
// the gate probe on their request's goroutine and do not use the prober:
// a request must know whether the node answers now (the loop's own
// proposals, which pass the gate, run off the loop: reconcile.go's
// proposeStep).

const (
	// probeBackoffMin and probeBackoffMax bound the wait before a node
	// whose probe failed is probed again.
	probeBackoffMin = 250 * time.Millisecond
	probeBackoffMax = 5 * time.Second
	// forgetCalls is how many calls of answers a node may go unasked
	// before it is forgotten (and not asked for within keep): the loop
	// makes two calls a tick at most (caughtNonvoters, joinable).
	forgetCalls = 4
)

// prober probes the meta group's nodes in the background for the report
// loop; Close stops it.
type prober struct {
	probe func(ctx context.Context, addr raft.ServerAddress) (probeAnswer, error)
	ctx   context.Context // the Group's: cancelling it ends the probes
	// keep is how long an answer is used, and a node not asked for is
	// kept.
	keep                   time.Duration
	backoffMin, backoffMax time.Duration
	// confirmMin is the least a confirmation waits (confirmWait).
	confirmMin time.Duration

	mu      sync.Mutex
	seq     uint64 // the last probe's number
	calls   uint64 // the calls of answers so far
	closed  bool
	term    uint64 // the leadership term nodes' answers were asked in
	nodes   map[probeKey]*probeState
	running int // probes in flight, of nodes known or dropped
	wg      sync.WaitGroup
}

// probeKey is a node at an address: an answer from an address the node
// no longer has says nothing about it.
type probeKey struct {
	id   string
	addr raft.ServerAddress
}

// probeState is what the prober knows of one node.
type probeState struct {
	last     probeResult // seq 0: no probe finished yet
	inflight bool
	fails    int           // failures in a row
	took     time.Duration // how long its last answer took to come (0: none yet)
	retryAt  time.Time     // no probe before (after a failure)
	asked    time.Time     // when the loop last asked for the node
	askedAt  uint64        // the call of answers that last asked for it
	asks     uint64        // how many times the loop asked for it
}

// probeResult is a probe's answer, or why there was none.
type probeResult struct {
	seq uint64    // the probe's number
	ask uint64    // the node's ask that started it (its asks then)
	at  time.Time // when the answer (or the failure) came
	a   probeAnswer
	err error
}

func newProber(ctx context.Context, probe func(context.Context, raft.ServerAddress) (probeAnswer, error), keep time.Duration) *prober {
	return &prober{probe: probe, ctx: ctx, keep: keep, backoffMin: probeBackoffMin, backoffMax: probeBackoffMax,
		confirmMin: confirmWait, nodes: map[probeKey]*probeState{}}
}

// answers returns the latest result of each node of ids (at addr) that
// is recent enough (within keep, or started at the node's previous ask),
// and starts a probe of every node of ids that has none in flight and is
// not backing off. It never waits for a probe. mark is the number of the
// last probe started before this call: the probes it starts, and any
// later, have higher numbers.
func (p *prober) answers(ids []string, addr map[string]raft.ServerAddress) (_ map[string]probeResult, mark uint64) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	mark = p.seq
	p.calls++
	for k, st := range p.nodes {
		if !st.inflight && now.Sub(st.asked) > p.keep && p.calls-st.askedAt > forgetCalls {
			delete(p.nodes, k)
		}
	}
	out := make(map[string]probeResult, len(ids))
	for _, id := range ids {
		k := probeKey{id, addr[id]}
		st := p.state(k)
		st.asked, st.askedAt = now, p.calls
		st.asks++
		if st.last.seq > 0 && (now.Sub(st.last.at) <= p.keep || st.last.ask+1 >= st.asks) {
			out[id] = st.last
		}
		if st.inflight || p.closed || now.Before(st.retryAt) {
			continue
		}
		p.seq++
		st.inflight = true
		p.running++
		p.wg.Add(1)
		go p.run(k, st, p.seq, st.asks)
	}
	return out, mark
}

// lead makes term the leadership term p's answers are asked in: when it
// is not the term they were asked in so far, p drops every node's state
// (answers, backoffs), so no answer asked for under an earlier
// leadership, this node's or before it, counts in this one.
func (p *prober) lead(term uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if term != p.term {
		p.term = term
		p.nodes = map[probeKey]*probeState{}
	}
}

// forget drops the state of every node gone says is gone, at any
// address: one the map removed or marked down is known afresh if it is
// ever listed again.
func (p *prober) forget(gone func(id string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	maps.DeleteFunc(p.nodes, func(k probeKey, _ *probeState) bool { return gone(k.id) })
}

// state returns what p knows of k, a new state when nothing; p.mu held.
func (p *prober) state(k probeKey) *probeState {
	st, ok := p.nodes[k]
	if !ok {
		st = &probeState{}
		p.nodes[k] = st
	}
	return st
}

// run probes one node in the background and records the result in st
// (which lead or forget may have dropped meanwhile: then nobody reads
// it).
func (p *prober) run(k probeKey, st *probeState, seq, ask uint64) {
	defer p.wg.Done()
	start := time.Now()
	a, err := p.probe(p.ctx, k.addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	st.inflight = false
	p.running--
	p.record(st, probeResult{seq: seq, ask: ask, at: time.Now(), a: a, err: err}, start)
}

// record makes r, of a probe started at start, st's latest result,
// unless a later probe's result is there already (a confirmation's,
// while this one was in flight); p.mu held.
func (p *prober) record(st *probeState, r probeResult, start time.Time) {
	if r.seq < st.last.seq {
		return
	}
	st.last = r
	if r.err == nil {
		st.fails, st.retryAt = 0, time.Time{}
		st.took = r.at.Sub(start)
		return
	}
	st.fails++
	st.retryAt = r.at.Add(backoff(p.backoffMin, p.backoffMax, st.fails))
}

// confirm probes node id at addr now, on the caller's goroutine, and
// records the result as the node's latest: the meta leader adds or
// promotes a node only on such an answer (members.go), so that one that
// answered the background probe and then died, or came back on an older
// gsd, is not added or promoted; a node whose confirmation failed is no
// candidate until it answers again. It waits as long as the node needs
// (confirmBudget: twice its last answer's time, at least confirmMin, at
// most limit): a far node, whose dial and handshake alone outlast
// confirmMin, is confirmed too.
func (p *prober) confirm(id string, addr raft.ServerAddress, limit time.Duration) probeResult {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	st := p.state(probeKey{id, addr})
	ask := st.asks
	wait := confirmBudget(st.took, p.confirmMin, limit)
	p.mu.Unlock()
	start := time.Now()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	a, err := p.probe(ctx, addr)
	cancel()
	r := probeResult{seq: seq, ask: ask, at: time.Now(), a: a, err: err}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record(st, r, start) // dropped meanwhile (lead, forget): nobody reads it
	return r
}

// confirmBudget is how long a confirmation of a node whose last answer
// took took may wait: twice that (the same round trips again, with room
// for jitter), at least minWait, at most limit.
func confirmBudget(took, minWait, limit time.Duration) time.Duration {
	return min(max(2*took, minWait), limit)
}

// backoff is the wait after fails failures in a row: min, doubled for
// each failure after the first, at most max.
func backoff(minWait, maxWait time.Duration, fails int) time.Duration {
	d := minWait
	for i := 1; i < fails && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// close stops starting probes and waits for those in flight (the
// Group's context, cancelled first, ends them).
func (p *prober) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}
