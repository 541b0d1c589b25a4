package auditor

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
)

// bury writes the tombstone of w, a deleted incarnation whose follower
// has stopped: its tree's final checkpoint, marked as a tombstone, with
// the log index and time of the last event logged.
func (a *Auditor) bury(w *world) {
	if w.log == nil {
		return // its store never opened: no tree to end
	}
	cp, err := w.log.Checkpoint()
	if err == nil {
		w.mu.Lock()
		cp.Tombstone, cp.LastIndex, cp.LastTime = true, uint64(w.last[0]), w.last[1]
		w.mu.Unlock()
		err = a.stores.PutTombstone(w.id, w.inc, cp.Text())
	}
	if err != nil {
		a.log.Error("audit tombstone not written", "world", w.id, "incarnation", w.inc, "err", err)
		return
	}
	w.mu.Lock()
	w.tombstone = cp.Text()
	w.mu.Unlock()
	a.log.Info("audit tree of a deleted world ended by its tombstone", "world", w.id, "incarnation", w.inc, "size", cp.Size)
}

// buryOlder, called with a.mu held, writes the tombstones of world id's
// stored trees that have none, but for incarnation inc when live: deleted
// while the node was down, so the last event's index and time are not
// known (0). Under a shard map (Placement) only an incarnation known
// deleted (Placement.Deleted) is buried: one missing from a lagging
// group's or map's list may live on.
func (a *Auditor) buryOlder(id string, live bool, inc uint64) {
	incs, err := a.stores.Incarnations(id)
	if err != nil {
		a.log.Error("audit trees of older incarnations not listed", "world", id, "err", err)
		return
	}
	place, _ := a.src.(Placement)
	for _, old := range incs {
		if live && old == inc || a.old[tree{id, old}] != nil {
			continue // the current one, or one retired since New (its follower buries it)
		}
		if place != nil && !place.Deleted(id, old) {
			continue // under a shard map, buried only on evidence of its deletion
		}
		text, err := a.stores.Tombstone(id, old)
		if err != nil || text != "" {
			continue // read again when asked for
		}
		w := &world{id: id, inc: old, retired: true}
		if w.log, err = a.openOld(id, old); err != nil {
			a.log.Error("audit tree of a deleted incarnation cannot be opened", "world", id, "incarnation", old, "err", err)
			continue
		}
		a.bury(w)
	}
}

// buryGone, at the start of Run, writes the tombstones of the stored
// trees of worlds the node no longer holds (deleted for good while it was
// down) that have none.
func (a *Auditor) buryGone() {
	stored, err := a.stores.Worlds()
	if err != nil {
		a.log.Error("audit trees not listed", "err", err)
		return
	}
	infos := a.src.Worlds()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range stored {
		if !slices.ContainsFunc(infos, func(info fsm.WorldInfo) bool { return info.ID == id }) {
			a.buryOlder(id, false, 0)
		}
	}
}

// NoTree is the error for an incarnation of world id of which this node
// has no audit tree (never created, or its tree dropped): the edge answers
// it, word for word, to a caller who may not learn whether an incarnation
// whose rules it does not know existed.
func NoTree(id string, inc uint64) error {
	return fmt.Errorf("%w: %s incarnation %d (no audit tree of it on this node)", fsm.ErrUnknownWorld, id, inc)
}

// incarnation returns world id's incarnation inc with an open log: the
// current one, one that moved to a group this node does not run, or a
// deleted one whose tree this node keeps.
func (a *Auditor) incarnation(id string, inc uint64) (*world, error) {
	w, _, err := a.world(id)
	switch {
	case err == nil && w.inc == inc:
		return w, nil
	case errors.Is(err, ErrNotReady):
		return nil, err // a tree opened now as deleted could be a live one's
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.worlds[id]; w != nil && w.inc == inc && w.log != nil {
		return w, nil // moved to a group this node does not run: its tree up to the move
	}
	if w := a.old[tree{id, inc}]; w != nil && w.log != nil {
		return w, nil
	}
	incs, err := a.stores.Incarnations(id)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", id, err)
	}
	if !slices.Contains(incs, inc) {
		return nil, NoTree(id, inc)
	}
	l, err := a.openOld(id, inc)
	if err != nil {
		return nil, err
	}
	text, err := a.stores.Tombstone(id, inc)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", id, err)
	}
	w = &world{id: id, inc: inc, log: l, retired: true, tombstone: text}
	a.old[tree{id, inc}] = w
	return w, nil
}

// LogOf returns the audit log of world id's incarnation inc: the current
// one's, or a deleted one's while this node keeps its tree.
func (a *Auditor) LogOf(id string, inc uint64) (*audit.Log, error) {
	w, err := a.incarnation(id, inc)
	if err != nil {
		return nil, err
	}
	return w.log, nil
}

// CheckpointOf returns the newest signed checkpoint of world id's
// incarnation inc: for a deleted one, its tombstone (signed when asked:
// ed25519 signs the same text alike every time).
func (a *Auditor) CheckpointOf(id string, inc uint64) ([]byte, error) {
	w, err := a.incarnation(id, inc)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	text := w.tombstone
	w.mu.Unlock()
	if text == "" { // the current incarnation, or a deleted one whose tombstone is not written yet
		return a.sign(w, w.log, false)
	}
	if len(a.cfg.Signers) == 0 {
		return nil, ErrNoKey
	}
	cp, err := audit.ParseCheckpoint(text)
	if err != nil {
		return nil, fmt.Errorf("audit tombstone of %s incarnation %d: %w", id, inc, err)
	}
	return audit.SignCheckpoint(cp, a.cfg.Signers...)
}
