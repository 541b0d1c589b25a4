package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// The play fan-out (docs/ARCHITECTURE.md, "Player edge"): one hub per
// world on this node reads the world's events once, prepares each once
// (its JSON for events frames, its coalescable bulk changes, the entities
// it touches) and offers them to every connection attached to it. An offer
// never blocks: a connection's outbox queues critical events (bounded by
// PlayConfig.QueueSize frames), merges bulk changes into a pending delta
// (latest value per entity/field) that the hub's tick flushes, and drops
// what lies outside the player's area of interest. A connection whose
// queue is full is detached: its pusher goroutine reads on from its own
// subscription, waiting for room at most SlowTimeout (then 4429), and
// attaches again once it has caught up with the hub. A connection that
// resumes from an older position catches up the same way first. With
// interest off, all the connections want the same stream: the hub runs it
// once in an outbox of its own and queues the same frames on every
// connection that joined it (see hub).

// InterestConfig turns on interest management for play connections: a
// connection receives an event only when it touches the player's own
// entity (the entity whose id is the player id), an entity of the
// player's team, an entity without a position (global), or an entity in a
// grid cell within Radius cells of the player's. Positions and teams come
// from the world's authoritative state, never from the client.
type InterestConfig struct {
	// Cell is the grid cell size in position units; 0 turns the grid off.
	Cell float64
	// X and Y name the numeric position fields (with Cell > 0).
	X, Y string
	// Radius is how many cells around the player's count as near.
	Radius int
	// Team names the team field; "" turns team interest off.
	Team string
}

// enabled reports whether any interest filter is on.
func (c InterestConfig) enabled() bool { return c.Cell > 0 || c.Team != "" }

// Validate checks the config.
func (c InterestConfig) Validate() error {
	switch {
	case c.Cell < 0 || math.IsNaN(c.Cell) || math.IsInf(c.Cell, 0):
		return fmt.Errorf("interest cell must be a finite number >= 0, not %v", c.Cell)
	case c.Cell > 0 && (c.X == "" || c.Y == ""):
		return fmt.Errorf("interest with a grid needs the X and Y field names")
	case c.Radius < 0:
		return fmt.Errorf("interest radius must be >= 0, not %d", c.Radius)
	}
	return nil
}

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

// hubEvent is one committed event, prepared once for all connections.
type hubEvent struct {
	ev       *fsm.Event
	frame    []byte        // its JSON for an events frame; nil: it coalesces
	delta    []deltaChange // applied bulk changes to coalesce
	entities []string      // the entities it touches, once each

	// Its msgpack for gsd.msgpack.v1 events frames, encoded the first
	// time a connection of that subprotocol takes it (ws_codec.go).
	wire   *wireCache
	mpOnce sync.Once
	mp     []byte
	mpErr  error
}

// msgpack returns the event's msgpack for gsd.msgpack.v1 events frames,
// encoded once for all the connections that take it (its JSON is frame).
func (he *hubEvent) msgpack() ([]byte, error) {
	he.mpOnce.Do(func() { he.mp, he.mpErr = he.wire.msgpack(he.ev) })
	return he.mp, he.mpErr
}

// deltaChange is one coalescable change: a field's latest value, or an
// entity's delete (field "").
type deltaChange struct {
	entity, field string
	version       uint64
	value         []byte // JSON
	v             fsm.Value
}

// prepare turns events into hubEvents. Critical events, and bulk ones that
// do not reduce to latest values (set-policy adds and removes), go as
// events; applied bulk changes coalesce; other bulk outcomes (conflicts,
// rejections) concern only their player, who has the result.
func (s *Server) prepare(evs []*fsm.Event, coalesce bool) ([]*hubEvent, error) {
	out := make([]*hubEvent, len(evs))
	for i, ev := range evs {
		he := &hubEvent{ev: ev, wire: s.wire}
		seen := make(map[string]bool, len(ev.Changes))
		for _, c := range ev.Changes {
			if !seen[c.Entity] {
				seen[c.Entity] = true
				he.entities = append(he.entities, c.Entity)
			}
		}
		if coalesce && ev.Priority == fsm.PriorityBulk && latestValues(ev) {
			if ev.Status == fsm.StatusApplied {
				he.delta = make([]deltaChange, len(ev.Changes))
				for j, c := range ev.Changes {
					v, _ := c.Value.MarshalJSON() // scalars: never fails
					he.delta[j] = deltaChange{entity: c.Entity, field: c.Field, version: c.Version, value: v, v: c.Value}
				}
			}
		} else {
			line, err := s.wire.line(ev)
			if err != nil {
				return nil, fmt.Errorf("%w: encode event %d: %v", errInternal, ev.Seq, err)
			}
			he.frame = line[:len(line)-1] // without the newline
		}
		out[i] = he
	}
	return out, nil
}

