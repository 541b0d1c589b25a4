package play

import (
	"slices"
	"strings"
)

// A connection's or cell group's pending delta (outbox.merge): the latest
// coalesced change of each entity's fields since the last delta frame.
// It is kept in sorted slices, not maps: a cell group's delta holds a few
// entities, made anew every tick, and a map per delta and per entity was
// most of the players-10k mix's allocations (issue 11); the JSON encoder
// walks entities and fields in order without sorting them.

// pendingDelta is a pending delta's entities, sorted by id, each once
// (nil: nothing pending, as opposed to an empty delta that is due).
type pendingDelta []deltaEntry

type deltaEntry struct {
	id string
	ed *entityDelta
}

func (d pendingDelta) find(id string) (int, bool) {
	return slices.BinarySearchFunc(d, id, func(e deltaEntry, id string) int { return strings.Compare(e.id, id) })
}

// get returns entity id's delta, nil when it has none.
func (d pendingDelta) get(id string) *entityDelta {
	if i, ok := d.find(id); ok {
		return d[i].ed
	}
	return nil
}

// entityDelta returns entity id's delta in the pending delta, adding an
// empty one if it has none (o.mu held, o.delta not nil).
func (o *outbox) entityDelta(id string) *entityDelta {
	i, ok := o.delta.find(id)
	if ok {
		return o.delta[i].ed
	}
	ed := o.newEntityDelta()
	o.delta = slices.Insert(o.delta, i, deltaEntry{id: id, ed: ed})
	return ed
}

// drop drops entity id's delta.
func (d *pendingDelta) drop(id string) {
	if i, ok := d.find(id); ok {
		*d = slices.Delete(*d, i, i+1)
	}
}

// dropIf drops the deltas of the entities gone says are gone.
func (d *pendingDelta) dropIf(gone func(id string) bool) {
	if *d == nil {
		return
	}
	*d = slices.DeleteFunc(*d, func(e deltaEntry) bool { return gone(e.id) })
}

// clone returns a copy of d that shares no memory with it.
func (d pendingDelta) clone() pendingDelta {
	if d == nil {
		return nil
	}
	c := make(pendingDelta, len(d))
	for i, e := range d {
		c[i] = deltaEntry{id: e.id, ed: e.ed.clone()}
	}
	return c
}

// entityDelta is one entity's pending changes: each field's latest
// change merged, as prepare made it (the frames that hold the change's
// event keep it alive anyway), sorted by field name; an entity moves a
// field or two per tick.
type entityDelta struct {
	deleted uint64         // version of a delete in this delta (0: none)
	fields  []*deltaChange // sorted by field name, each once
	inline  [2]*deltaChange
}

func newEntityDelta() *entityDelta {
	ed := &entityDelta{}
	ed.fields = ed.inline[:0]
	return ed
}

// newEntityDelta returns an empty entity delta from the outbox's slab: a
// delta's entities are allocated a few at a time (as many as the delta
// holds so far, up to 16), not one by one.
func (o *outbox) newEntityDelta() *entityDelta {
	if len(o.slab) == 0 {
		o.slab = make([]entityDelta, min(max(2*len(o.delta), 2), 16))
	}
	ed := &o.slab[0]
	o.slab = o.slab[1:]
	ed.fields = ed.inline[:0]
	return ed
}

// set records a field's change unless the delta holds a newer one.
func (ed *entityDelta) set(c *deltaChange) {
	i, found := slices.BinarySearchFunc(ed.fields, c.field, func(f *deltaChange, name string) int {
		return strings.Compare(f.field, name)
	})
	switch {
	case !found:
		ed.fields = slices.Insert(ed.fields, i, c)
	case c.version >= ed.fields[i].version:
		ed.fields[i] = c
	}
}

// clone returns a copy of ed that shares no memory with it.
func (ed *entityDelta) clone() *entityDelta {
	c := newEntityDelta()
	c.deleted = ed.deleted
	c.fields = append(c.fields, ed.fields...)
	return c
}
