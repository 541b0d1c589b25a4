package spectator

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gsd-dev/gsd/fsm"
)

// State is one world's entities as the feed leaves them after event Seq,
// kept from the applied events' changes: the source of keyframes and of
// what deltas and filters need to know (teams, versions of deleted
// entities). Not safe for concurrent use.
type State struct {
	world string
	seq   uint64
	time  int64
	ents  map[string]*entState
	owned map[string]map[string]bool // player → entities whose owner field names it
	gaps  bool                       // a filtered feed: seqs may skip (Config.Filtered)
	// quanta are the quantised fields (name → quantum) whose shown values
	// s keeps for spectators in shown (quantise.go); nil: none. Beside
	// the fields, not in them: a world without quanta (and a replay of
	// it) keeps its fields' states as small as they were.
	quanta map[string]float64
	shown  map[*fieldState]shownField

	// The entity last looked up by entity: an event's changes are mostly
	// to one entity, and a search of thousands costs a cache miss.
	lastID  string
	lastEnt *entState
}

// entity returns an entity's state, or nil when it does not exist.
func (s *State) entity(id string) *entState {
	if s.lastEnt != nil && s.lastID == id {
		return s.lastEnt
	}
	e := s.ents[id]
	if e != nil {
		s.lastID, s.lastEnt = id, e
	}
	return e
}

type entState struct {
	// Its fields in name order: an entity has a few, and a search of a
	// slice finds one with fewer cache misses than a map (a replay
	// looks one up per change and per delta field).
	fields []namedField
	// What deltas and sight read of it for each change, kept so that they
	// need not search its fields: fields[OwnerField] (nil: none), and the
	// largest of its fields' versions.
	owner   *fieldState
	version uint64
	// Room for its first fields, in the same allocation: an entity made
	// by changes (a replay's) holds its field list and its first fields'
	// states here, beside it in memory, rather than in objects of their
	// own that each cost a replay's change a cache miss (and the GC one
	// more object to mark). newField hands them out.
	buf  [entFields]namedField
	fbuf [entFields]fieldState
	nf   int // fbuf's used
	// The touch of it in a Ticker's tick, if the ticker's touch says so
	// (Ticker.touched): found with its state, not searched for.
	touch *touch
}

type namedField struct {
	name string
	f    *fieldState
}

// entFields is the fields an entity made by changes holds in its own
// allocation: a battle's players have four (x, y, hp, shots).
const entFields = 4

// newEntity returns an entity with no field, made to grow by changes.
func newEntity() *entState {
	e := &entState{}
	e.fields = e.buf[:0]
	return e
}

// newField returns a field state for e, from its own room while it lasts.
func (e *entState) newField() *fieldState {
	if e.nf < len(e.fbuf) {
		e.nf++
		return &e.fbuf[e.nf-1]
	}
	return &fieldState{}
}

// newEntState returns an entity of fields (any order), indexed.
func newEntState(fields map[string]*fieldState) *entState {
	e := &entState{fields: make([]namedField, 0, len(fields))}
	for name, f := range fields {
		e.fields = append(e.fields, namedField{name, f})
	}
	slices.SortFunc(e.fields, func(a, b namedField) int { return strings.Compare(a.name, b.name) })
	e.index()
	return e
}

// field returns e's field name, or nil.
func (e *entState) field(name string) *fieldState {
	if i, ok := e.find(name); ok {
		return e.fields[i].f
	}
	return nil
}

// find returns where field name is in e.fields, or would be.
func (e *entState) find(name string) (int, bool) {
	if len(e.fields) <= 8 {
		// Equality first: cheaper than an order, and a field mostly is
		// there.
		for i := range e.fields {
			if e.fields[i].name == name {
				return i, true
			}
		}
		for i := range e.fields {
			if e.fields[i].name > name {
				return i, false
			}
		}
		return len(e.fields), false
	}
	return slices.BinarySearchFunc(e.fields, name, func(nf namedField, name string) int { return strings.Compare(nf.name, name) })
}

// index sets e's owner and version from its fields.
func (e *entState) index() {
	e.owner, e.version = e.field(OwnerField), 0
	for _, nf := range e.fields {
		e.version = max(e.version, nf.f.version)
	}
}

// str returns e's string field.
func (e *entState) str(field string) (string, bool) {
	f := e.owner
	if field != OwnerField {
		f = e.field(field)
	}
	if f != nil && !f.isSet && f.value.Kind == fsm.KindString {
		return f.value.Str, true
	}
	return "", false
}

type fieldState struct {
	isSet   bool
	value   fsm.Value
	set     []fsm.Value // sorted
	version uint64

	// What EntityHash needs beyond the rules: the policy a seed said
	// (0: infer it from firstOp, as the FSM does for undeclared fields),
	// and the kind of its values when known.
	policy    fsm.Policy
	firstOp   fsm.OpKind
	kind      fsm.Kind
	kindKnown bool
}

