package store

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/tracing"
	"github.com/hashicorp/raft"
)

// proposal is one command waiting for its batch to commit, or a fair group
// (see fair.go): group's members, in order, go into one entry together.
type proposal struct {
	cmd   fsm.Command
	size  int
	done  chan outcome // buffered, receives exactly once
	group []*proposal  // a fair group; cmd and done unused

	// With a sampled span in the caller's context (internal/tracing) the
	// batcher times the proposal's stages; untraced, they stay zero.
	traced           bool
	queued, proposed time.Time // submitted; its entry taken by raft
	applied          time.Time // its entry applied (or failed)
	batch            int       // commands in its entry
}

// fail answers p (every member of a group) with err.
func (p *proposal) fail(err error) {
	if p.group == nil {
		p.done <- outcome{err: err}
		return
	}
	for _, m := range p.group {
		m.done <- outcome{err: err}
	}
}

// addTo appends p, or a group's members, to batch.
func addTo(batch []*proposal, p *proposal) []*proposal {
	if p.group != nil {
		return append(batch, p.group...)
	}
	return append(batch, p)
}

type outcome struct {
	res   fsm.Result
	index uint64
	err   error
}

// inflight is one proposed batch whose future the waiter resolves.
type inflight struct {
	fut      raft.ApplyFuture
	props    []*proposal
	start    time.Time
	critical bool // it carries a critical action (or another command that may not wait: mayWait)
	budgeted bool // it holds a token of the node's Budget
}

// batcher groups proposals from all callers into log entries: critical lane
// first, up to MaxActions or MaxBytes per entry. It proposes at once when
// nothing is in flight (low latency when idle) and otherwise gathers for up
// to MaxWait while earlier entries commit (throughput under load).
type batcher struct {
	cfg     BatchConfig
	raft    *raft.Raft
	timeout time.Duration
	metrics *metrics

	critical chan *proposal
	bulk     chan *proposal
	sem      chan struct{} // one token per batch in flight
	// committed wakes a batch waiting for the entries in flight (gather):
	// the waiter sends after each slot it frees.
	committed chan struct{}
	// critFlight counts the entries in flight that carry a critical
	// action: a small critical batch waits only behind those, never
	// behind bulk entries.
	critFlight atomic.Int32
	// submitted counts proposals queued (submit), so that free can tell
	// whether callers are still coming back.
	submitted atomic.Uint64
	waiting   chan inflight
	notice    chan struct{} // a commit notice asked for (notice.go)
	// noticeWaits is 1 while a notice proposed is not answered yet.
	noticeWaits atomic.Int32
	// alone reports whether the group has no member but this node: then
	// nobody needs a commit notice (nil: the batcher asks for none).
	alone func() bool

	// fairness returns a world's fair-resolution settings (nil: no world
	// is fair); fair holds the fair worlds' critical actions (fair.go).
	fairness func(world string) fsm.Fairness
	fair     *fairHold

	// budget, when set, is the node's bound on entries in flight over all
	// its groups (budget.go); sem is this group's own.
	budget *Budget

	// proposals recycles proposals and their done channels: at 100k
	// actions/s they were two of the leader's allocations per action. A
	// proposal goes back only after its caller received its outcome: done
	// receives exactly once, and nothing touches a proposal after sending
	// to done.
	proposals sync.Pool
	// cmds is the entry being encoded (run's scratch for propose, used on
	// run's goroutine only): a fresh one per entry was 4% of the bytes the
	// store allocated at 1,024 writers.
	cmds []fsm.Command

	mu       sync.RWMutex // submit enqueues under R; close sets closed under W
	closed   bool
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newBatcher(cfg BatchConfig, r *raft.Raft, timeout time.Duration, m *metrics) *batcher {
	b := &batcher{
		cfg: cfg, raft: r, timeout: timeout, metrics: m,
		critical:  make(chan *proposal, cfg.QueueSize),
		bulk:      make(chan *proposal, cfg.QueueSize),
		sem:       make(chan struct{}, cfg.MaxInflight),
		committed: make(chan struct{}, 1),
		waiting:   make(chan inflight, cfg.MaxInflight),
		notice:    make(chan struct{}, 1),
		stop:      make(chan struct{}),
		fair:      newFairHold(),
	}
	b.wg.Add(3)
	go b.run()
	go b.wait()
	go b.notices()
	return b
}

// submit queues cmd and waits for its outcome. A caller that gives up after
// its proposal may have been proposed gets ErrOutcomeUnknown.
func (b *batcher) submit(ctx context.Context, cmd fsm.Command, prio fsm.Priority, size int) (outcome, error) {
	p := b.newProposal()
	p.cmd, p.size = cmd, size
	if p.traced = tracing.Recording(ctx); p.traced { // a recycled p keeps old times
		p.queued, p.proposed, p.applied = time.Now(), time.Time{}, time.Time{}
	}
	lane := b.critical
	if prio == fsm.PriorityBulk {
		lane = b.bulk
	}
	// Enqueue under the read lock: close takes the write lock before it
	// drains, so every proposal that got in is answered.
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return outcome{}, ErrClosed
	}
	if fair := b.fairOf(cmd, prio); fair.Enabled() {
		if err := b.hold(p, fair); err != nil {
			b.mu.RUnlock()
			return outcome{}, err
		}
	} else {
		select {
		case lane <- p:
		default:
			b.mu.RUnlock()
			return outcome{}, ErrOverloaded
		}
	}
	b.mu.RUnlock()
	b.submitted.Add(1)
	var o outcome
	if ctx.Done() == nil {
		o = <-p.done // cannot be cancelled: a plain receive, not a select
	} else {
		select {
		case o = <-p.done:
		case <-ctx.Done():
			return outcome{}, ErrOutcomeUnknown // p may still be answered: not recycled
		}
	}
	if p.traced {
		traceStages(ctx, p, o)
	}
	p.cmd = fsm.Command{}
	b.proposals.Put(p)
	return o, o.err
}

