package auditor

import (
	"slices"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// converter turns a batch of committed events into their wire form, as
// fsm.Event.Wire does (an event without changes gets an empty map and
// slice where Wire leaves nil; the leaf is the same), reusing its
// buffers from batch to batch: Wire allocates a versions map per event
// and per entity, the changes and each value, about six allocations per
// event, which the follower would pay on every event of every world.
// Its output is valid until the next call.
type converter struct {
	wires  []wire.Event
	ptrs   []*wire.Event
	values []wire.Value // the changes' values, pointed to
	exists []bool       // the conflicts' exists flags, pointed to
	free   []map[string]uint64
	salt   []wire.SaltedIDs // saltings' result
}

// saltings returns, for a salted world's events, what each salts
// (fsm.Event.Salted); nil when none of evs names a salted player, which
// a log of either version reads as nothing salted. Valid until the next
// call.
func (c *converter) saltings(evs []*fsm.Event) []wire.SaltedIDs {
	if !slices.ContainsFunc(evs, func(e *fsm.Event) bool { return e.Salted != nil }) {
		return nil // no allocation: most worlds are not salted
	}
	c.salt = c.salt[:0]
	for _, e := range evs {
		c.salt = append(c.salt, e.Salted.Lookup)
	}
	return c.salt
}

// convert returns evs in wire form.
func (c *converter) convert(evs []*fsm.Event) []*wire.Event {
	n := 0
	for _, e := range evs {
		n += len(e.Changes)
	}
	if cap(c.values) < n {
		c.values = make([]wire.Value, n)
		c.exists = make([]bool, n)
	}
	values, exists := c.values[:n], c.exists[:n]
	for len(c.wires) < len(evs) {
		c.wires = append(c.wires, wire.Event{})
	}
	c.ptrs = c.ptrs[:0]
	k := 0
	for i, e := range evs {
		w := &c.wires[i]
		versions, changes := c.reuse(w.Versions), w.Changes[:0]
		*w = wire.Event{World: e.World, Seq: e.Seq, Index: e.Index, Time: e.Time, Player: e.Player,
			ClientSeq: e.ClientSeq, Priority: e.Priority.String(), Status: e.Status.String(), Reason: e.Reason}
		for _, ch := range e.Changes {
			wc := wire.Change{Entity: ch.Entity, Field: ch.Field, Version: ch.Version, Set: ch.Set}
			if ch.Op != 0 {
				wc.Op = ch.Op.String()
			}
			if ch.Value.Kind != fsm.KindNull {
				values[k] = ch.Value
				wc.Value = &values[k]
			}
			if e.Status == fsm.StatusConflict {
				exists[k] = ch.Exists
				wc.Exists = &exists[k]
			}
			k++
			changes = append(changes, wc)
			if ch.Field != "" {
				fields := versions[ch.Entity]
				if fields == nil {
					fields = c.inner()
					versions[ch.Entity] = fields
				}
				fields[ch.Field] = ch.Version
			}
		}
		// Empty rather than nil without changes: the leaf counts both as 0.
		w.Versions, w.Changes = versions, changes
		c.ptrs = append(c.ptrs, w)
	}
	return c.ptrs
}

// reuse empties a slot's versions map for its next event, keeping its
// inner maps for later entities.
func (c *converter) reuse(m map[string]map[string]uint64) map[string]map[string]uint64 {
	if m == nil {
		return make(map[string]map[string]uint64)
	}
	for ent, fields := range m {
		clear(fields)
		c.free = append(c.free, fields)
		delete(m, ent)
	}
	return m
}

func (c *converter) inner() map[string]uint64 {
	if n := len(c.free); n > 0 {
		m := c.free[n-1]
		c.free = c.free[:n-1]
		return m
	}
	return make(map[string]uint64)
}
