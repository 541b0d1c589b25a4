package play

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A play connection's outbox: the hub offers it prepared events (never
// blocking), it queues critical ones as events frames, merges bulk changes
// into a pending delta that the hub's tick seals, and its writer (ws.go)
// takes the encoded frames. The hub's shared stream is an outbox too, whose
// frames (sharedFrame) are made once and queued on every shared member.
// The frames' bytes are written by frames.go.

// sharedLagDeltas: a member of a hub's shared stream whose writer has not
// taken this many of its delta frames (4 ticks, 200 ms by default) leaves
// the stream before the next one, so that its bulk changes coalesce in its
// own delta again rather than pile up one delta per tick. Not fewer: a
// member that leaves costs a subscription and its own merges until it
// joins again, which a briefly busy machine should not pay for every
// connection.
const sharedLagDeltas = 4

// progressTicks: a connection whose position moved over filtered events
// only is told so (an empty delta) every this many ticks, so its acks and
// resume point follow the world.
const progressTicks = 20

// outbox is one connection's outbound events: critical frames in order,
// bulk changes coalesced, and the position up to which the world's events
// were handled (queued, merged or filtered out).
type outbox struct {
	limit int
	codec playCodec

	mu        sync.Mutex
	pos       uint64        // every event up to pos is queued, merged or filtered
	frames    []*outFrame   // events frames, oldest first
	open      *outFrame     // the frame the current offer appends to
	delta     pendingDelta  // nil: none pending
	slab      []entityDelta // the next entities' memory (newEntityDelta)
	deltaFrom uint64        // lowest seq merged into delta (0: none pending)
	due       bool          // the tick asked for a delta (or a progress) frame
	tick      uint64
	written   uint64 // covered seq of the last frame taken by the writer
	deltas    int    // delta frames queued since the writer last took
	// lazy: frames were queued without waking the writer (the enter and
	// leave messages that bulk moves made): its next wake takes them,
	// the tick's at the latest (wakeLazy), so that they share a socket
	// write with the frames around them rather than make one of their own.
	lazy bool

	signal chan struct{} // the writer has work
	room   chan struct{} // the writer took frames

	// sent counts the events of the frames take returned (nil: not
	// counted), deltas aside: gsd_play_events_sent_total.
	sent prometheus.Counter
	// takenAt collects when the events frames take returned were queued;
	// only the writer's goroutine uses it (it resets it).
	takenAt []int64
}

// outFrame is one queued frame: an events frame, a delta sealed when the
// connection joined the hub's shared stream, or a frame of that stream.
type outFrame struct {
	covered uint64
	events  []*hubEvent
	at      int64 // unix ns it was queued (events frames): the write stage starts

	isDelta bool // a delta frame of delta (nil: a progress frame) at tick
	tick    uint64
	delta   pendingDelta

	shared *sharedFrame // a frame of the hub's shared stream

	msg *sharedMsg // an enter or leave message (enter.go): covers nothing
}

// encode writes f in codec k as a frame beginning at from.
func (f *outFrame) encode(k playCodec, from uint64) ([]byte, error) {
	switch {
	case f.msg != nil:
		return f.msg.encode(k)
	case f.shared != nil:
		return f.shared.encode(k, from)
	case f.isDelta:
		return encodeDeltaFrame(k, from, f.covered, f.tick, f.delta), nil
	}
	return encodeEvents(k, from, f)
}

// eventCount is how many events the frame carries (a delta: none).
func (f *outFrame) eventCount() int {
	if f.shared != nil {
		return len(f.shared.body.events)
	}
	return len(f.events)
}

// sharedFrame is a frame of the hub's shared stream (interest off): made
// once for all the shared members, and encoded once per codec for those
// whose previous frame ends where it begins (all of them but one that has
// just joined).
type sharedFrame struct {
	from uint64
	body outFrame  // its content
	item *outFrame // what the members queue: {covered, shared}

	itemFrame outFrame // item's memory
	enc       [2]struct {
		once sync.Once
		b    []byte
		err  error
	}
}

func newSharedFrame(from uint64, body *outFrame) *sharedFrame {
	sf := &sharedFrame{from: from, body: *body}
	sf.itemFrame = outFrame{covered: body.covered, shared: sf, at: body.at}
	sf.item = &sf.itemFrame // one allocation for both
	return sf
}

// encode returns the frame in codec k beginning at from: the bytes made
// once when from is the frame's own, else a copy of its own.
func (sf *sharedFrame) encode(k playCodec, from uint64) ([]byte, error) {
	if from != sf.from || int(k) >= len(sf.enc) {
		return sf.body.encode(k, from)
	}
	e := &sf.enc[k]
	e.once.Do(func() { e.b, e.err = sf.body.encode(k, from) })
	return e.b, e.err
}