// newProposal returns a recycled proposal, or a new one.
func (b *batcher) newProposal() *proposal {
	if p, ok := b.proposals.Get().(*proposal); ok {
		return p
	}
	return &proposal{done: make(chan outcome, 1)}
}

// fairOf returns the fairness that applies to cmd: its world's for a
// critical action, none otherwise.
func (b *batcher) fairOf(cmd fsm.Command, prio fsm.Priority) fsm.Fairness {
	if b.fairness == nil || prio != fsm.PriorityCritical || cmd.Kind != fsm.CmdAction {
		return fsm.Fairness{}
	}
	return b.fairness(cmd.Action.World)
}

func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	if b.fair != nil { // nil only in tests that build a bare batcher
		b.closeHold()
	}
	b.stopOnce.Do(func() { close(b.stop) })
	if b.fair != nil {
		b.fair.wg.Wait()
	}
	b.wg.Wait()
	// Anything still queued was never proposed.
	for {
		select {
		case p := <-b.critical:
			p.fail(ErrNotLeader)
		case p := <-b.bulk:
			p.fail(ErrNotLeader)
		default:
			return
		}
	}
}

// next takes one proposal, critical first; nil when stopping.
func (b *batcher) next(block bool) *proposal {
	select {
	case p := <-b.critical:
		return p
	default:
	}
	if !block {
		select {
		case p := <-b.bulk:
			return p
		default:
			return nil
		}
	}
	select {
	case p := <-b.critical:
		return p
	case p := <-b.bulk:
		return p
	case <-b.stop:
		return nil
	}
}

func (b *batcher) run() {
	defer b.wg.Done()
	defer close(b.waiting)
	var carry *proposal      // a fair group's part that did not fit the last batch
	var gathered []*proposal // the last batch's array, reused: propose copies it
	for {
		first := carry
		if first == nil {
			first = b.next(true)
		}
		if first == nil {
			return
		}
		g := &gathering{batch: gathered[:0], maxActions: b.cfg.MaxActions, maxLen: b.cfg.MaxBytes, acksWait: b.cfg.BulkPipelineMin > 0}
		g.add(first)
		for !g.full() {
			p := b.next(false)
			if p == nil {
				break
			}
			g.add(p)
		}
		b.gather(g)
		// Wait for the group's slot, then the node's: both gather.
		if !b.takeSlot(b.sem, g) {
			b.failGathered(g)
			return
		}
		// The node's budget bounds a group's entries beyond its first in
		// flight, bulk only: a group whose quorum is slow or gone holds
		// tokens until it steps down, and must not stall the node's other
		// groups' next entry, or anyone's critical actions.
		budgeted := b.budget != nil && !g.critical && len(b.sem) > 1
		if budgeted && !b.takeSlot(b.budget.tokens, g) {
			<-b.sem
			b.failGathered(g)
			return
		}
		carry = g.carry
		b.propose(g.batch, budgeted, &b.cmds)
		clear(g.batch) // the waiter has its own copy (propose's ordered)
		gathered = g.batch[:0]
	}
}

