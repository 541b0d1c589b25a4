package api

import (
	"context"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/store"
)

// The event streams' fan-out: every NDJSON event stream of one world with
// the same linger on this node is fed by one eventFan. The fan reads the
// world's feed once, joins the NDJSON lines of each read (one linger
// window) into one chunk, and hands the same chunk to every attached
// stream; a stream writes it with one write and one flush. So a thousand
// spectators cost one feed read, one encoding per event and one buffer per
// window, not a thousand of each.
//
// A hand-over never blocks the fan: a stream whose queue of chunks is full
// is detached (its channel closed after the chunks already queued). A
// detached stream, or one that starts behind the fan (from= an older seq),
// reads the events it is missing from its own subscription, then attaches
// again. Each stream keeps its own position and writes each seq once, in
// order, so the stream's contract (docs/API.md) is the same either way.

// fanQueue is how many chunks a stream may have waiting before it is
// detached (with a 100 ms linger: 25 s of events).
const fanQueue = 256

// fanReads bounds the feed reads (of up to 256 events each) joined into
// one chunk when the fan finds more events waiting after its linger.
const fanReads = 16

// fanChunk is one window's events as NDJSON: event first+i's line is
// data[offs[i]:offs[i+1]]. Shared by all streams: read-only.
type fanChunk struct {
	first uint64
	offs  []int
	data  []byte
}

// end returns the seq after the chunk's last event.
func (c *fanChunk) end() uint64 { return c.first + uint64(len(c.offs)-1) }

// from returns the chunk's bytes from event seq on (seq within the chunk).
func (c *fanChunk) from(seq uint64) []byte { return c.data[c.offs[seq-c.first]:] }

type fanKey struct {
	world  string
	linger time.Duration
}

// eventFans holds the fans of a Server; its zero value is ready.
type eventFans struct {
	mu    sync.Mutex
	fans  map[fanKey]*eventFan
	queue int // a stream's queue of chunks; 0: fanQueue (tests lower it)
}

// eventFan feeds the streams of one world and linger.
type eventFan struct {
	key    fanKey
	cancel context.CancelFunc
	subs   map[*fanSub]struct{} // under eventFans.mu
	pos    uint64               // seq of the next event the fan hands out; under eventFans.mu
}

// fanSub is one stream's attachment to a fan.
type fanSub struct {
	fan *eventFan
	ch  chan *fanChunk // closed when detached or the fan ends
}

// attachFan attaches a stream whose next event is next to the fan of key,
// starting the fan at next if there is none. It returns the seq of the
// next event the fan hands out: the stream gets every chunk from there on,
// and must write the events before it from its own subscription (the fan
// may have handed them out before the stream attached). The caller holds a
// s.streams slot (the fan takes one of its own).
func (s *Server) attachFan(key fanKey, next uint64) (*fanSub, uint64) {
	fs := &s.fans
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.fans[key]
	if f == nil {
		ctx, cancel := context.WithCancel(s.closing)
		f = &eventFan{key: key, cancel: cancel, subs: make(map[*fanSub]struct{}), pos: next}
		if fs.fans == nil {
			fs.fans = make(map[fanKey]*eventFan)
		}
		fs.fans[key] = f
		s.streams.Add(1)
		// Subscribed here, at next, not in the goroutine: an event
		// published in between would reach no stream until the next one.
		sub, err := s.b.Subscribe(key.world, next)
		go s.runFan(ctx, f, sub, err)
	}
	q := fs.queue
	if q == 0 {
		q = fanQueue
	}
	sub := &fanSub{fan: f, ch: make(chan *fanChunk, q)}
	f.subs[sub] = struct{}{}
	return sub, f.pos
}

// detachFan takes sub off its fan (if the fan has not done so already) and
// stops the fan when it was the last stream.
func (s *Server) detachFan(sub *fanSub) {
	fs := &s.fans
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := sub.fan
	if _, ok := f.subs[sub]; ok {
		delete(f.subs, sub)
		close(sub.ch)
	}
	if len(f.subs) == 0 {
		s.endFanLocked(f)
	}
}

// endFanLocked stops f and forgets it; its remaining streams see their
// channels closed.
func (s *Server) endFanLocked(f *eventFan) {
	f.cancel()
	if s.fans.fans[f.key] == f {
		delete(s.fans.fans, f.key)
	}
	for sub := range f.subs {
		delete(f.subs, sub)
		close(sub.ch)
	}
}

// runFan reads the world's new events and hands them out until ctx ends or
// the feed fails (the streams then read on from their own subscriptions,
// which report the failure).
func (s *Server) runFan(ctx context.Context, f *eventFan, sub *store.Subscription, err error) {
	defer s.streams.Done()
	defer func() {
		s.fans.mu.Lock()
		s.endFanLocked(f)
		s.fans.mu.Unlock()
	}()
	if err != nil {
		return
	}
	for {
		c, err := s.readChunk(ctx, sub)
		if err != nil {
			return
		}
		s.fans.mu.Lock()
		f.pos = c.end()
		for st := range f.subs {
			select {
			case st.ch <- c:
			default: // too slow: it catches up on its own
				delete(f.subs, st)
				close(st.ch)
				s.metrics.streamDetaches.Inc()
			}
		}
		s.fans.mu.Unlock()
		if f.key.linger > 0 {
			t := time.NewTimer(f.key.linger)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// done is a context that is always done: Next with it returns the events
// already waiting, or an error at once.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// readChunk waits for the next events of sub and returns them, with the
// others already waiting (up to fanReads reads), as one chunk.
func (s *Server) readChunk(ctx context.Context, sub *store.Subscription) (*fanChunk, error) {
	evs, err := sub.Next(ctx)
	if err != nil {
		return nil, err
	}
	c := &fanChunk{first: evs[0].Seq}
	for i := 0; ; i++ {
		for _, ev := range evs {
			line, err := s.wire.line(ev)
			if err != nil {
				return nil, err
			}
			c.offs = append(c.offs, len(c.data))
			c.data = append(c.data, line...)
		}
		if i+1 == fanReads {
			break
		}
		if evs, err = sub.Next(done); err != nil {
			break // nothing more waiting (or a failure the next read sees)
		}
	}
	c.offs = append(c.offs, len(c.data))
	return c, nil
}
