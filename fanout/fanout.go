package fanout

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// DefaultQueue is how many chunks a member may have waiting before it is
// detached (with a 100 ms linger: 25 s of events).
const DefaultQueue = 256

// DefaultReads bounds the feed reads joined into one chunk when a fan finds
// more events waiting after its linger.
const DefaultReads = 16

// Subscription reads one world's committed events in seq order from a
// position, as store.Subscription does.
type Subscription interface {
	// Next returns the next events (at least one), waiting for new ones
	// until ctx ends.
	Next(ctx context.Context) ([]*fsm.Event, error)
}

// SubscribeFunc opens a subscription to world's events from seq from on.
type SubscribeFunc func(world string, from uint64) (Subscription, error)

// Encoder appends the encoding of evs to data and, per event, the offset
// in data where that event's encoding starts to offs, and returns both. An
// event's bytes must not depend on the events around it: a member may take
// a chunk from any event on.
type Encoder func(data []byte, offs []int, evs []*fsm.Event) ([]byte, []int, error)

// Batch is what a fan hands its members for one window of events: made
// once by the fan, shared by every member, read-only. End is the seq
// after its last event.
type Batch interface {
	End() uint64
}

// Prepare makes a window's batch from its events (one or more, in seq
// order, without gaps).
type Prepare[T Batch] func(evs []*fsm.Event) (T, error)

// FansConfig configures Fans of batches T.
type FansConfig[T Batch] struct {
	// Subscribe opens the feed a fan reads (required).
	Subscribe SubscribeFunc
	// Prepare makes each window's batch (required).
	Prepare Prepare[T]
	// Queue is how many batches a member may have waiting before it is
	// detached.
	Queue int
	// Reads bounds the feed reads joined into one window.
	Reads int
	// OnDetach, when set, is called (under the lock of the Fans: keep it
	// short) each time a member is detached for being too slow.
	OnDetach func()
}

// Validate reports a config Fans cannot run with.
func (c FansConfig[T]) Validate() error {
	switch {
	case c.Subscribe == nil:
		return errors.New("fanout: nil Subscribe")
	case c.Prepare == nil:
		return errors.New("fanout: nil Prepare")
	case c.Queue < 1:
		return errors.New("fanout: Queue must be at least 1")
	case c.Reads < 1:
		return errors.New("fanout: Reads must be at least 1")
	}
	return nil
}

// Config configures a Hub, the fans of encoded chunks.
type Config struct {
	// Subscribe opens the feed a fan reads (required).
	Subscribe SubscribeFunc
	// Encode turns a window's events into a chunk's bytes (required).
	Encode Encoder
	// Queue is how many chunks a member may have waiting before it is
	// detached.
	Queue int
	// Reads bounds the feed reads joined into one chunk.
	Reads int
	// OnDetach, when set, is called (under the hub's lock: keep it short)
	// each time a member is detached for being too slow.
	OnDetach func()
}

// DefaultConfig returns a Config with the default bounds; Subscribe and
// Encode are left to the caller.
func DefaultConfig() Config {
	return Config{Queue: DefaultQueue, Reads: DefaultReads}
}

// Validate reports a Config a Hub cannot run with.
func (c Config) Validate() error {
	if c.Encode == nil {
		return errors.New("fanout: nil Encode")
	}
	return c.fans().Validate()
}

// fans is c as the config of Fans of chunks.
func (c Config) fans() FansConfig[*Chunk] {
	fc := FansConfig[*Chunk]{Subscribe: c.Subscribe, Queue: c.Queue, Reads: c.Reads, OnDetach: c.OnDetach}
	if enc := c.Encode; enc != nil {
		fc.Prepare = func(evs []*fsm.Event) (*Chunk, error) { return NewChunk(enc, evs[0].Seq, evs) }
	}
	return fc
}

// Key names a fan: members with the same world and linger share one.
type Key struct {
	World string
	// Linger is how long the fan waits after handing out a chunk before it
	// reads again, so that one chunk carries a window's events.
	Linger time.Duration
}