// latestValues reports whether every change of ev is a field's resulting
// value or an entity delete, so the latest one stands for all before it.
func latestValues(ev *fsm.Event) bool {
	for _, c := range ev.Changes {
		if c.Op == fsm.OpAdd || c.Op == fsm.OpRemove || len(c.Set) > 0 {
			return false
		}
	}
	return true
}

// outbox is one connection's outbound events: critical frames in order,
// bulk changes coalesced, and the position up to which the world's events
// were handled (queued, merged or filtered out).
type outbox struct {
	limit int
	codec playCodec

	mu        sync.Mutex
	pos       uint64      // every event up to pos is queued, merged or filtered
	frames    []*outFrame // events frames, oldest first
	open      *outFrame   // the frame the current offer appends to
	delta     map[string]*entityDelta
	deltaFrom uint64 // lowest seq merged into delta (0: none pending)
	due       bool   // the tick asked for a delta (or a progress) frame
	tick      uint64
	written   uint64 // covered seq of the last frame taken by the writer
	deltas    int    // delta frames queued since the writer last took

	signal chan struct{} // the writer has work
	room   chan struct{} // the writer took frames
}

// outFrame is one queued frame: an events frame, a delta sealed when the
// connection joined the hub's shared stream, or a frame of that stream.
type outFrame struct {
	covered uint64
	events  []*hubEvent

	isDelta bool // a delta frame of delta (nil: a progress frame) at tick
	tick    uint64
	delta   map[string]*entityDelta

	shared *sharedFrame // a frame of the hub's shared stream
}

// encode writes f in codec k as a frame beginning at from.
func (f *outFrame) encode(k playCodec, from uint64) ([]byte, error) {
	switch {
	case f.shared != nil:
		return f.shared.encode(k, from)
	case f.isDelta:
		return encodeDeltaFrame(k, from, f.covered, f.tick, f.delta), nil
	}
	return encodeEvents(k, from, f)
}

// sharedFrame is a frame of the hub's shared stream (interest off): made
// once for all the shared members, and encoded once per codec for those
// whose previous frame ends where it begins (all of them but one that has
// just joined).
type sharedFrame struct {
	from uint64
	body outFrame  // its content
	item *outFrame // what the members queue: {covered, shared}
	enc  [2]struct {
		once sync.Once
		b    []byte
		err  error
	}
}

func newSharedFrame(from uint64, body *outFrame) *sharedFrame {
	sf := &sharedFrame{from: from, body: *body}
	sf.item = &outFrame{covered: body.covered, shared: sf}
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

type entityDelta struct {
	deleted uint64 // version of a delete in this delta (0: none)
	fields  map[string]fieldDelta
}

type fieldDelta struct {
	version uint64
	value   []byte // JSON
	v       fsm.Value
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
						wake(o.signal)
					}
					return n
				}
				o.open = &outFrame{}
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
		wake(o.signal)
	}
	return n
}

// merge folds a bulk event's changes into the pending delta.
func (o *outbox) merge(he *hubEvent) {
	if o.delta == nil {
		o.delta = make(map[string]*entityDelta)
		o.deltaFrom = he.ev.Seq
	}
	for _, c := range he.delta {
		ed := o.delta[c.entity]
		if ed == nil {
			ed = &entityDelta{fields: make(map[string]fieldDelta)}
			o.delta[c.entity] = ed
		}
		if c.field == "" { // the entity was deleted: its earlier fields are gone
			ed.deleted = c.version
			clear(ed.fields)
			continue
		}
		if f, ok := ed.fields[c.field]; !ok || c.version >= f.version {
			ed.fields[c.field] = fieldDelta{version: c.version, value: c.value, v: c.v}
		}
	}
}

// onTick asks the writer for the pending delta, or every progressTicks
// for a progress frame when only filtered events moved the position.
func (o *outbox) onTick(tick uint64) {
	o.mu.Lock()
	o.tick = tick
	if o.delta != nil || (tick%progressTicks == 0 && o.pos > o.written && len(o.frames) == 0) {
		o.due = true
		o.mu.Unlock()
		wake(o.signal)
		return
	}
	o.mu.Unlock()
}