// NewState returns the empty state of world before its first event.
func NewState(world string) *State {
	return &State{world: world, ents: make(map[string]*entState), owned: make(map[string]map[string]bool)}
}

// SeedState returns world's state after event seq from its entities as
// read from a store at that seq (fsm.FSM.Entities). t must be the leader
// time of event seq: a delayed pipeline trusts it to decide whether the
// seed may be shown.
func SeedState(world string, seq uint64, t int64, ents []fsm.EntityView) *State {
	s := NewState(world)
	s.seq, s.time = seq, t
	for _, ev := range ents {
		fields := make(map[string]*fieldState, len(ev.Fields))
		for _, f := range ev.Fields {
			fs := &fieldState{version: f.Version, policy: f.Policy}
			if f.Policy == fsm.PolicySet {
				fs.isSet, fs.set = true, slices.Clone(f.Set)
				slices.SortFunc(fs.set, fsm.Value.Compare)
				if len(fs.set) > 0 {
					fs.kind, fs.kindKnown = fs.set[0].Kind, true
				}
			} else {
				fs.value, fs.kind, fs.kindKnown = f.Value, f.Value.Kind, true
			}
			fields[f.Name] = fs
		}
		s.ents[ev.ID] = newEntState(fields)
		s.own(ev.ID, "")
	}
	return s
}

// Filtered marks s as the state of a feed cut to one view (a relay's;
// Config.Filtered): Apply then takes each event that comes after the
// last, not only the next. It returns s.
func (s *State) Filtered() *State {
	s.gaps = true
	return s
}

// Clone returns a copy of s that changes apart from it: a relay seeds a
// pipeline with the state of the events it no longer holds.
func (s *State) Clone() *State {
	c := &State{world: s.world, seq: s.seq, time: s.time, gaps: s.gaps,
		ents: make(map[string]*entState, len(s.ents)), owned: make(map[string]map[string]bool, len(s.owned))}
	for id, e := range s.ents {
		ce := &entState{fields: make([]namedField, len(e.fields))}
		for i, nf := range e.fields {
			cf := *nf.f
			cf.set = slices.Clone(cf.set)
			ce.fields[i] = namedField{nf.name, &cf}
		}
		ce.index()
		c.ents[id] = ce
	}
	for p, m := range s.owned {
		c.owned[p] = maps.Clone(m)
	}
	return c
}

// Seq returns the seq of the last event the state reflects.
func (s *State) Seq() uint64 { return s.seq }

// Time returns the leader time of that event.
func (s *State) Time() int64 { return s.time }

// Apply applies the next event's changes (only applied events change
// anything). An event that is not the next of this world is ErrGap (of
// a filtered feed: one that is not after the last).
func (s *State) Apply(ev *fsm.Event) error {
	return s.apply(ev, nil)
}

// apply applies ev, calling each (when set) before each change with the
// change's index, so a caller can read the state just before it.
func (s *State) apply(ev *fsm.Event, each func(i int)) error {
	if ev.World != s.world || ev.Seq <= s.seq || !s.gaps && ev.Seq != s.seq+1 {
		return fmt.Errorf("%w: world %s seq %d after world %s seq %d", ErrGap, ev.World, ev.Seq, s.world, s.seq)
	}
	s.seq, s.time = ev.Seq, ev.Time
	for i := range ev.Changes {
		if each != nil {
			each(i)
		}
		if ev.Status == fsm.StatusApplied {
			s.change(&ev.Changes[i])
		}
	}
	return nil
}

func (s *State) change(c *fsm.Change) {
	if c.Field == "" {
		old, _ := s.str(c.Entity, OwnerField)
		if e := s.ents[c.Entity]; e != nil && s.shown != nil {
			for _, nf := range e.fields {
				delete(s.shown, nf.f)
			}
		}
		delete(s.ents, c.Entity)
		if s.lastID == c.Entity {
			s.lastEnt = nil
		}
		s.own(c.Entity, old)
		return
	}
	if c.Field == OwnerField {
		old, _ := s.str(c.Entity, OwnerField)
		defer s.own(c.Entity, old)
	}
	e := s.entity(c.Entity)
	if e == nil {
		e = newEntity() // its fields come one by one
		s.ents[c.Entity] = e
		s.lastID, s.lastEnt = c.Entity, e
	}
	var f *fieldState
	i, ok := e.find(c.Field)
	if ok {
		f = e.fields[i].f
	} else {
		f = e.newField()
		*f = fieldState{isSet: c.Op == fsm.OpAdd || c.Op == fsm.OpRemove, firstOp: c.Op, kind: c.Value.Kind, kindKnown: true}
		e.fields = slices.Insert(e.fields, i, namedField{c.Field, f})
		if c.Field == OwnerField {
			e.owner = f
		}
	}
	lower := c.Version < f.version
	f.version = c.Version
	if lower {
		e.index() // not seen from the FSM, whose versions only rise; kept right anyway
	} else {
		e.version = max(e.version, c.Version)
	}
	switch c.Op {
	case fsm.OpAdd:
		if i, ok := slices.BinarySearchFunc(f.set, c.Value, fsm.Value.Compare); !ok {
			f.set = slices.Insert(f.set, i, c.Value)
		}
	case fsm.OpRemove:
		if i, ok := slices.BinarySearchFunc(f.set, c.Value, fsm.Value.Compare); ok {
			f.set = slices.Delete(f.set, i, i+1)
		}
	default: // set, incr: the resulting value
		f.value = c.Value
	}
	if s.quanta != nil {
		s.show(c.Field, f)
	}
}

