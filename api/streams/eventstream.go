package streams

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/store"
)

// The event streams' fan-out: every NDJSON event stream of one world with
// the same linger on this node is fed by one fan of Service.fans (package
// fanout). The fan reads the world's feed once, joins the NDJSON lines of
// each read (one linger window) into one chunk, and hands the same chunk to
// every attached stream; a stream writes it with one write and one flush.
// So a thousand spectators cost one feed read, one encoding per event and
// one buffer per window, not a thousand of each.
//
// A hand-over never blocks the fan: a stream whose queue of chunks is full
// is detached (its channel closed after the chunks already queued). A
// detached stream, or one that starts behind the fan (from= an older seq),
// reads the events it is missing from its own subscription, then attaches
// again. Each stream keeps its own position and writes each seq once, in
// order, so the stream's contract (docs/API.md) is the same either way.

// Service serves the event streams over the edge's shared core.
type Service struct {
	*edge.Core
	fans     *fanout.Hub // the streams' shared fan-outs, one per world and linger
	leanFans *fanout.Hub // those of the lean streams (eventlean.go)
	views    views       // the filtered streams' shared parts (views.go)
}

// New returns the event streams' service over core.
func New(core *edge.Core) (*Service, error) {
	s := &Service{Core: core, views: views{vis: edge.NewVisibility(core.Backend())}}
	cfg := s.fanConfig()
	cfg.Encode = core.Wire().NDJSON
	var err error
	if s.fans, err = fanout.New(cfg); err != nil {
		return nil, err
	}
	cfg.Encode = leanNDJSON(core.Wire())
	if s.leanFans, err = fanout.New(cfg); err != nil {
		s.fans.Close()
		return nil, err
	}
	return s, nil
}

// fanConfig returns the config of the streams' fans, but their encoder.
func (s *Service) fanConfig() fanout.Config {
	cfg := fanout.DefaultConfig()
	if q := s.Config().StreamQueue; q > 0 {
		cfg.Queue = q
	}
	cfg.Subscribe = s.subscribe
	cfg.OnDetach = s.Metrics().StreamDetaches.Inc
	return cfg
}

// subscribe opens a subscription to world's events on this node.
func (s *Service) subscribe(world string, from uint64) (fanout.Subscription, error) {
	sub, err := s.Backend().Subscribe(world, from)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return sub, nil
}

// Register adds the event stream route to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/events", s.Events)
}

// Members returns the fans and attached streams of world on this node.
func (s *Service) Members(world string) (fans, members int) {
	fans, members = s.fans.Members(world)
	lf, lm := s.leanFans.Members(world)
	return fans + lf, members + lm
}

// Close stops the fans; call it after the core's Close has ended the
// streams (the fans stop with their last stream: it waits for them).
func (s *Service) Close() {
	s.fans.Close()
	s.leanFans.Close()
}

// done is a context that is always done: Next with it returns the events
// already waiting, or an error at once.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// eventStream is one NDJSON event stream being served: it writes each seq
// once, in order, from next on, taking the events from its world's fan
// (s.fans) when it can and from its own subscription when it is
// behind the fan or was detached from it.
type eventStream struct {
	s      *Service
	out    streamOut
	world  string
	linger time.Duration
	next   uint64  // seq of the next event to write
	v      *viewed // nil: the caller sees everything (views.go)
	lean   bool    // lines in the lean form (eventlean.go)
}

// serve writes events until the client goes away, the server closes or
// the stream fails (its last line then holds the error). sub is the
// stream's own subscription, at next.
func (st *eventStream) serve(ctx context.Context, sub *store.Subscription) {
	if st.v != nil && st.v.delay > 0 {
		st.serveDelayed(ctx, sub)
		return
	}
	fans := st.s.fans
	if st.lean {
		fans = st.s.leanFans
	}
	if st.v != nil && st.v.fans != nil {
		fans = st.v.fans
	}
	key := fanout.Key{World: st.world, Linger: st.linger}
	for {
		// Write what is there already (from= an older seq), then take
		// new events from the fan.
		if !st.drain(ctx, &sub) {
			return
		}
		m, pos := fans.Attach(key, st.next)
		ok := st.catchUp(ctx, pos, &sub) && st.follow(ctx, m.Chunks(), &sub)
		fans.Detach(m)
		if !ok {
			return
		}
		// Detached (too slow) or the fan ended: one round from our own
		// subscription, which also reports a failure of the feed, then
		// attach again.
		if !st.own(ctx, &sub) {
			return
		}
	}
}

// catchUp writes, from the stream's own subscription, the events before
// pos that the fan handed out before the stream attached.
func (st *eventStream) catchUp(ctx context.Context, pos uint64, sub **store.Subscription) bool {
	if st.next >= pos {
		return true
	}
	return st.readUpTo(ctx, pos, sub) && st.out.Flush() == nil
}