// take returns the encoded frames for the writer, in order: the queued
// events frames, then the delta if a tick asked for it.
func (o *outbox) take() ([][]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([][]byte, 0, len(o.frames)+1)
	for _, f := range o.frames {
		b, err := f.encode(o.codec, o.written+1)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		o.written = max(o.written, f.covered)
	}
	clear(o.frames)
	o.frames = o.frames[:0]
	o.deltas = 0
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
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*sharedFrame
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
func (o *outbox) pending() (pos uint64, d map[string]*entityDelta, from uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.delta != nil {
		d = make(map[string]*entityDelta, len(o.delta))
		for id, ed := range o.delta {
			d[id] = &entityDelta{deleted: ed.deleted, fields: maps.Clone(ed.fields)}
		}
	}
	return o.pos, d, o.deltaFrom
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
	o.pos = pos
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
		wake(o.signal)
	}
	return true
}

// resume makes the connection go on alone after leaving the shared
// stream: from the stream's position, with its pending delta.
func (o *outbox) resume(pos uint64, d map[string]*entityDelta, from uint64) {
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

// encodeEvents writes {"type":"events","from":F,"seq":S,"events":[...]}
// (a wire.Events) in codec k, from each event's encoding made once.
func encodeEvents(k playCodec, from uint64, f *outFrame) ([]byte, error) {
	if k == codecMsgpack {
		return encodeEventsMsgpack(from, f)
	}
	n := 64
	for _, he := range f.events {
		n += len(he.frame) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"events","from":`...)
	b = strconv.AppendUint(b, from, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, f.covered, 10)
	b = append(b, `,"events":[`...)
	for i, he := range f.events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, he.frame...)
	}
	return append(b, "]}"...), nil
}

// encodeDeltaFrame writes a delta frame in codec k.
func encodeDeltaFrame(k playCodec, from, seq, tick uint64, d map[string]*entityDelta) []byte {
	if k == codecMsgpack {
		return encodeDeltaMsgpack(from, seq, tick, d)
	}
	return encodeDelta(from, seq, tick, d)
}

// encodeDelta writes {"type":"delta","from":F,"seq":S,"tick":N,"entities":
// {"e":{"deleted":V,"fields":{"f":{"value":X,"version":V}}}}} (entities are
// wire.DeltaEntity), entities and fields sorted.
func encodeDelta(from, seq, tick uint64, d map[string]*entityDelta) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"delta","from":`)
	b.WriteString(strconv.FormatUint(from, 10))
	b.WriteString(`,"seq":`)
	b.WriteString(strconv.FormatUint(seq, 10))
	b.WriteString(`,"tick":`)
	b.WriteString(strconv.FormatUint(tick, 10))
	b.WriteString(`,"entities":{`)
	ids := make([]string, 0, len(d))
	for id := range d {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, id)
		b.WriteString(`:{`)
		ed := d[id]
		if ed.deleted != 0 {
			b.WriteString(`"deleted":`)
			b.WriteString(strconv.FormatUint(ed.deleted, 10))
			b.WriteByte(',')
		}
		b.WriteString(`"fields":{`)
		names := make([]string, 0, len(ed.fields))
		for f := range ed.fields {
			names = append(names, f)
		}
		sort.Strings(names)
		for j, f := range names {
			if j > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, f)
			b.WriteString(`:{"value":`)
			b.Write(ed.fields[f].value)
			b.WriteString(`,"version":`)
			b.WriteString(strconv.FormatUint(ed.fields[f].version, 10))
			b.WriteByte('}')
		}
		b.WriteString("}}")
	}
	b.WriteString("}}")
	return b.Bytes()
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string: never fails
	b.Write(q)
}

// member is how a connection of a hub gets its events.
type member uint8

const (
	memberDetached member = iota // from its own subscription (catching up)
	memberAttached               // from the hub, through its own outbox's offers
	memberShared                 // from the hub's shared stream
)

// hub fans one world's events out to this node's play connections. With
// interest off every connection gets the same stream: the hub runs it
// once, in its own outbox (shared), and queues the same frames, encoded
// once per codec, on every shared member. An attached member joins the
// shared stream at the first tick that finds it at the stream's position;
// one that finds its queue full leaves it (detached) with a copy of the
// stream's pending delta. With interest on, every attached member gets its
// own offers.
type hub struct {
	s      *Server
	world  string
	idx    *interestIndex // nil: interest off
	shared *outbox        // the shared stream (nil: interest on)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	next    uint64 // events before next were offered to the attached
	members map[*playConn]member
	err     error // the hub's subscription failed
	ticks   uint64
}