func newOutbox(limit int, codec playCodec) *outbox {
	return &outbox{limit: limit, codec: codec, signal: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// start sets the position the connection begins after.
func (o *outbox) start(pos uint64) {
	o.mu.Lock()
	o.pos, o.written = pos, pos
	o.mu.Unlock()
}

func (o *outbox) position() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pos
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// offer handles evs in order and returns how many it took: it stops at a
// critical event that finds the queue full. want filters by interest (nil:
// everything).
func (o *outbox) offer(evs []*hubEvent, want func(*hubEvent) bool) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.open = nil
	queued := false
	n := 0
	for _, he := range evs {
		seq := he.ev.Seq
		if seq <= o.pos {
			n++
			continue
		}
		switch {
		case (he.frame == nil && len(he.delta) == 0) || (want != nil && !want(he)):
			// nothing for this connection
		case he.frame != nil:
			if o.open == nil {
				if len(o.frames) >= o.limit {
					if queued {
						o.lazy = false
						wake(o.signal)
					}
					return n
				}
				o.open = &outFrame{at: time.Now().UnixNano()}
				o.frames = append(o.frames, o.open)
			}
			o.open.events = append(o.open.events, he)
			queued = true
		default:
			o.merge(he)
		}
		o.pos = seq
		if o.open != nil {
			// Acking this frame's seq must not skip bulk changes still
			// pending: they come in a later delta frame.
			o.open.covered = o.pos
			if o.deltaFrom != 0 {
				o.open.covered = o.deltaFrom - 1
			}
		}
		n++
	}
	o.open = nil
	if queued {
		o.lazy = false
		wake(o.signal)
	}
	return n
}

// enter queues an enter message; false when the queue is full. A whole
// one drops the pending delta's changes of the entities it does not list
// (the client drops them: sent after it, they would bring them back).
// lazy: it does not wake the writer (see outbox.lazy).
func (o *outbox) enter(sm *sharedMsg, lazy bool) bool {
	msg := sm.enter
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.frames) >= o.limit {
		return false
	}
	if msg.Whole {
		o.delta.dropIf(func(id string) bool {
			_, listed := msg.Entities[id]
			return !listed
		})
	}
	o.queueMsg(sm, lazy)
	return true
}

// queueMsg queues an enter or leave message (o.mu held), waking the
// writer unless lazy.
func (o *outbox) queueMsg(sm *sharedMsg, lazy bool) {
	o.frames = append(o.frames, &outFrame{msg: sm})
	o.lazy = lazy
	if !lazy {
		wake(o.signal)
	}
}

// wakeLazy wakes the writer for frames queued lazily (the hub's tick).
func (o *outbox) wakeLazy() {
	o.mu.Lock()
	lazy := o.lazy && len(o.frames) > 0
	o.lazy = false
	o.mu.Unlock()
	if lazy {
		wake(o.signal)
	}
}

// leave queues a leave message and drops the pending delta's changes of
// the entities it names (sent after it, they would bring them back);
// false when the queue is full. lazy: as enter's.
func (o *outbox) leave(sm *sharedMsg, lazy bool) bool {
	msg := sm.leave
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.frames) >= o.limit {
		return false
	}
	for _, id := range msg.IDs {
		o.delta.drop(id)
	}
	o.queueMsg(sm, lazy)
	return true
}

// skip moves the position over events up to seq that the connection does
// not want (the hub offered it only those it wants).
func (o *outbox) skip(seq uint64) {
	o.mu.Lock()
	o.pos = max(o.pos, seq)
	o.mu.Unlock()
}

// merge folds a bulk event's changes into the pending delta.
func (o *outbox) merge(he *hubEvent) {
	if o.delta == nil {
		o.delta = make(pendingDelta, 0, 8)
		o.deltaFrom = he.ev.Seq
	}
	for i := range he.delta {
		c := &he.delta[i]
		ed := o.entityDelta(c.entity)
		if c.field == "" { // the entity was deleted: its earlier fields are gone
			ed.deleted = c.version
			clear(ed.fields)
			ed.fields = ed.fields[:0]
			continue
		}
		ed.set(c)
	}
}

// onTick asks the writer for the pending delta, or every progressTicks
// for a progress frame when only filtered events moved the position.
func (o *outbox) onTick(tick uint64) {
	o.mu.Lock()
	o.tick = tick
	if o.delta != nil || (tick%progressTicks == 0 && o.pos > o.written && len(o.frames) == 0) {
		o.due, o.lazy = true, false
		o.mu.Unlock()
		wake(o.signal)
		return
	}
	o.mu.Unlock()
}

