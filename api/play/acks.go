package play

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// Replicated acks, batched per node and group. A play client acks the
// events it processed; the ack is replicated in its session so that a
// resume, on any node, starts after it. Each connection only records its
// client's latest ack (playConn.acked); one goroutine per Server, the
// acker, replicates every AckInterval the acks of all this node's
// connections that moved since they were last replicated, in ONE
// fsm.CmdSessionAcks command per group (the Router names each world's
// group; on a node that does not lead it, one internal call to the node
// that does), split only beyond fsm.MaxSessionAcks. With 1,000 players
// that is 5 commands a second instead of 5,000.
//
// A connection that ends, says bye or is moved by a drain flushes its ack
// at once (flushAck): it queues it for the acker, wakes it and waits for
// the round that carries it, so many connections ending together still
// share commands. A round that fails leaves every ack it carried pending:
// the next round sends it again (acks only ever raise a session's acked).

// acker replicates this node's play acks; see above.
type acker struct {
	s        *Service
	interval time.Duration
	kick     chan struct{} // wakes the loop for a flush (buffered 1)
	stopped  chan struct{} // closed by stop
	done     chan struct{} // closed when the loop has returned

	mu      sync.Mutex
	started bool
	waiting []*ackWait // flushes for the next round

	batches  *prometheus.CounterVec
	acks     prometheus.Counter
	stopOnce sync.Once
}

// ackWait is a connection waiting for its ack's replication.
type ackWait struct {
	c    *playConn
	seq  uint64
	done chan error // buffered 1: the round never waits for the waiter
}

// pendingAck is one connection's ack in a round.
type pendingAck struct {
	c     *playConn
	ack   fsm.SessionAck
	waits []*ackWait
}

func newAcker(s *Service, reg prometheus.Registerer) (*acker, error) {
	a := &acker{s: s, interval: s.cfg.AckInterval, kick: make(chan struct{}, 1),
		stopped: make(chan struct{}), done: make(chan struct{}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_play_ack_batches_total",
			Help: "Batched ack commands this node replicated (or forwarded to the leader) for its play connections, by result.",
		}, []string{"result"}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_play_acks_replicated_total",
			Help: "Play connections' acks carried by successful ack batches.",
		}),
	}
	for _, c := range []prometheus.Collector{a.batches, a.acks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api ack metrics: %w", err)
		}
	}
	return a, nil
}

// start runs the loop, once, unless stop came first. The first play
// connection starts it, so servers without play run no goroutine.
func (a *acker) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.stopped:
		return
	default:
	}
	if !a.started {
		a.started = true
		go a.loop()
	}
}

// stop ends the loop and waits for it; Close calls it once the play
// connections have ended (their final flushes need the loop).
func (a *acker) stop() {
	a.stopOnce.Do(func() {
		a.mu.Lock()
		close(a.stopped)
		started := a.started
		a.mu.Unlock()
		if started {
			<-a.done
		}
	})
}

func (a *acker) loop() {
	defer close(a.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.stopped:
			cancel() // a round in flight serves no one any more
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-a.stopped:
			return
		case <-t.C:
		case <-a.kick:
		}
		a.round(ctx)
	}
}

// flush replicates c's ack now if it moved, through the acker's next round,
// waiting for it until ctx ends. Without a running loop (stopped) it
// replicates alone.
func (a *acker) flush(ctx context.Context, c *playConn) {
	seq := c.acked.Load()
	if seq <= c.flushed.Load() || c.session == "" {
		return
	}
	w := &ackWait{c: c, seq: seq, done: make(chan error, 1)}
	a.mu.Lock()
	running := a.started
	select {
	case <-a.stopped:
		running = false
	default:
	}
	if running {
		a.waiting = append(a.waiting, w)
	}
	a.mu.Unlock()
	if !running {
		a.replicate(ctx, []*pendingAck{{c: c, ack: fsm.SessionAck{World: c.world, ID: c.session, Seq: seq}, waits: []*ackWait{w}}})
		return
	}
	select {
	case a.kick <- struct{}{}:
	default: // a wake-up is pending already
	}
	select {
	case <-w.done:
	case <-ctx.Done():
	}
}