// joinHub registers c with its world's hub, starting one if needed.
func (s *Server) joinHub(c *playConn) (*hub, error) {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	h := s.hubs[c.world]
	if h == nil || h.failed() {
		var err error
		if h, err = s.startHub(c.world); err != nil {
			return nil, err
		}
		if s.hubs == nil {
			s.hubs = make(map[string]*hub)
		}
		s.hubs[c.world] = h
	}
	h.mu.Lock()
	h.members[c] = memberDetached
	h.mu.Unlock()
	return h, nil
}

// leaveHub unregisters c; the last member stops the hub.
func (s *Server) leaveHub(h *hub, c *playConn) {
	s.hubMu.Lock()
	h.mu.Lock()
	delete(h.members, c)
	last := len(h.members) == 0
	h.mu.Unlock()
	if last && s.hubs[h.world] == h {
		delete(s.hubs, h.world)
	}
	s.hubMu.Unlock()
	if last {
		h.cancel()
		h.wg.Wait()
	}
}

// hubCount returns the running hubs (for tests and metrics).
func (s *Server) hubCount() int {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	return len(s.hubs)
}

func (s *Server) startHub(world string) (*hub, error) {
	seq, err := s.worldSeq(world)
	if err != nil {
		return nil, err
	}
	sub, err := s.b.Subscribe(world, seq+1)
	if err != nil {
		return nil, err
	}
	h := s.newHub(world, seq)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Add(2)
	go h.run(sub)
	go h.ticker()
	return h, nil
}

// newHub returns world's hub, before it runs, at the world's seq.
func (s *Server) newHub(world string, seq uint64) *hub {
	h := &hub{s: s, world: world, next: seq + 1, members: make(map[*playConn]member)}
	if s.cfg.Play.Interest.enabled() {
		h.idx = newInterestIndex(s.cfg.Play.Interest, func(id string) (fsm.EntityView, error) {
			return s.b.Entity(context.Background(), world, id, store.Stale)
		})
	} else {
		h.shared = newOutbox(math.MaxInt, codecJSON)
		h.shared.start(seq)
	}
	return h
}

// worldSeq returns world's seq in this node's applied state.
func (s *Server) worldSeq(world string) (uint64, error) {
	for _, w := range s.b.Worlds() {
		if w.ID == world {
			return w.Seq, nil
		}
	}
	return 0, fmt.Errorf("%w: world %s", fsm.ErrUnknownWorld, world)
}

func (h *hub) failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err != nil
}

// run reads the world's events and offers them to the attached members.
func (h *hub) run(sub *store.Subscription) {
	defer h.wg.Done()
	for {
		evs, err := sub.Next(h.ctx)
		if h.ctx.Err() != nil {
			return
		}
		var hevs []*hubEvent
		if err == nil {
			hevs, err = h.s.prepare(evs, h.s.cfg.Play.CoalesceBulk)
		}
		if err != nil {
			h.mu.Lock()
			h.err = err
			for c := range h.members {
				c.fail(err)
			}
			h.mu.Unlock()
			return
		}
		h.fanout(evs, hevs)
	}
}