// gather adds to a batch that is not full while earlier entries of the
// group are in flight; with none in flight the batch goes at once (an
// idle group's action waits for nothing). A batch that may pipeline (see
// mayPipeline) lingers for up to MaxWait, as entries commit meanwhile. A
// smaller one waits for the entries in flight to commit, however long
// that takes: a group whose entries carry few actions makes them one at a
// time, each carrying all that arrived meanwhile, instead of a pipeline
// of small ones (each entry costs every follower an append, a log write
// and an FSM dispatch whatever it carries).
func (b *batcher) gather(g *gathering) {
	var (
		timer   *time.Timer
		expired <-chan time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for !g.full() && len(b.sem) > 0 {
		// mayPipeline only turns true while the batch waits (it grows; only
		// this goroutine proposes), so the timer, once started, holds.
		if timer == nil && b.mayPipeline(g) {
			if b.cfg.MaxWait == 0 {
				return
			}
			timer = time.NewTimer(b.cfg.MaxWait)
			expired = timer.C
		}
		if b.takeCritical(g) {
			continue
		}
		select {
		case p := <-b.critical:
			g.add(p)
		case p := <-b.bulk:
			g.add(p)
		case <-b.committed:
		case <-expired:
			return
		case <-b.stop:
			return
		}
	}
}

// takeCritical adds a queued critical action to the batch, if there is
// one: with both lanes ready a select picks either, and critical actions
// go first.
func (b *batcher) takeCritical(g *gathering) bool {
	select {
	case p := <-b.critical:
		g.add(p)
		return true
	default:
		return false
	}
}

// mayPipeline reports whether the batch may go while entries are in
// flight: it carries PipelineMin actions or more (a batch of bulk actions
// and acks only, see mayWait: BulkPipelineMin too), or it carries a critical action and only
// bulk entries are in flight (critical actions never wait behind bulk
// ones).
func (b *batcher) mayPipeline(g *gathering) bool {
	if !g.critical && len(g.batch) < b.cfg.BulkPipelineMin {
		return false
	}
	return len(g.batch) >= b.cfg.PipelineMin || (g.critical && b.critFlight.Load() == 0)
}

// failGathered answers a batch that will never be proposed (the batcher
// stops), and the part it carries.
func (b *batcher) failGathered(g *gathering) {
	for _, p := range g.batch {
		p.done <- outcome{err: ErrNotLeader}
	}
	if g.carry != nil {
		g.carry.fail(ErrNotLeader)
	}
}

// propose encodes batch as one entry and hands it to Raft, its waiters to
// wait. scratch holds the entry's commands while it is encoded (kept for
// the next call): each caller has its own, since a test's propose runs
// beside run's.
func (b *batcher) propose(batch []*proposal, budgeted bool, scratch *[]fsm.Command) {
	// Critical actions first inside the entry too: the FSM applies in order.
	// A fair group's members are adjacent critical actions: they keep their
	// order.
	cmds := (*scratch)[:0]
	ordered := make([]*proposal, 0, len(batch))
	for pass := 0; pass < 2; pass++ {
		for _, p := range batch {
			if isBulk(p) == (pass == 1) {
				cmds = append(cmds, p.cmd)
				ordered = append(ordered, p)
			}
		}
	}
	data := fsm.EncodeBatch(&fsm.Batch{Time: time.Now().UnixNano(), Commands: cmds})
	n := len(cmds)
	clear(cmds) // the encoding is a copy; let the actions go
	*scratch = cmds[:0]
	b.metrics.batchSize.Observe(float64(n))
	b.metrics.batchBytes.Observe(float64(len(data)))
	fut := b.raft.Apply(data, b.timeout)
	start := time.Now()
	for _, p := range ordered {
		if p.traced { // before the send: the waiter answers p after it
			p.proposed, p.batch = start, n
		}
	}
	critical := slices.ContainsFunc(ordered, func(p *proposal) bool { return !mayWait(p, b.cfg.BulkPipelineMin > 0) })
	if critical {
		b.critFlight.Add(1)
	}
	b.waiting <- inflight{fut: fut, props: ordered, start: start, critical: critical, budgeted: budgeted}
}

// wait resolves proposed batches in log order.
func (b *batcher) wait() {
	defer b.wg.Done()
	for in := range b.waiting {
		err := in.fut.Error()
		now := time.Now()
		b.metrics.commitLatency.Observe(now.Sub(in.start).Seconds())
		for _, p := range in.props {
			if p.traced {
				p.applied = now
			}
		}
		if err != nil {
			err = proposeError(err)
			for _, p := range in.props {
				p.done <- outcome{err: err}
			}
		} else {
			res, _ := in.fut.Response().([]fsm.Result)
			idx := in.fut.Index()
			for i, p := range in.props {
				o := outcome{index: idx}
				if i < len(res) {
					o.res = res[i]
				} else {
					o.err = ErrOutcomeUnknown
				}
				p.done <- o
			}
		}
		b.free(in)
		if err == nil {
			b.askNotice()
		}
	}
}

// free gives an answered entry's slots back and wakes a batch waiting for
// them. It yields first, so that callers just answered can queue their
// next actions and a batch waiting for this commit (gather) carries them
// too, instead of them making the next small entry on their own: closed
// loops of writers would otherwise settle into two halves that take turns
// in flight. A yield, not a timer: nobody waits for a caller that does
// not come back.
func (b *batcher) free(in inflight) {
	if in.budgeted {
		<-b.budget.tokens // before the yields: other groups need not wait for them
	}
	for range min(len(in.props), maxYields) {
		queued := b.submitted.Load()
		runtime.Gosched()
		if b.submitted.Load() == queued {
			break // nobody queued meanwhile
		}
	}
	if in.critical {
		b.critFlight.Add(-1)
	}
	<-b.sem
	select {
	case b.committed <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// maxYields bounds free's yields per entry: one lets the callers it woke
// run (they wait on this core's run queue), and under a steady stream of
// arrivals more would only hold the slot.
const maxYields = 3

// isBulk reports whether p is a bulk action (everything else, commands
// other than actions included, counts as critical).
func isBulk(p *proposal) bool {
	return p.cmd.Kind == fsm.CmdAction && p.cmd.Action.Priority == fsm.PriorityBulk
}

// mayWait reports whether p may wait for the group's entries in flight
// (BulkPipelineMin): a bulk action, or, when acksWait (BulkPipelineMin
// on), a batch of session acks (the play connections' resume points: a
// drain transfer, a bye or a connection's end flushes them and waits for
// their commit, so at most one commit longer). Everything else makes its
// batch critical: it goes as soon as MaxWait allows. With
// BulkPipelineMin 0 acks are critical as before it existed: an acks
// batch never waits for the node's budget.
func mayWait(p *proposal, acksWait bool) bool {
	return isBulk(p) || acksWait && p.group == nil && p.cmd.Kind == fsm.CmdSessionAcks
}

// proposeError maps raft's errors: only a proposal raft refused before
// appending is safe to call not-proposed.
func proposeError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) {
		return ErrNotLeader
	}
	return ErrOutcomeUnknown
}

// traceStages records a traced proposal's stages under the span ctx
// carries: its wait in the queue until its entry went to raft (with the
// entry's size), and raft's commit and apply of that entry. A proposal
// that never reached raft (refused, or its batcher closed) has no stages.
func traceStages(ctx context.Context, p *proposal, o outcome) {
	if p.proposed.IsZero() {
		return
	}
	tracing.Interval(ctx, "gsd.batcher.queue", p.queued, p.proposed, tracing.Int("gsd.batch.size", int64(p.batch)))
	commit := []tracing.Attr{tracing.Int("raft.index", int64(o.index))}
	if o.err != nil {
		commit = append(commit, tracing.String("error", o.err.Error()))
	}
	tracing.Interval(ctx, "gsd.raft.commit", p.proposed, p.applied, commit...)
}
