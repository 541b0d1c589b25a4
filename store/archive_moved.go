package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	bolt "go.etcd.io/bbolt"
)

// ErrMovedEvents reports events refused for a moved world's archive
// (FillMoved): not the world's, not its incarnation's, not consecutive,
// beyond the fence, or an event at the fence that is not the one the
// world's hash history names.
var ErrMovedEvents = errors.New("gsd/store: events refused for a moved world's archive")

// FillMoved stores events of a world imported on this group (shard.Move)
// from before its import: its events up to fence, the seq at which its
// old group fenced it, carry the old group's log indexes and were
// committed there, so the feed never archives them here. shard copies
// them from a node of the old group page by page; once they are stored a
// subscription from a seq up to fence reads them here instead of getting
// ErrArchiveGap. Events held already are skipped (never rewritten). It
// returns how many it stored.
//
// events must be consecutive seqs of world, of its incarnation (log index
// at or after it, until a later home's events begin: see laterHome),
// none beyond fence; the event at fence, when among
// them, must carry the log index the world's hash history holds for
// fence (when it still holds it). Anything else is refused whole with
// ErrMovedEvents, and nothing is stored.
func (s *Store) FillMoved(world string, fence uint64, events []*fsm.Event) (int, error) {
	w, err := s.fsm.World(world)
	if err != nil {
		return 0, err
	}
	if w.Imported == 0 {
		return 0, fmt.Errorf("%w: world %s was not moved to this group", ErrMovedEvents, world)
	}
	if fence == 0 || fence > w.Seq {
		return 0, fmt.Errorf("%w: fence at seq %d, world %s at %d", ErrMovedEvents, fence, world, w.Seq)
	}
	for i, ev := range events {
		switch {
		case ev == nil || ev.World != world:
			return 0, fmt.Errorf("%w: event %d is not world %s's", ErrMovedEvents, i, world)
		case i > 0 && ev.Seq != events[i-1].Seq+1:
			return 0, fmt.Errorf("%w: seq %d after %d", ErrMovedEvents, ev.Seq, events[i-1].Seq)
		case ev.Seq == 0 || ev.Seq > fence:
			return 0, fmt.Errorf("%w: seq %d beyond the fence at %d", ErrMovedEvents, ev.Seq, fence)
		case ev.Index == 0:
			return 0, fmt.Errorf("%w: seq %d at log index 0", ErrMovedEvents, ev.Seq)
		case ev.Index < w.Incarnation && !s.laterHome(world, w.Incarnation, ev, prev(events, i)):
			return 0, fmt.Errorf("%w: seq %d at log index %d, before the incarnation %d", ErrMovedEvents, ev.Seq, ev.Index, w.Incarnation)
		case ev.Seq == fence:
			if p, err := s.fsm.Hash(world, fence); err == nil && p.Index != ev.Index {
				return 0, fmt.Errorf("%w: seq %d at log index %d, the fence's is %d", ErrMovedEvents, fence, ev.Index, p.Index)
			}
		}
	}
	// The mark first: one without the events is harmless, events without
	// it would not survive a restore.
	if err := s.arch.markMoved(world, w.Incarnation); err != nil {
		return 0, err
	}
	// The floor was checked above (an event of a later home may lie
	// below the incarnation).
	return s.arch.fill(world, events, func() (uint64, bool) {
		now, err := s.fsm.World(world)
		return 1, err == nil && now.Incarnation == w.Incarnation && now.Imported == w.Imported
	})
}

// prev is the event before events[i] in the page, nil for the first.
func prev(events []*fsm.Event, i int) *fsm.Event {
	if i == 0 {
		return nil
	}
	return events[i-1]
}

// laterHome reports whether ev, a moved world's event below its
// incarnation, was committed on a later home than the world's first group
// (a world moved more than once: the middle group's events carry that
// group's log indexes, unrelated to the incarnation). Within one group a
// world's events have increasing log indexes, so its first group's run
// from seq 1 is all at or after the incarnation; a later home begins
// where the index drops. ev is such an event when the event before it
// (before, or the archive's when before is nil) has a higher index (the
// drop) or is itself below the incarnation (stored only as a later
// home's event, by this same rule). Seq 1, or an event whose predecessor
// is not held, is of the first group: it must be at or after the
// incarnation.
func (s *Store) laterHome(world string, incarnation uint64, ev, before *fsm.Event) bool {
	if before == nil && ev.Seq > 1 {
		if evs, err := s.arch.read(world, ev.Seq-1, 1); err == nil && len(evs) == 1 && evs[0].Seq == ev.Seq-1 {
			before = evs[0]
		}
	}
	return before != nil && (before.Index > ev.Index || before.Index < incarnation)
}

// archiveFloor is the lowest log index of w's events a refill takes: its
// incarnation, the log index of its creation; for an imported world,
// whose incarnation is the old group's log index (which may lie beyond
// this group's log), also its import index: its events here come after
// the import, those from before it (FillMoved, or a refill from a peer
// that has them) from its incarnation on, with the old group's.
func archiveFloor(w fsm.WorldInfo) uint64 {
	if w.Imported > 0 && w.Incarnation > 0 {
		return min(w.Imported, w.Incarnation)
	}
	return cmp.Or(w.Imported, w.Incarnation)
}

// restoreFloor is the lowest log index of w's archived events a
// restore's reconcile keeps (0: all of them): for an imported world its
// import index, unless the archive is marked for its incarnation
// (markMoved: this node applied its import, or stored its events from
// before the import, and the bucket holds nothing else), which keeps them
// all. A world moved away from this group and back, or one copied from
// several homes, holds events below its import index that are its own
// (the earlier stay's, with this group's indexes; other groups', with
// theirs): no single floor separates them from an earlier incarnation's.
// Without the mark, an earlier incarnation's events on this group, of a
// node that missed its delete, could pass for them.
func (a *archive) restoreFloor(w fsm.WorldInfo) uint64 {
	if w.Imported > 0 {
		if inc, err := a.movedMark(w.ID); err == nil && inc == w.Incarnation {
			return 0
		}
		return w.Imported
	}
	return w.Incarnation
}

// markMoved records that the archive holds only events of world's
// incarnation inc, those from before its import included.
func (a *archive) markMoved(world string, inc uint64) error {
	return a.update(func(tx *bolt.Tx) error { return tx.Bucket(movedBucket).Put([]byte(world), seqKey(inc)) })
}

// movedMark returns the incarnation markMoved recorded for world (0:
// none).
func (a *archive) movedMark(world string) (uint64, error) {
	var inc uint64
	err := a.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(movedBucket).Get([]byte(world)); len(v) == 8 {
			inc = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return inc, err
}

// ArchiveHoles returns the ranges of world's seqs from 1 to to that this
// node's archive does not hold, whatever retention deleted: what a moved
// world's copy (FillMoved) still lacks up to its fence.
func (s *Store) ArchiveHoles(world string, to uint64) ([]Range, error) {
	if to == 0 {
		return nil, nil
	}
	return s.arch.holes(world, 0, to)
}

// markMovedRefill marks world's archive as holding its events from before
// its import (markMoved) when a refill is about to store some: events of
// an imported world below its import index.
func (s *Store) markMovedRefill(world string, evs []*fsm.Event) error {
	w, err := s.fsm.World(world)
	if err != nil || w.Imported == 0 || len(evs) == 0 || evs[0].Index >= w.Imported {
		return nil
	}
	return s.arch.markMoved(world, w.Incarnation)
}
