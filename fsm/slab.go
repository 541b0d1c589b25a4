package fsm

// The events of an entry's single-op actions, the common case, come from
// one slab per world instead of one allocation each. Every event takes
// its own element, never reused, so a published event stays immutable;
// but an event that someone keeps keeps its whole slab alive. The feed
// keeps each world's newest events (its tail) and drops them oldest
// first, so a slab holds one world's events only: one world's events of
// one entry have consecutive seqs, and a tail pins at most the slab at
// its oldest end. A slab shared by worlds would let an idle world's tail
// pin every busy world's events of the same entries.

// maxSlabs bounds the worlds of an entry whose events come from a slab:
// finding a world's slab is a scan, and an entry of many worlds (each
// with few actions) saves little. The others allocate per event.
const maxSlabs = 8

// eventWithChange is an event with room for one change.
type eventWithChange struct {
	ev Event
	ch [1]Change
}

// worldSlab is one world's events of the applying entry.
type worldSlab struct {
	world string
	n     int // single-op actions of the world in the entry
	ev    []eventWithChange
}

// prepareSlabs makes the slabs of cmds' single-op actions. Apply holds
// f.mu exclusively.
func (f *FSM) prepareSlabs(cmds []Command) {
	for i := range cmds {
		c := &cmds[i]
		if c.Kind != CmdAction || len(c.Action.Ops) != 1 {
			continue
		}
		if j := f.slabOf(c.Action.World); j >= 0 {
			f.slabs[j].n++
		} else if len(f.slabs) < maxSlabs {
			f.slabs = append(f.slabs, worldSlab{world: c.Action.World, n: 1})
		}
	}
	for j := range f.slabs {
		f.slabs[j].ev = make([]eventWithChange, f.slabs[j].n)
	}
}

// slabOf returns the index of world's slab, or -1.
func (f *FSM) slabOf(world string) int {
	for j := range f.slabs {
		if f.slabs[j].world == world {
			return j
		}
	}
	return -1
}

// takeEvent returns a fresh event with room for one change for an action
// of world: the next element of the world's slab, or a new one.
func (f *FSM) takeEvent(world string) *eventWithChange {
	if j := f.slabOf(world); j >= 0 && len(f.slabs[j].ev) > 0 {
		ec := &f.slabs[j].ev[0]
		f.slabs[j].ev = f.slabs[j].ev[1:]
		return ec
	}
	return &eventWithChange{}
}

// releaseSlabs forgets the entry's slabs: the FSM keeps no event.
func (f *FSM) releaseSlabs() {
	clear(f.slabs)
	f.slabs = f.slabs[:0]
}