// own moves entity in the owned index from the player old named to the
// one its owner field names now.
func (s *State) own(entity, old string) {
	now, _ := s.str(entity, OwnerField)
	if now == old {
		return
	}
	if m := s.owned[old]; m != nil {
		delete(m, entity)
		if len(m) == 0 {
			delete(s.owned, old)
		}
	}
	if now != "" {
		if s.owned[now] == nil {
			s.owned[now] = make(map[string]bool)
		}
		s.owned[now][entity] = true
	}
}

// OwnerField is the string field that names an entity's owner when it is
// not the player whose id the entity has: the rule fsm's field write
// access ("write": "owner") uses.
const OwnerField = "owner"

// who is whom an entity's owner- and team-visible fields are for.
type who struct {
	owner string // the owning player
	team  string // the entity's team
}

// who returns an entity's owner and team under a.
func (s *State) who(a *Access, teamOf TeamFunc, entity string) who {
	return s.whoOf(a, teamOf, entity, s.entity(entity))
}

// whoOf is who of an entity whose state is e (nil: it does not exist).
func (s *State) whoOf(a *Access, teamOf TeamFunc, entity string, e *entState) who {
	w := who{owner: entity}
	if e == nil {
		e = &noEntity
	}
	if v, ok := e.str(OwnerField); ok {
		w.owner = v
	}
	if k := a.TeamField(); k != "" {
		// Its own team field, else its owner's (when another entity).
		if v, ok := e.str(k); ok {
			w.team = v
		} else if w.owner != entity {
			w.team, _ = s.str(w.owner, k)
		}
	} else if a.teams.From != "" && teamOf != nil {
		w.team = teamOf(w.owner)
	}
	return w
}

// noEntity is the state of an entity that does not exist.
var noEntity entState

// str returns an entity's string field.
func (s *State) str(entity, field string) (string, bool) {
	if e := s.entity(entity); e != nil {
		return e.str(field)
	}
	return "", false
}

// fieldVersions returns an entity's fields' names and versions, in name
// order, or nil when it does not exist.
func (s *State) fieldVersions(entity string) []fieldVersion {
	if e := s.ents[entity]; e != nil {
		return s.appendFieldVersions(make([]fieldVersion, 0, len(e.fields)), entity)
	}
	return nil
}

// appendFieldVersions appends an entity's fields' names and versions to
// out, in name order; nothing when it does not exist.
func (s *State) appendFieldVersions(out []fieldVersion, entity string) []fieldVersion {
	e := s.ents[entity]
	if e == nil {
		return out
	}
	for _, nf := range e.fields {
		out = append(out, fieldVersion{nf.name, nf.f.version})
	}
	return out
}

type fieldVersion struct {
	name    string
	version uint64
}

// TeamFunc returns a player's team when teams come from a token claim or
// session data (rules key teams.from "claim" or "data"); the edge that
// knows the sessions supplies it. It must be cheap and must not block.
type TeamFunc func(player string) string

// ErrHashUnknown reports a state whose hash cannot be recomputed: a seed
// held an empty set field that the rules do not declare, so its
// elements' kind is not known.
var ErrHashUnknown = errors.New("gsd/spectator: entity hash unknown")

// EntityHash recomputes the world's entity hash (fsm.FSM.EntityHash) from
// the state under the world's rules r: a replay's state at seq N hashes
// as the live world's entities did at N. Fields r declares take their
// policy and type from it; others are inferred from their first op, as
// the FSM infers them.
func (s *State) EntityHash(r fsm.Rules) (uint64, error) {
	var sum uint64
	for id, e := range s.ents {
		for _, nf := range e.fields {
			name, f := nf.name, nf.f
			policy, kind, known := f.policy, f.kind, f.kindKnown
			if fr, ok := r.Fields[name]; ok {
				policy, kind, known = fr.Policy, fr.Type, true
			} else if policy == fsm.PolicyNone {
				switch f.firstOp {
				case fsm.OpIncr:
					policy = fsm.PolicyCounter
				case fsm.OpAdd, fsm.OpRemove:
					policy = fsm.PolicySet
				default:
					policy = fsm.PolicyAuthoritative
				}
			}
			if !known {
				return 0, fmt.Errorf("%w: field %s of %s", ErrHashUnknown, name, id)
			}
			sum += fsm.FieldHash(id, fsm.FieldView{Name: name, Policy: policy, Value: f.value, Set: f.set,
				Version: f.version}, kind)
		}
	}
	return sum, nil
}