// round replicates every ack that moved, and the queued flushes.
func (a *acker) round(ctx context.Context) {
	a.mu.Lock()
	waits := a.waiting
	a.waiting = nil
	a.mu.Unlock()

	byConn := make(map[*playConn]*pendingAck)
	var pending []*pendingAck
	add := func(c *playConn, seq uint64) *pendingAck {
		p := byConn[c]
		if p == nil {
			p = &pendingAck{c: c, ack: fsm.SessionAck{World: c.world, ID: c.session}}
			byConn[c] = p
			pending = append(pending, p)
		}
		p.ack.Seq = max(p.ack.Seq, seq)
		return p
	}
	now := time.Now().UnixNano()
	for _, c := range a.s.playConns() {
		if seq := c.acked.Load(); seq > c.flushed.Load() {
			add(c, seq)
		} else if a.keepalive(c, now) {
			add(c, c.flushed.Load())
		}
	}
	for _, w := range waits {
		p := add(w.c, w.seq)
		p.waits = append(p.waits, w)
	}
	// One command per group (the router names it), split only beyond
	// fsm.MaxSessionAcks. Acks whose world has no route now go together,
	// and stay pending when their batch fails on it.
	byGroup := make(map[string][]*pendingAck)
	var groups []string
	for _, p := range pending {
		g := ""
		if rt, err := a.s.Router().Route(p.ack.World, edge.KindSession); err == nil {
			g = rt.GroupID
		}
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], p)
	}
	for _, g := range groups {
		batch := byGroup[g]
		for len(batch) > 0 {
			n := min(len(batch), fsm.MaxSessionAcks)
			a.replicate(ctx, batch[:n])
			batch = batch[n:]
		}
	}
}

// replicate sends one batch (at most fsm.MaxSessionAcks acks of one
// group) and, when it committed, records each ack as its connection's
// flushed one.
func (a *acker) replicate(ctx context.Context, batch []*pendingAck) {
	acks := make([]fsm.SessionAck, len(batch))
	for i, p := range batch {
		acks[i] = p.ack
	}
	ctx, cancel := context.WithTimeout(ctx, a.s.Config().RequestTimeout)
	defer cancel()
	_, err := a.s.SessionAcks(ctx, acks)
	if err != nil {
		a.batches.WithLabelValues("error").Inc()
		a.s.log.Debug("play: replicate acks", "acks", len(acks), "err", err)
	} else {
		a.batches.WithLabelValues("ok").Inc()
		a.acks.Add(float64(len(acks)))
	}
	now := time.Now().UnixNano()
	for _, p := range batch {
		if err == nil {
			p.c.markFlushed(p.ack.Seq)
			p.c.kept.Store(now)
		}
		for _, w := range p.waits {
			w.done <- err
		}
	}
}

// markFlushed records seq as replicated (flushed only rises).
func (c *playConn) markFlushed(seq uint64) {
	for {
		cur := c.flushed.Load()
		if seq <= cur || c.flushed.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// keepalive reports whether c's session needs its seen time refreshed at
// now: keepalives are on and c has replicated no ack for a keepalive
// interval. A connection the acker meets for the first time starts its
// interval then (its session was just opened or resumed, so it is fresh).
func (a *acker) keepalive(c *playConn, now int64) bool {
	every := a.s.cfg.SessionKeepalive
	if every <= 0 || c.session == "" {
		return false
	}
	if c.kept.CompareAndSwap(0, now) {
		return false
	}
	return now-c.kept.Load() >= int64(every)
}

// flushAck replicates the client's latest ack now if it moved (a bye, a
// drain's move, the end of the connection). final runs after the
// connection ended, so it gets its own deadline.
func (c *playConn) flushAck(final bool) {
	parent := c.ctx
	if final {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, c.s.Config().RequestTimeout)
	defer cancel()
	c.s.acks.flush(ctx, c)
}

// playConns returns this node's play connections.
func (s *Service) playConns() []*playConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*playConn, 0, len(s.plays))
	for _, c := range s.plays {
		out = append(out, c)
	}
	return out
}
