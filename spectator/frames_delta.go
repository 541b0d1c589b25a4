package spectator

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gsd-dev/gsd/wire"
)

// tickDelta is a view's delta of a tick in slices rather than maps: a
// replay makes one per step over thousands of entities, and a map per
// entity (the wire.WatchDelta) cost more than the rest of the step. Its
// JSON is written straight from it, in the bytes appendWatchDelta writes
// for its wire form; the wire form is made only for a frame's Msgpack.
// It copies what it takes of the state: its wire form can be made later.
type tickDelta struct {
	world     string
	from, seq uint64
	time      int64
	ents      []deltaEntity // in id order (sort)
	fields    []deltaField  // ents[i]'s are fields[lo:hi], in name order
}

type deltaEntity struct {
	id               string
	version          uint64
	replace, deleted bool
	lo, hi           int
}

type deltaField struct {
	name    string
	value   wire.Value
	set     []wire.Value // a copy
	isSet   bool
	version uint64
}

// newDeltaField copies what a delta shows of field name.
func newDeltaField(name string, f *fieldState) deltaField {
	if f.isSet {
		return deltaField{name: name, isSet: true, set: slices.Clone(f.set), version: f.version}
	}
	return deltaField{name: name, value: f.value, version: f.version}
}

// watch returns f as a wire.WatchField, its value in f.
func (f *deltaField) watch() wire.WatchField {
	if f.isSet {
		return wire.WatchField{IsSet: true, Set: f.set, Version: f.version}
	}
	return wire.WatchField{Value: &f.value, Version: f.version}
}

// sort puts the entities in id order, the order of the JSON's keys (each
// one's fields are in name order as entityDelta makes them).
func (d *tickDelta) sort() {
	sortByID(d.ents)
}

// sortByID puts ents (of distinct ids) in id byte order. A replay's
// delta holds thousands; it sorts one word per entity rather than the
// entities: six bytes of its id, from where the ids begin to differ, and
// its index, compared as integers rather than strings, and a sixth of
// the bytes moved. Entities whose six bytes tie compare their ids. More
// entities than an index fits in sort as they are.
func sortByID(ents []deltaEntity) {
	if len(ents) < 2 {
		return
	}
	if len(ents) > maxKeyed {
		slices.SortFunc(ents, func(a, b deltaEntity) int { return strings.Compare(a.id, b.id) })
		return
	}
	skip := len(ents[0].id) // the prefix every id shares
	for _, e := range ents[1:] {
		n := min(skip, len(e.id))
		i := 0
		for i < n && e.id[i] == ents[0].id[i] {
			i++
		}
		skip = i
	}
	keys := make([]uint64, len(ents))
	for i := range ents {
		keys[i] = idWord(ents[i].id[skip:])&^maxKeyed | uint64(i)
	}
	slices.Sort(keys)
	for lo := 0; lo < len(keys); { // runs that tie: by id
		hi := lo + 1
		for hi < len(keys) && keys[hi]&^maxKeyed == keys[lo]&^maxKeyed {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(keys[lo:hi], func(a, b uint64) int {
				return strings.Compare(ents[a&maxKeyed].id, ents[b&maxKeyed].id)
			})
		}
		lo = hi
	}
	// Move each entity to its place, cycle by cycle: ents[j] takes
	// ents[keys[j]&maxKeyed]; a key whose move is done is moved.
	const moved = math.MaxUint64 // an index past maxKeyed
	for start := range keys {
		if keys[start] == moved {
			continue
		}
		held := ents[start]
		for cur := start; ; {
			src := int(keys[cur] & maxKeyed)
			keys[cur] = moved
			if src == start {
				ents[cur] = held
				break
			}
			ents[cur] = ents[src]
			cur = src
		}
	}
}

// maxKeyed is the most entities sortByID sorts by key, less one: their
// indexes fit in a key's low 16 bits, one value to spare.
const maxKeyed = 1<<16 - 1

// idWord is s's first eight bytes, big endian, zeros past its end: words
// that differ order as their strings do.
func idWord(s string) uint64 {
	var w uint64
	for i := range 8 {
		w <<= 8
		if i < len(s) {
			w |= uint64(s[i])
		}
	}
	return w
}

// wire returns d as a wire.WatchDelta.
func (d *tickDelta) wire() *wire.WatchDelta {
	ents := make(map[string]wire.WatchEntity, len(d.ents))
	for _, e := range d.ents {
		we := wire.WatchEntity{Version: e.version, Replace: e.replace, Deleted: e.deleted}
		if !e.deleted {
			we.Fields = make(map[string]wire.WatchField, e.hi-e.lo)
			for i := e.lo; i < e.hi; i++ {
				we.Fields[d.fields[i].name] = d.fields[i].watch()
			}
		}
		ents[e.id] = we
	}
	return &wire.WatchDelta{Type: wire.TypeWatchDelta, World: d.world, From: d.from, Seq: d.seq, Time: d.time, Entities: ents}
}

// frame encodes d, sorted, as a delta frame.
func (d *tickDelta) frame() (*Frame, error) {
	if b, ok := d.appendJSON(make([]byte, 0, d.sizeHint())); ok {
		return &Frame{Type: wire.TypeWatchDelta, Seq: d.seq, Data: b, wire: func() any { return d.wire() }}, nil
	}
	return encode(wire.TypeWatchDelta, d.seq, d.wire())
}

// sizeHint guesses the bytes of d's JSON, so that it grows once at most.
func (d *tickDelta) sizeHint() int {
	n := 96 + len(d.world) + len(d.ents)*48 + len(d.fields)*40
	for _, e := range d.ents {
		n += len(e.id)
	}
	for _, f := range d.fields {
		n += len(f.name) + len(f.value.Str)
	}
	return n
}

// appendJSON appends d's JSON as appendWatchDelta writes its wire form;
// false when a value needs json.Marshal's judgement.
func (d *tickDelta) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"type":"`+wire.TypeWatchDelta+`","world":`...)
	b = wire.AppendJSONString(b, d.world)
	b = append(b, `,"from":`...)
	b = strconv.AppendUint(b, d.from, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, d.seq, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, d.time, 10)
	b = append(b, `,"entities":{`...)
	for i, e := range d.ents {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, e.id)
		b = append(b, `:{"version":`...)
		b = strconv.AppendUint(b, e.version, 10)
		if e.replace {
			b = append(b, `,"replace":true`...)
		}
		if e.deleted {
			b = append(b, `,"deleted":true`...)
		}
		if e.hi > e.lo {
			b = append(b, `,"fields":{`...)
			for j := e.lo; j < e.hi; j++ {
				if j > e.lo {
					b = append(b, ',')
				}
				b = wire.AppendJSONString(b, d.fields[j].name)
				b = append(b, ':')
				var ok bool
				if b, ok = wire.AppendWatchFieldJSON(b, d.fields[j].watch()); !ok {
					return b, false
				}
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, "}}"...), true
}
