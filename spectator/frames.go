package spectator

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Frame is one encoded watch frame (wire.Keyframe, wire.WatchDelta,
// wire.Events or wire.ViewFrame as JSON), shared by every viewer of a
// view: read-only. Its MessagePack form is made the first time a viewer
// asks for it, once for all.
type Frame struct {
	Type string // wire.TypeKeyframe, wire.TypeWatchDelta, wire.TypeEvents or wire.TypeView
	Seq  uint64 // the last seq it reflects
	Data []byte // JSON

	v         any        // the wire value, for Msgpack
	wire      func() any // or what makes it, when v is nil
	valueOnce sync.Once
	once      sync.Once
	msgpack   []byte
	err       error

	deflateOnce sync.Once // frames_codec.go
	deflated    []byte
	// without versions (frames_lean.go)
	leanOnce, leanDeflateOnce, leanMsgpackOnce sync.Once
	lean, leanDeflated, leanMsgpack            []byte
	leanMsgpackErr                             error
}

// Msgpack returns the frame in the binary codec of the play protocol
// (wire.MarshalMsgpack: the JSON form's keys, canonical bytes).
func (f *Frame) Msgpack() ([]byte, error) {
	f.once.Do(func() { f.msgpack, f.err = wire.MarshalMsgpack(f.value()) })
	return f.msgpack, f.err
}

// value returns the frame's wire value, made once when it is made late.
func (f *Frame) value() any {
	f.valueOnce.Do(func() {
		if f.v == nil && f.wire != nil {
			f.v = f.wire()
		}
	})
	return f.v
}

// Ticker coalesces the events of one tick into per-view deltas: it applies
// each event to the world's State and remembers which fields of which
// entities the tick touched and what each touched entity looked like when
// the tick began. At the tick's end Delta makes each view's delta from the
// state then, so a field changed many times in a tick is sent once, with
// its latest value (latest-value coalescing of moves). Not safe for
// concurrent use.
type Ticker struct {
	access *Access
	state  *State
	teamOf TeamFunc
	from   uint64   // first seq of the tick; 0: no event yet
	list   []*touch // the touched ones in the order touched
	// A touched entity's state leads to its touch (entState.touch), with
	// no search of the touched; byID holds the touches it cannot lead to:
	// of entities that did not exist when touched, or that the tick
	// deleted (a replay's tick touches thousands, rarely these).
	byID   map[string]*touch
	free   []*touch    // touches of past ticks, to use again
	lastID string      // the entity last touched in the tick
	last   *touch      // its touch, or nil
	keep   bool        // keep the tick's events, prepared for filtering
	events []*Prepared // the tick's events, when keep
}

// touch is what a tick did to one entity.
type touch struct {
	by *Ticker // whose
	id string
	// Its state when the tick began, if it existed and the tick did not
	// delete it: the state it has at the tick's end, found without a search.
	ent *entState
	// Its fields when the tick began (nil: it did not exist); with an
	// access that restricts nothing only whether it had any (startAny):
	// every view sees every field, so that is all entityDelta asks.
	start    []fieldVersion
	startAny bool
	startWho who
	gone     []fieldVersion // its fields when the tick last deleted it
	goneWho  who
	deleted  bool     // the tick deleted it (and maybe made it again)
	fields   fieldSet // fields changed since its last delete in the tick
}

// fieldSet is the names of the fields a tick changed of one entity: a
// slice, searched in order, while they are few (they are, but for a tick
// that writes many fields of one entity), and a map beside it beyond.
type fieldSet struct {
	names []string
	m     map[string]struct{}
}

// fieldSetMax is the most names a fieldSet searches in order.
const fieldSetMax = 16

func (fs *fieldSet) add(name string) {
	if fs.has(name) {
		return
	}
	fs.names = append(fs.names, name)
	switch {
	case fs.m != nil:
		fs.m[name] = struct{}{}
	case len(fs.names) > fieldSetMax:
		fs.m = make(map[string]struct{}, 2*len(fs.names))
		for _, n := range fs.names {
			fs.m[n] = struct{}{}
		}
	}
}

func (fs *fieldSet) has(name string) bool {
	if fs.m != nil {
		_, ok := fs.m[name]
		return ok
	}
	for _, n := range fs.names {
		if n == name {
			return true
		}
	}
	return false
}

// reset empties fs, keeping its slice's memory.
func (fs *fieldSet) reset() {
	clear(fs.names) // the strings may go
	fs.names, fs.m = fs.names[:0], nil
}

// NewTicker returns a ticker that keeps s under a.
func NewTicker(a *Access, s *State, teamOf TeamFunc) *Ticker {
	return &Ticker{access: a, state: s, teamOf: teamOf, byID: make(map[string]*touch)}
}

// State returns the state the ticker keeps.
func (t *Ticker) State() *State { return t.state }

// KeepEvents makes the ticker keep each tick's events, prepared for
// filtering, for Events.
func (t *Ticker) KeepEvents() { t.keep = true }

// Apply applies the next event to the state and records what it touched.
func (t *Ticker) Apply(ev *fsm.Event) error {
	applied := ev.Status == fsm.StatusApplied
	each := func(i int) {
		if !applied {
			return
		}
		c := &ev.Changes[i]
		tc := t.touch(c.Entity)
		if k := t.access.TeamField(); k != "" && (c.Field == k || c.Field == "") {
			// The entities c.Entity owns take its team: they may change
			// sight as a whole too.
			for id := range t.state.owned[c.Entity] {
				t.touch(id)
			}
		}
		if c.Field == "" {
			if _, ok := t.state.ents[c.Entity]; ok {
				tc.gone = t.state.appendFieldVersions(tc.gone[:0], c.Entity)
				tc.goneWho = t.state.who(t.access, t.teamOf, c.Entity)
				tc.deleted = true
				tc.fields.reset()
				t.byID[c.Entity] = tc // its state goes
			}
			return
		}
		tc.fields.add(c.Field)
	}
	if t.keep {
		p, err := prepareEvent(t.access, t.state, t.teamOf, ev, each)
		if err != nil {
			return err
		}
		t.events = append(t.events, p)
	} else if err := t.state.apply(ev, each); err != nil {
		return err
	}
	if t.from == 0 {
		t.from = ev.Seq
	}
	return nil
}

// touch returns what the tick did to an entity, recording how it was
// before the tick's first change to it. Touches are used again tick after
// tick (a replay touches thousands a second): their maps and slices keep
// their memory.
func (t *Ticker) touch(id string) *touch {
	if t.last != nil && t.lastID == id {
		return t.last
	}
	e := t.state.entity(id)
	tc := t.touched(id, e)
	if tc == nil {
		if n := len(t.free); n > 0 {
			tc, t.free = t.free[n-1], t.free[:n-1]
		} else {
			tc = &touch{by: t}
		}
		tc.id, tc.ent = id, e
		tc.startWho = t.state.whoOf(t.access, t.teamOf, id, e)
		if t.access.Restricted() {
			tc.start = t.state.appendFieldVersions(tc.start[:0], id)
		} else if e != nil {
			tc.startAny = len(e.fields) > 0
		}
		if e != nil {
			e.touch = tc
		} else {
			t.byID[id] = tc
		}
		t.list = append(t.list, tc)
	}
	t.lastID, t.last = id, tc
	return tc
}

// touched returns the tick's touch of entity id, whose state is e (nil:
// it does not exist), or nil. A touch leads back to the state it was made
// for (tc.ent), and a reset one to none, so a touch of a past tick or of
// another entity is never taken for this tick's.
func (t *Ticker) touched(id string, e *entState) *touch {
	if e != nil {
		if tc := e.touch; tc != nil && tc.ent == e && tc.by == t {
			return tc
		}
	}
	if len(t.byID) == 0 {
		return nil
	}
	return t.byID[id]
}

// touchedIDs yields the entities the tick touched.
func (t *Ticker) touchedIDs(yield func(string) bool) {
	for _, tc := range t.list {
		if !yield(tc.id) {
			return
		}
	}
}

// Pending reports whether events were applied since the last Reset.
func (t *Ticker) Pending() bool { return t.from != 0 }

// Reset starts the next tick.
func (t *Ticker) Reset() {
	t.from, t.last = 0, nil
	for _, tc := range t.list {
		tc.fields.reset()
		*tc = touch{by: t, start: tc.start[:0], gone: tc.gone[:0], fields: tc.fields}
		t.free = append(t.free, tc)
	}
	clear(t.list)
	t.list = t.list[:0]
	if len(t.byID) > 0 {
		clear(t.byID)
	}
	clear(t.events)
	t.events = t.events[:0]
}

// Events returns view's events frame for the tick (KeepEvents): each
// event as view may see it (Filter.Event), or nil when it may see none.
func (t *Ticker) Events(view View) *wire.Events {
	view = t.access.bound(view, t.state, t.teamOf)
	var evs []wire.Event
	for _, p := range t.events {
		if ev := filterEvent(t.access, p, view); ev != nil {
			evs = append(evs, ev.Wire())
		}
	}
	if len(evs) == 0 {
		return nil
	}
	return &wire.Events{Type: wire.TypeEvents, From: t.from, Seq: t.state.seq, Events: evs}
}

// Resync reports whether view's player changed team in the tick: what the
// view may see changed as a whole, so it wants a keyframe, not a delta.
func (t *Ticker) Resync(view View) bool {
	if view.player == "" || !t.access.anyTeam {
		return false
	}
	tc := t.touched(view.player, t.state.entity(view.player))
	return tc != nil && tc.startWho.team != t.state.who(t.access, t.teamOf, view.player).team
}

// Delta returns view's delta for the tick, or nil when the tick changed
// nothing the view may see.
func (t *Ticker) Delta(view View) *wire.WatchDelta {
	if d := t.tickDelta(view, false); d != nil {
		return d.wire() // a map: no need to sort
	}
	return nil
}

// tickDelta returns view's delta for the tick in slices (sorted for its
// JSON when sorted), or nil when the tick changed nothing the view may
// see.
func (t *Ticker) tickDelta(view View, sorted bool) *tickDelta {
	if t.from == 0 {
		return nil
	}
	view = t.access.bound(view, t.state, t.teamOf)
	// The fields it changed are the fields of most deltas (all but a
	// replaced entity's): room for them at once, not a grown copy (a
	// replay's delta holds thousands).
	nf := 8
	for _, tc := range t.list {
		nf += len(tc.fields.names)
	}
	d := &tickDelta{world: t.state.world, from: t.from, seq: t.state.seq, time: t.state.time,
		ents: make([]deltaEntity, 0, len(t.list)), fields: make([]deltaField, 0, nf)}
	for _, tc := range t.list {
		t.entityDelta(d, view, tc)
	}
	if len(d.ents) == 0 {
		return nil
	}
	if sorted {
		d.sort()
	}
	return d
}

// entityDelta appends view's delta of one touched entity to d, if the
// view may see a change of it.
func (t *Ticker) entityDelta(d *tickDelta, view View, tc *touch) {
	id := tc.id
	a := t.access
	sawIt := tc.startAny
	if a.Restricted() {
		_, sawIt = versionOf(a, view, tc.start, tc.startWho)
	}
	e := tc.ent
	if e == nil || tc.deleted {
		e = t.state.ents[id]
	}
	if e == nil { // gone at the tick's end
		if sawIt {
			v, _ := versionOf(a, view, tc.gone, tc.goneWho)
			d.ents = append(d.ents, deltaEntity{id: id, deleted: true, version: v, lo: len(d.fields), hi: len(d.fields)})
		}
		return
	}
	w := t.state.whoOf(a, t.teamOf, id, e)
	// A delete (then a new entity), or a change of owner or team, makes
	// the view's picture of the entity wrong as a whole: send all it may
	// see now.
	replace := tc.deleted || w != tc.startWho
	de := deltaEntity{id: id, replace: replace && sawIt, lo: len(d.fields)}
	if !replace && !a.Restricted() && t.state.quanta == nil {
		// Every field is visible: the changed ones and the entity's
		// version, without a look at the others; in name order (the
		// JSON's), so that the delta need not sort them: a walk of the
		// entity's fields, or of the changed ones, sorted, when they are
		// few of many.
		de.version = e.version
		if names := tc.fields.names; len(names) > 1 && len(e.fields) <= 4*len(names) {
			for _, nf := range e.fields {
				if tc.fields.has(nf.name) {
					d.fields = append(d.fields, newDeltaField(nf.name, nf.f))
				}
			}
		} else {
			for _, name := range names {
				d.fields = append(d.fields, newDeltaField(name, e.field(name)))
			}
			if len(names) > 1 {
				slices.SortFunc(d.fields[de.lo:], func(a, b deltaField) int { return strings.Compare(a.name, b.name) })
			}
		}
	} else {
		// A quantised field (quantise.go) is sent only when its rounded
		// value moved in the tick, with its shown version.
		for _, nf := range e.fields {
			name, f := nf.name, nf.f
			if !a.visible(view, name, w) {
				continue
			}
			de.version = max(de.version, t.state.shownVersion(f))
			if replace || tc.fields.has(name) && t.state.movedSince(f, t.from) {
				d.fields = append(d.fields, t.state.deltaField(name, f))
			}
		}
	}
	de.hi = len(d.fields)
	if de.hi > de.lo || de.replace {
		d.ents = append(d.ents, de)
	} else {
		d.fields = d.fields[:de.lo]
	}
}

// versionOf returns the largest version among fields the view may see,
// and whether there is one.
func versionOf(a *Access, view View, fields []fieldVersion, w who) (uint64, bool) {
	var v uint64
	ok := false
	for _, fv := range fields {
		if a.visible(view, fv.name, w) {
			v, ok = max(v, fv.version), true
		}
	}
	return v, ok
}

// watchField is what a keyframe shows of f, a field of s: rounded when
// quantised, unless whole.
func (s *State) watchField(f *fieldState, whole bool) wire.WatchField {
	if f.isSet {
		return wire.WatchField{IsSet: true, Set: slices.Clone(f.set), Version: f.version}
	}
	v, ver := f.value, f.version
	if !whole {
		v, ver = s.shownValue(f)
	}
	return wire.WatchField{Value: &v, Version: ver}
}

// Keyframe returns the state view may see: every entity with a field the
// view may see, with those fields only. A quantised field (quantise.go)
// shows as s keeps it for spectators: rounded, when s is a pipeline's or
// replay's; a state of another's (a player's keyframe) has full precision.
func Keyframe(a *Access, s *State, teamOf TeamFunc, view View) *wire.Keyframe {
	return keyframe(a, s, teamOf, view, false)
}

// keyframe is Keyframe, with full precision when whole.
func keyframe(a *Access, s *State, teamOf TeamFunc, view View, whole bool) *wire.Keyframe {
	view = a.bound(view, s, teamOf)
	k := &wire.Keyframe{Type: wire.TypeKeyframe, World: s.world, Seq: s.seq, Time: s.time,
		Entities: make(map[string]wire.WatchEntity, len(s.ents))}
	for id, e := range s.ents {
		w := s.who(a, teamOf, id)
		we := wire.WatchEntity{Fields: make(map[string]wire.WatchField, len(e.fields))}
		for _, nf := range e.fields {
			name, f := nf.name, nf.f
			if a.visible(view, name, w) {
				we.Fields[name] = s.watchField(f, whole)
				we.Version = max(we.Version, we.Fields[name].Version)
			}
		}
		if len(we.Fields) > 0 {
			k.Entities[id] = we
		}
	}
	return k
}

// encode makes a frame of a wire frame.
func encode(typ string, seq uint64, v any) (*Frame, error) {
	if d, ok := v.(*wire.WatchDelta); ok {
		if b, ok := appendWatchDelta(nil, d); ok {
			return &Frame{Type: typ, Seq: seq, Data: b, v: v}, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &Frame{Type: typ, Seq: seq, Data: b, v: v}, nil
}