// take returns the encoded frames for the writer, in order: the queued
// events frames, then the delta if a tick asked for it.
func (o *outbox) take() ([][]byte, error) {
	return o.takeAppend(nil)
}

// takeAppend is take appending to out[:0]: a writer that reuses its
// slice between takes allocates none per take.
func (o *outbox) takeAppend(out [][]byte) ([][]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out = out[:0]
	events := 0
	for _, f := range o.frames {
		b, err := f.encode(o.codec, o.written+1)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		o.written = max(o.written, f.covered)
		events += f.eventCount()
		if f.at != 0 {
			o.takenAt = append(o.takenAt, f.at)
		}
	}
	if o.sent != nil && events > 0 {
		o.sent.Add(float64(events))
	}
	clear(o.frames)
	o.frames = o.frames[:0]
	o.deltas, o.lazy = 0, false
	if o.due {
		out = append(out, encodeDeltaFrame(o.codec, o.written+1, o.pos, o.tick, o.delta))
		o.written = o.pos
		o.delta, o.deltaFrom, o.due = nil, 0, false
	}
	wake(o.room)
	return out, nil
}

// The hub's shared stream is an outbox too, whose writer is the hub:
// takeShared and takeSharedDelta turn what it queued into shared frames.
// A member joins the stream at a tick (join), and leaves it with a copy of
// the stream's pending delta (pending, resume).

// takeShared returns the events frames the stream's offers queued.
func (o *outbox) takeShared() []*sharedFrame {
	return o.takeSharedAppend(nil)
}

// takeSharedAppend is takeShared appending to out[:0] (a cell group's
// buffer, reused batch after batch).
func (o *outbox) takeSharedAppend(out []*sharedFrame) []*sharedFrame {
	o.mu.Lock()
	defer o.mu.Unlock()
	out = out[:0]
	for _, f := range o.frames {
		out = append(out, newSharedFrame(o.written+1, f))
		o.written = max(o.written, f.covered)
	}
	clear(o.frames)
	o.frames = o.frames[:0]
	return out
}

// dueDelta reports whether a tick asked for a delta (or progress) frame.
func (o *outbox) dueDelta() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.due
}

// takeSharedDelta returns the stream's delta frame if a tick asked for one.
func (o *outbox) takeSharedDelta() *sharedFrame {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.due {
		return nil
	}
	sf := newSharedFrame(o.written+1, &outFrame{isDelta: true, covered: o.pos, tick: o.tick, delta: o.delta})
	o.written = o.pos
	o.delta, o.deltaFrom, o.due = nil, 0, false
	return sf
}

// pending returns the stream's position and a copy of its pending delta.
func (o *outbox) pending() (pos uint64, d pendingDelta, from uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pos, o.delta.clone(), o.deltaFrom
}

// behind reports whether the queue has no room for another frame, or
// (delta) already holds sharedLagDeltas delta frames.
func (o *outbox) behind(delta bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.frames) >= o.limit || delta && o.deltas >= sharedLagDeltas
}

// push queues a frame of the shared stream, which has handled every event
// up to pos (the hub checked the room first).
func (o *outbox) push(f *outFrame, pos uint64) {
	o.mu.Lock()
	o.frames = append(o.frames, f)
	if f.shared.body.isDelta {
		o.deltas++
	}
	o.pos, o.lazy = pos, false
	o.mu.Unlock()
	wake(o.signal)
}

// join prepares the connection for the shared stream at a tick, after the
// stream's delta was taken: its position must be the stream's, pos, and
// its own pending delta (or a due progress frame) is sealed into its queue
// now, so that the stream's frames follow on.
func (o *outbox) join(tick, pos uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pos != pos || len(o.frames) >= o.limit {
		return false
	}
	if o.delta != nil || o.due {
		o.frames = append(o.frames, &outFrame{isDelta: true, covered: o.pos, tick: tick, delta: o.delta})
		o.delta, o.deltaFrom, o.due = nil, 0, false
		o.deltas++
		o.lazy = false
		wake(o.signal)
	}
	return true
}

// resume makes the connection go on alone after leaving the shared
// stream: from the stream's position, with its pending delta.
func (o *outbox) resume(pos uint64, d pendingDelta, from uint64) {
	o.mu.Lock()
	o.pos, o.delta, o.deltaFrom = pos, d, from
	o.mu.Unlock()
}

// coveredSeq is the highest seq the frames taken so far cover.
func (o *outbox) coveredSeq() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.written
}
