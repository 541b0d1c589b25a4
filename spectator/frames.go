package spectator

import (
	"encoding/json"
	"slices"
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

	v       any // the wire value, for Msgpack
	once    sync.Once
	msgpack []byte
	err     error
}

// Msgpack returns the frame in the binary codec of the play protocol
// (wire.MarshalMsgpack: the JSON form's keys, canonical bytes).
func (f *Frame) Msgpack() ([]byte, error) {
	f.once.Do(func() { f.msgpack, f.err = wire.MarshalMsgpack(f.v) })
	return f.msgpack, f.err
}

// Ticker coalesces the events of one tick into per-view deltas: it applies
// each event to the world's State and remembers which fields of which
// entities the tick touched and what each touched entity looked like when
// the tick began. At the tick's end Delta makes each view's delta from the
// state then, so a field changed many times in a tick is sent once, with
// its latest value (latest-value coalescing of moves). Not safe for
// concurrent use.
type Ticker struct {
	access  *Access
	state   *State
	teamOf  TeamFunc
	from    uint64 // first seq of the tick; 0: no event yet
	touched map[string]*touch
	free    []*touch    // touches of past ticks, to use again
	keep    bool        // keep the tick's events, prepared for filtering
	events  []*Prepared // the tick's events, when keep
}

// touch is what a tick did to one entity.
type touch struct {
	// Its fields when the tick began (nil: it did not exist); with an
	// access that restricts nothing only whether it had any (startAny):
	// every view sees every field, so that is all entityDelta asks.
	start    []fieldVersion
	startAny bool
	startWho who
	gone     []fieldVersion // its fields when the tick last deleted it
	goneWho  who
	deleted  bool                // the tick deleted it (and maybe made it again)
	fields   map[string]struct{} // fields changed since its last delete in the tick
}

// NewTicker returns a ticker that keeps s under a.
func NewTicker(a *Access, s *State, teamOf TeamFunc) *Ticker {
	return &Ticker{access: a, state: s, teamOf: teamOf, touched: make(map[string]*touch)}
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
				clear(tc.fields)
			}
			return
		}
		tc.fields[c.Field] = struct{}{}
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
	tc := t.touched[id]
	if tc == nil {
		if n := len(t.free); n > 0 {
			tc, t.free = t.free[n-1], t.free[:n-1]
		} else {
			tc = &touch{fields: make(map[string]struct{})}
		}
		e := t.state.ents[id]
		tc.startWho = t.state.whoOf(t.access, t.teamOf, id, e)
		if t.access.Restricted() {
			tc.start = t.state.appendFieldVersions(tc.start[:0], id)
		} else if e != nil {
			tc.startAny = len(e.fields) > 0
		}
		t.touched[id] = tc
	}
	return tc
}

// Pending reports whether events were applied since the last Reset.
func (t *Ticker) Pending() bool { return t.from != 0 }

// Reset starts the next tick.
func (t *Ticker) Reset() {
	t.from = 0
	for _, tc := range t.touched {
		clear(tc.fields)
		*tc = touch{start: tc.start[:0], gone: tc.gone[:0], fields: tc.fields}
		t.free = append(t.free, tc)
	}
	clear(t.touched)
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
	tc := t.touched[view.player]
	return tc != nil && tc.startWho.team != t.state.who(t.access, t.teamOf, view.player).team
}

// Delta returns view's delta for the tick, or nil when the tick changed
// nothing the view may see.
func (t *Ticker) Delta(view View) *wire.WatchDelta {
	if t.from == 0 {
		return nil
	}
	view = t.access.bound(view, t.state, t.teamOf)
	ents := make(map[string]wire.WatchEntity, len(t.touched))
	var vals []fsm.Value
	for id, tc := range t.touched {
		if we, ok := t.entityDelta(view, id, tc, &vals); ok {
			ents[id] = we
		}
	}
	if len(ents) == 0 {
		return nil
	}
	return &wire.WatchDelta{Type: wire.TypeWatchDelta, World: t.state.world, From: t.from, Seq: t.state.seq,
		Time: t.state.time, Entities: ents}
}

// entityDelta returns view's delta of one touched entity; its fields'
// values are taken from *vals, a slab the delta's entities share.
func (t *Ticker) entityDelta(view View, id string, tc *touch, vals *[]fsm.Value) (wire.WatchEntity, bool) {
	a := t.access
	sawIt := tc.startAny
	if a.Restricted() {
		_, sawIt = versionOf(a, view, tc.start, tc.startWho)
	}
	e := t.state.ents[id]
	if e == nil { // gone at the tick's end
		if !sawIt {
			return wire.WatchEntity{}, false
		}
		v, _ := versionOf(a, view, tc.gone, tc.goneWho)
		return wire.WatchEntity{Deleted: true, Version: v}, true
	}
	w := t.state.whoOf(a, t.teamOf, id, e)
	// A delete (then a new entity), or a change of owner or team, makes
	// the view's picture of the entity wrong as a whole: send all it may
	// see now.
	replace := tc.deleted || w != tc.startWho
	if !replace && !a.Restricted() {
		// Every field is visible: the changed ones and the entity's
		// version, without a look at the others.
		we := wire.WatchEntity{Version: e.version, Fields: make(map[string]wire.WatchField, len(tc.fields))}
		for name := range tc.fields {
			we.Fields[name] = watchFieldIn(e.fields[name], vals)
		}
		return we, len(we.Fields) > 0
	}
	we := wire.WatchEntity{Replace: replace && sawIt, Fields: make(map[string]wire.WatchField)}
	for name, f := range e.fields {
		if !a.visible(view, name, w) {
			continue
		}
		we.Version = max(we.Version, f.version)
		if _, ch := tc.fields[name]; ch || replace {
			we.Fields[name] = watchFieldIn(f, vals)
		}
	}
	return we, len(we.Fields) > 0 || we.Replace
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

// watchFieldIn is watchField with the value in *vals: a slab of values,
// a new one when full (a frame made from it is kept), so that a delta of
// thousands of fields makes a few allocations, not one per field.
func watchFieldIn(f *fieldState, vals *[]fsm.Value) wire.WatchField {
	if f.isSet {
		return watchField(f)
	}
	if len(*vals) == cap(*vals) {
		*vals = make([]fsm.Value, 0, 256)
	}
	*vals = append(*vals, f.value)
	return wire.WatchField{Value: &(*vals)[len(*vals)-1], Version: f.version}
}

func watchField(f *fieldState) wire.WatchField {
	if f.isSet {
		return wire.WatchField{IsSet: true, Set: slices.Clone(f.set), Version: f.version}
	}
	v := f.value
	return wire.WatchField{Value: &v, Version: f.version}
}

// Keyframe returns the state view may see: every entity with a field the
// view may see, with those fields only.
func Keyframe(a *Access, s *State, teamOf TeamFunc, view View) *wire.Keyframe {
	view = a.bound(view, s, teamOf)
	k := &wire.Keyframe{Type: wire.TypeKeyframe, World: s.world, Seq: s.seq, Time: s.time,
		Entities: make(map[string]wire.WatchEntity, len(s.ents))}
	for id, e := range s.ents {
		w := s.who(a, teamOf, id)
		we := wire.WatchEntity{Fields: make(map[string]wire.WatchField, len(e.fields))}
		for name, f := range e.fields {
			if a.visible(view, name, w) {
				we.Fields[name] = watchField(f)
				we.Version = max(we.Version, f.version)
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