// Chunk is one window's events, encoded: event First()+i's bytes are
// data[offs[i]:offs[i+1]]. Shared by all members: read-only.
type Chunk struct {
	first uint64
	offs  []int
	data  []byte
	rules []rulesMark // its rules updates' events (RulesUpdate), in seq order
}

// rulesMark is a rules update's event in a chunk: its seq and the rules
// version it starts.
type rulesMark struct{ seq, version uint64 }

// NewChunk returns the chunk of the events from seq first on, encoded by
// enc.
func NewChunk(enc Encoder, first uint64, evs []*fsm.Event) (*Chunk, error) {
	c := &Chunk{first: first}
	var err error
	if c.data, c.offs, err = enc(nil, nil, evs); err != nil {
		return nil, err
	}
	c.offs = append(c.offs, len(c.data))
	for _, ev := range evs {
		if n := ev.Notice; n != nil && n.Kind == fsm.NoticeRules {
			c.rules = append(c.rules, rulesMark{ev.Seq, n.RulesVersion})
		}
	}
	return c, nil
}

// RulesUpdate returns the first rules update's event in the chunk from
// seq from on (a notice of kind fsm.NoticeRules, log version 12): its seq
// and the rules version it starts. A reader that cuts by rules writes
// the chunk up to it (Span) and switches rules there.
func (c *Chunk) RulesUpdate(from uint64) (seq, version uint64, ok bool) {
	for _, m := range c.rules {
		if m.seq >= from {
			return m.seq, m.version, true
		}
	}
	return 0, 0, false
}

// Span returns the chunk's bytes of the events from seq from to before
// seq end; both must lie within [First, End].
func (c *Chunk) Span(from, end uint64) []byte {
	return c.data[c.offs[from-c.first]:c.offs[end-c.first]]
}

// First returns the seq of the chunk's first event.
func (c *Chunk) First() uint64 { return c.first }

// End returns the seq after the chunk's last event.
func (c *Chunk) End() uint64 { return c.first + uint64(len(c.offs)-1) }

// From returns the chunk's bytes from event seq on; seq must lie within
// [First, End).
func (c *Chunk) From(seq uint64) []byte { return c.data[c.offs[seq-c.first]:] }

// Hub holds the fans of encoded chunks of one kind of stream on a node
// (one encoding).
type Hub = Fans[*Chunk]

// Member is one stream's attachment to a fan of chunks.
type Member = Attached[*Chunk]

// New returns a Hub; it starts no goroutine until a member attaches.
func New(cfg Config) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return NewFans(cfg.fans())
}

// Fans holds the fans of one kind of member on a node: a fan per Key,
// started by its first member and stopped by its last, reads its world's
// feed once and hands every member the same batch of each window. Close
// stops them all.
type Fans[T Batch] struct {
	cfg    FansConfig[T]
	ctx    context.Context // cancelled by Close; every fan's parent
	cancel context.CancelFunc
	wg     sync.WaitGroup // the fans' goroutines

	mu   sync.Mutex
	fans map[Key]*fan[T]
}

