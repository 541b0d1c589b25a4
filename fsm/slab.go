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

// maxSlabEvents bounds one slab: 115 events of 248 bytes fill the 28,672
// byte size class within 152 bytes, where a slab of 250 (62,000 bytes, a
// large object) would round up to 64 KiB. A world with more events in an
// entry gets several slabs.
const maxSlabEvents = 115

// eventWithChange is an event with room for one change.
type eventWithChange struct {
	ev Event
	ch [1]Change
}

// worldSlab is one world's events of the applying entry.
type worldSlab struct {
	world string
	n     int               // events to come beyond ev
	ev    []eventWithChange // the current slab's unused events
}

// prepareSlabs counts, per world, cmds' single-op actions, whose events
// takeEvent then hands out from slabs. Apply holds f.mu exclusively.
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

// takeEvent returns a fresh event with room for one change for a single-op
// action of world: the next element of the world's slab (made when the
// action is the first of a slab's), or a new one for a world past
// maxSlabs. The actions prepareSlabs counted take at most as many.
func (f *FSM) takeEvent(world string) *eventWithChange {
	j := f.slabOf(world)
	if j < 0 {
		return &eventWithChange{}
	}
	sl := &f.slabs[j]
	if len(sl.ev) == 0 {
		k := min(sl.n, maxSlabEvents)
		sl.ev, sl.n = make([]eventWithChange, k), sl.n-k
	}
	ec := &sl.ev[0]
	sl.ev = sl.ev[1:]
	return ec
}

// releaseSlabs forgets the entry's slabs: the FSM keeps no event.
func (f *FSM) releaseSlabs() {
	clear(f.slabs)
	f.slabs = f.slabs[:0]
}
