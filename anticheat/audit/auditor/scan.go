package auditor

import "github.com/gsd-dev/gsd/anticheat/audit"

// scan retires the incarnations of worlds deleted since the last scan
// (gone, or created again), stops following those no longer listed here
// that are not known deleted (Placement: moved, moving, or a group or the
// map behind; asked about again at every scan), and starts a follower for
// every world of the source without a running one.
func (a *Auditor) scan() {
	infos := a.src.Worlds()
	live := make(map[string]uint64, len(infos))
	for _, w := range infos {
		live[w.ID] = w.Incarnation
	}
	place, _ := a.src.(Placement)
	a.mu.Lock()
	var gone []*world
	left := map[*world]*audit.Log{} // its log, nil when its store never opened
	if place != nil {
		for t, w := range a.old { // kept aside while another incarnation is listed: deleted since?
			if w.keptAside() && place.Deleted(t.id, t.inc) {
				gone = append(gone, w)
			}
		}
	}
	for id, w := range a.worlds {
		inc, ok := live[id]
		switch {
		case ok && inc == w.inc:
			continue
		case place != nil && !place.Deleted(id, w.inc):
			left[w] = w.log // kept: never buried on an absence alone
			if ok {         // another incarnation listed: this one is kept aside
				delete(a.worlds, id)
				a.old[tree{id, w.inc}] = w
			}
			continue
		}
		gone = append(gone, w)
		delete(a.worlds, id)
		a.old[tree{id, w.inc}] = w
	}
	a.mu.Unlock()
	for w, l := range left {
		w.mu.Lock()
		if !w.away && l != nil {
			why := "not listed on this node now (its group or this node's shard map may be catching up)"
			if place.Away(w.id, w.inc) {
				why = "moved or moving to another group (its audit log goes on where it is imported)"
			}
			a.log.Info("audit log of a world "+why+": kept without a tombstone, not followed here unless it is listed again", "world", w.id, "incarnation", w.inc, "size", l.Size())
		}
		w.away = true
		if w.running {
			w.stop()
		}
		w.mu.Unlock()
	}
	for _, w := range gone {
		w.mu.Lock()
		w.retired = true
		bury := !w.running
		if w.running && place != nil && w.home != place.Home(w.id) {
			// Its feed, at a group the world left, holds nothing more:
			// stopped, it buries the tree (one that drains its feed
			// buries it when the feed ends at the delete).
			w.stop()
		}
		w.mu.Unlock()
		if bury {
			a.bury(w)
		}
	}
	for _, w := range infos {
		a.follow(w, a.home(w.ID))
	}
}

// keptAside reports a world incarnation kept without a tombstone and not
// followed (Placement): not known deleted.
func (w *world) keptAside() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.away && !w.retired
}