// fanout offers one batch of events, prepared as hevs, to the shared
// stream and the attached members.
func (h *hub) fanout(evs []*fsm.Event, hevs []*hubEvent) {
	if h.idx != nil {
		h.idx.update(evs)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shared != nil {
		h.fanShared(hevs)
	}
	for c, m := range h.members {
		if m == memberAttached && c.ob.offer(hevs, h.wants(c)) < len(hevs) {
			// Its queue is full: it reads on by itself, and the hub
			// never waits for it.
			h.detach(c)
		}
	}
	h.next = evs[len(evs)-1].Seq + 1
}

// detach leaves c to read on by itself.
func (h *hub) detach(c *playConn) {
	h.members[c] = memberDetached
	h.s.playMetrics.detaches.Inc()
	wake(c.detached)
}

// fanShared runs hevs through the shared stream and queues the frames it
// makes on every shared member.
func (h *hub) fanShared(hevs []*hubEvent) {
	pos := h.shared.position()
	for _, he := range hevs {
		if he.frame != nil && he.ev.Seq > pos {
			// It makes a frame: who has no room for it leaves first.
			h.leaveBehind(false)
			break
		}
	}
	h.shared.offer(hevs, nil)
	h.pushShared(h.shared.takeShared()...)
}

// pushShared queues frames of the shared stream on every shared member.
func (h *hub) pushShared(sfs ...*sharedFrame) {
	sfs = slices.DeleteFunc(sfs, func(sf *sharedFrame) bool { return sf == nil })
	if len(sfs) == 0 {
		return
	}
	pos := h.shared.position()
	for c, m := range h.members {
		if m == memberShared {
			for _, sf := range sfs {
				c.ob.push(sf.item, pos)
			}
		}
	}
}

// leaveBehind detaches the shared members whose queue is full, or which
// are sharedLagDeltas behind before a delta frame, before the stream's next
// frame: each goes on alone from the stream's position, with a copy of its
// pending delta.
func (h *hub) leaveBehind(delta bool) {
	for c, m := range h.members {
		if m == memberShared && c.ob.behind(delta) {
			c.ob.resume(h.shared.pending())
			h.detach(c)
		}
	}
}

// ticker flushes the members' coalesced changes every TickInterval.
func (h *hub) ticker() {
	defer h.wg.Done()
	t := time.NewTicker(h.s.cfg.Play.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
			h.tick()
		}
	}
}

// tick flushes the shared stream's pending delta to the shared members,
// lets the attached members at the stream's position join it, and asks
// every other member for its pending delta.
func (h *hub) tick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ticks++
	var pos uint64
	if h.shared != nil {
		h.shared.onTick(h.ticks)
		if h.shared.dueDelta() {
			h.leaveBehind(true)
		}
		h.pushShared(h.shared.takeSharedDelta())
		pos = h.shared.position()
	}
	for c, m := range h.members {
		switch {
		case m == memberShared:
		case m == memberAttached && h.shared != nil && c.ob.join(h.ticks, pos):
			h.members[c] = memberShared
		default:
			c.ob.onTick(h.ticks)
		}
	}
}

// attach makes c an attached member if it has caught up with the hub.
func (h *hub) attach(c *playConn) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return false, h.err
	}
	if c.ob.position()+1 < h.next {
		return false, nil
	}
	h.members[c] = memberAttached
	return true, nil
}

// wants returns c's interest filter (nil: everything).
func (h *hub) wants(c *playConn) func(*hubEvent) bool {
	if h.idx == nil {
		return nil
	}
	return func(he *hubEvent) bool { return h.idx.wants(c.player, he) }
}

// pusher feeds c's outbox: from its own subscription until it has caught
// up with the hub, then from the hub; again from its own subscription
// whenever the hub detaches it.
func (c *playConn) pusher(sub *store.Subscription) {
	defer c.wg.Done()
	h, err := c.s.joinHub(c)
	if err != nil {
		c.fail(err)
		return
	}
	defer c.s.leaveHub(h, c)
	for {
		for {
			ok, err := h.attach(c)
			if err != nil {
				c.fail(err)
				return
			}
			if ok {
				break
			}
			evs, err := sub.Next(c.ctx)
			if c.ctx.Err() != nil {
				return
			}
			var hevs []*hubEvent
			if err == nil {
				hevs, err = c.s.prepare(evs, c.cfg.CoalesceBulk)
			}
			if err != nil {
				c.fail(err)
				return
			}
			if !c.offerWait(hevs, h.wants(c)) {
				return
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.detached:
		}
		if sub, err = c.s.b.Subscribe(c.world, c.ob.position()+1); err != nil {
			c.fail(err)
			return
		}
	}
}

// offerWait offers evs, waiting for room in the queue; a queue that stays
// full for SlowTimeout cuts the connection off (4429).
func (c *playConn) offerWait(evs []*hubEvent, want func(*hubEvent) bool) bool {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		evs = evs[c.ob.offer(evs, want):]
		if len(evs) == 0 {
			return true
		}
		if t == nil {
			t = time.NewTimer(c.cfg.SlowTimeout)
		}
		select {
		case <-c.ob.room:
			t.Reset(c.cfg.SlowTimeout) // progress: the wait starts over (no stale fire since Go 1.23)
		case <-t.C:
			c.fail(fmt.Errorf("%w: outbound queue of %d frames full for %s", errSlowConsumer, c.cfg.QueueSize, c.cfg.SlowTimeout))
			return false
		case <-c.ctx.Done():
			return false
		}
	}
}