// readUpTo writes, unflushed, the events before pos from the stream's own
// subscription (it may return more than those).
func (st *eventStream) readUpTo(ctx context.Context, pos uint64, sub **store.Subscription) bool {
	for st.next < pos {
		if !st.read(ctx, sub) {
			return false
		}
	}
	return true
}

// follow writes the fan's chunks until the fan lets go of the stream (true)
// or the stream ends (false).
func (st *eventStream) follow(ctx context.Context, chunks <-chan *fanout.Chunk, sub **store.Subscription) bool {
	for {
		var c *fanout.Chunk
		select {
		case c = <-chunks:
			if c == nil {
				return true
			}
		case <-ctx.Done():
			return false
		}
		if c.End() <= st.next {
			continue // written already
		}
		if st.v != nil {
			if err := st.v.checkRules(st.s); err != nil {
				return st.write(ctx, nil, err)
			}
		}
		_ = st.out.SetWriteDeadline(time.Now().Add(st.s.Config().StreamWriteTimeout))
		// Behind the fan: the events before the chunk come from our own
		// subscription.
		if !st.readUpTo(ctx, c.First(), sub) {
			return false
		}
		if st.next >= c.End() {
			if st.out.Flush() != nil {
				return false
			}
			continue
		}
		for st.next < c.End() {
			// Up to a rules update's event, it included: the stream
			// switches rules there (passRules).
			end, version, rules := c.End(), uint64(0), false
			if st.v != nil {
				var seq uint64
				if seq, version, rules = c.RulesUpdate(st.next); rules {
					end = seq + 1
				}
			}
			if st.out.WriteChunk(c.Span(st.next, end)) != nil {
				return false
			}
			st.next = end
			if rules {
				if err := st.v.passRules(st.s, version); err != nil {
					return st.write(ctx, nil, err)
				}
			}
		}
	}
}

// drain writes the events the stream's own subscription holds already,
// without waiting for more, and flushes.
func (st *eventStream) drain(ctx context.Context, sub **store.Subscription) bool {
	for {
		var evs []*fsm.Event
		err := st.sync(sub)
		if err == nil {
			evs, err = (*sub).Next(done)
			if errors.Is(err, context.Canceled) {
				break // nothing more waiting
			}
		}
		if !st.write(ctx, evs, err) {
			return false
		}
		st.next = (*sub).Position()
	}
	return st.out.Flush() == nil
}

// own writes one batch from the stream's own subscription, waiting for
// it, then lingers.
func (st *eventStream) own(ctx context.Context, sub **store.Subscription) bool {
	if !st.read(ctx, sub) {
		return false
	}
	if err := st.out.Flush(); err != nil {
		return false
	}
	if st.linger > 0 {
		t := time.NewTimer(st.linger)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// read waits for the next events from the stream's own subscription (moved
// to next first if the fan's chunks took the stream past it) and writes
// them unflushed. On a failure it writes the error line and returns false.
func (st *eventStream) read(ctx context.Context, sub **store.Subscription) bool {
	var evs []*fsm.Event
	err := st.sync(sub)
	if err == nil {
		evs, err = (*sub).Next(ctx)
	}
	if !st.write(ctx, evs, err) {
		return false
	}
	st.next = (*sub).Position()
	return true
}

// sync moves the stream's own subscription to next if the fan's chunks
// took the stream past it.
func (st *eventStream) sync(sub **store.Subscription) error {
	if (*sub).Position() == st.next {
		return nil
	}
	s, err := st.s.Backend().Subscribe(st.world, st.next)
	if err == nil {
		*sub = s
	}
	return err
}

// write writes events unflushed, or the error line of err.
func (st *eventStream) write(ctx context.Context, evs []*fsm.Event, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	_ = st.out.SetWriteDeadline(time.Now().Add(st.s.Config().StreamWriteTimeout))
	if err == nil && st.v != nil && len(evs) > 0 {
		err = st.v.checkRules(st.s)
	}
	if err != nil {
		_, body := st.s.ErrorFor(err, false)
		_ = json.NewEncoder(st.out).Encode(body)
		_ = st.out.Flush()
		return false
	}
	for _, ev := range evs {
		var line []byte
		switch {
		case st.v != nil:
			if line, err = st.v.line(st.s, ev, st.lean); err != nil {
				return st.write(ctx, nil, err) // the feed failed under the filter
			}
		case st.lean:
			line, err = st.s.leanLine(ev)
		default:
			line, err = st.s.Wire().Line(ev)
		}
		if err != nil {
			return false
		}
		if _, err := st.out.Write(line); err != nil {
			return false
		}
		if version, ok := spectator.RulesUpdate(ev); ok && st.v != nil {
			if err := st.v.passRules(st.s, version); err != nil {
				st.next = ev.Seq + 1
				return st.write(ctx, nil, err)
			}
		}
	}
	return true
}