// NewFans returns Fans; they start no goroutine until a member attaches.
func NewFans[T Batch](cfg FansConfig[T]) (*Fans[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Fans[T]{cfg: cfg, fans: make(map[Key]*fan[T])}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// fan feeds the members of one Key.
type fan[T Batch] struct {
	key    Key
	cancel context.CancelFunc
	subs   map[*Attached[T]]struct{} // under Fans.mu
	pos    uint64                    // seq of the next event the fan hands out; under Fans.mu
}

// Attached is one member's attachment to a fan.
type Attached[T Batch] struct {
	fan *fan[T]
	ch  chan T // closed when detached or the fan ends
}

// Chunks returns the member's batches, in seq order, without gaps between
// them; it is closed when the member is detached (too slow), the fan ends
// (its feed failed, or the Fans closed) or Detach is called.
func (m *Attached[T]) Chunks() <-chan T { return m.ch }

// Attach attaches a member whose next event is next to the fan of key,
// starting the fan at next if there is none. It returns the seq of the next
// event the fan hands out: the member gets every chunk from there on, and
// must take the events before it from its own subscription (the fan may
// have handed them out before the member attached). Every Attach is paired
// with a Detach. After Close the member's channel is closed at once.
func (h *Fans[T]) Attach(key Key, next uint64) (*Attached[T], uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		m := &Attached[T]{fan: &fan[T]{subs: map[*Attached[T]]struct{}{}}, ch: make(chan T)}
		close(m.ch)
		return m, next
	}
	f := h.fans[key]
	if f == nil {
		ctx, cancel := context.WithCancel(h.ctx)
		f = &fan[T]{key: key, cancel: cancel, subs: make(map[*Attached[T]]struct{}), pos: next}
		h.fans[key] = f
		h.wg.Add(1)
		// Subscribed here, at next, not in the goroutine: an event
		// published in between would reach no member until the next one.
		sub, err := h.cfg.Subscribe(key.World, next)
		go h.run(ctx, f, sub, err)
	}
	m := &Attached[T]{fan: f, ch: make(chan T, h.cfg.Queue)}
	f.subs[m] = struct{}{}
	return m, f.pos
}

// Detach takes m off its fan (if the fan has not done so already) and stops
// the fan when m was its last member.
func (h *Fans[T]) Detach(m *Attached[T]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := m.fan
	if _, ok := f.subs[m]; ok {
		delete(f.subs, m)
		close(m.ch)
	}
	if len(f.subs) == 0 && f.cancel != nil {
		h.endLocked(f)
	}
}

// Close stops every fan (their members see their channels closed) and
// waits for the fans' goroutines to return.
func (h *Fans[T]) Close() {
	h.mu.Lock()
	h.cancel()
	for _, f := range h.fans {
		h.endLocked(f)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// Members returns how many fans serve world and how many members they feed
// in all.
func (h *Fans[T]) Members(world string) (fans, members int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, f := range h.fans {
		if k.World == world {
			fans++
			members += len(f.subs)
		}
	}
	return fans, members
}

// endLocked stops f and forgets it; its remaining members see their
// channels closed.
func (h *Fans[T]) endLocked(f *fan[T]) {
	f.cancel()
	if h.fans[f.key] == f {
		delete(h.fans, f.key)
	}
	for m := range f.subs {
		delete(f.subs, m)
		close(m.ch)
	}
}

// run reads the world's new events and hands them out until ctx ends or the
// feed fails (the members then read on from their own subscriptions, which
// report the failure).
func (h *Fans[T]) run(ctx context.Context, f *fan[T], sub Subscription, err error) {
	defer h.wg.Done()
	defer func() {
		h.mu.Lock()
		h.endLocked(f)
		h.mu.Unlock()
	}()
	if err != nil {
		return
	}
	for {
		c, err := h.read(ctx, sub)
		if err != nil {
			return
		}
		h.mu.Lock()
		f.pos = c.End()
		for m := range f.subs {
			select {
			case m.ch <- c:
			default: // too slow: it catches up on its own
				delete(f.subs, m)
				close(m.ch)
				if h.cfg.OnDetach != nil {
					h.cfg.OnDetach()
				}
			}
		}
		h.mu.Unlock()
		if f.key.Linger > 0 {
			t := time.NewTimer(f.key.Linger)
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

// read waits for the next events of sub and returns them, with the others
// already waiting (up to cfg.Reads reads), as one window's batch.
func (h *Fans[T]) read(ctx context.Context, sub Subscription) (T, error) {
	evs, err := sub.Next(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	for i := 1; i < h.cfg.Reads; i++ {
		more, err := sub.Next(done)
		if err != nil {
			break // nothing more waiting (or a failure the next read sees)
		}
		evs = append(evs[:len(evs):len(evs)], more...)
	}
	return h.cfg.Prepare(evs)
}