// interestIndex keeps, per entity, its grid cell and team, from the
// events the hub fans out; an entity it has not seen is looked up in this
// node's applied state once.
type interestIndex struct {
	cfg    InterestConfig
	lookup func(id string) (fsm.EntityView, error)

	mu   sync.RWMutex
	ents map[string]*entInterest
}

type entInterest struct {
	x, y       float64
	hasX, hasY bool
	team       string
}

func (e *entInterest) cell(size float64) (int64, int64, bool) {
	if size <= 0 || !e.hasX || !e.hasY {
		return 0, 0, false
	}
	return int64(math.Floor(e.x / size)), int64(math.Floor(e.y / size)), true
}

func newInterestIndex(cfg InterestConfig, lookup func(string) (fsm.EntityView, error)) *interestIndex {
	return &interestIndex{cfg: cfg, lookup: lookup, ents: make(map[string]*entInterest)}
}

func number(v fsm.Value) (float64, bool) {
	switch v.Kind {
	case fsm.KindInt:
		return float64(v.Int), true
	case fsm.KindFloat:
		return v.Float, true
	}
	return 0, false
}

// set records one field's value on e.
func (ix *interestIndex) set(e *entInterest, field string, v fsm.Value, exists bool) {
	switch field {
	case "":
		return
	case ix.cfg.Team:
		e.team = ""
		if exists && v.Kind == fsm.KindString {
			e.team = v.Str
		}
	}
	if ix.cfg.Cell <= 0 {
		return
	}
	switch field {
	case ix.cfg.X:
		e.x, e.hasX = number(v)
		e.hasX = e.hasX && exists
	case ix.cfg.Y:
		e.y, e.hasY = number(v)
		e.hasY = e.hasY && exists
	}
}

// update applies the applied events' changes to the index.
func (ix *interestIndex) update(evs []*fsm.Event) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, ev := range evs {
		if ev.Status != fsm.StatusApplied {
			continue
		}
		for _, c := range ev.Changes {
			if c.Field == "" { // deleted: it has no position or team any more
				ix.ents[c.Entity] = &entInterest{}
				continue
			}
			if c.Field != ix.cfg.Team && (ix.cfg.Cell <= 0 || c.Field != ix.cfg.X && c.Field != ix.cfg.Y) {
				continue
			}
			e := ix.ents[c.Entity]
			if e == nil {
				e = ix.seed(c.Entity)
				ix.ents[c.Entity] = e
			}
			ix.set(e, c.Field, c.Value, true)
		}
	}
}

// seed reads an entity's position and team from the applied state.
func (ix *interestIndex) seed(id string) *entInterest {
	e := &entInterest{}
	view, err := ix.lookup(id)
	if err != nil {
		return e // not there (yet): no position, no team
	}
	for _, f := range view.Fields {
		ix.set(e, f.Name, f.Value, true)
	}
	return e
}

// get returns an entity's record, seeding it when unknown.
func (ix *interestIndex) get(id string) entInterest {
	ix.mu.RLock()
	e := ix.ents[id]
	var v entInterest
	if e != nil {
		v = *e // copied under the lock: update mutates records in place
	}
	ix.mu.RUnlock()
	if e != nil {
		return v
	}
	seeded := ix.seed(id)
	ix.mu.Lock()
	if e = ix.ents[id]; e == nil { // an update may have come first
		e = seeded
		ix.ents[id] = e
	}
	v = *e
	ix.mu.Unlock()
	return v
}

// wants decides whether player receives he.
func (ix *interestIndex) wants(player string, he *hubEvent) bool {
	if he.ev.Player == player {
		return true
	}
	me := ix.get(player)
	mx, my, mePos := me.cell(ix.cfg.Cell)
	for _, id := range he.entities {
		if id == player {
			return true
		}
		e := ix.get(id)
		if ix.cfg.Team != "" && me.team != "" && e.team == me.team {
			return true
		}
		if ix.cfg.Cell <= 0 {
			if e.team == "" {
				return true // teams only: an entity without a team is global
			}
			continue
		}
		ex, ey, pos := e.cell(ix.cfg.Cell)
		if !pos {
			return true // global
		}
		r := int64(ix.cfg.Radius)
		if mePos && abs(ex-mx) <= r && abs(ey-my) <= r {
			return true
		}
	}
	return false
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
