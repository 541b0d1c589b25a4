package store

// maxDeletions bounds the deleted incarnations a replica remembers: the
// oldest is forgotten first (its auditor then keeps that tree without a
// tombstone, as for a delete before the process started).
const maxDeletions = 4096

// deletions are the world incarnations this replica saw deleted since the
// process started (applied CmdDeleteWorld of a world that was not fenced),
// the oldest first.
type deletions struct {
	set   map[deletion]struct{}
	order []deletion
}

type deletion struct {
	world string
	inc   uint64
}

func (d *deletions) add(world string, inc uint64) {
	k := deletion{world, inc}
	if _, ok := d.set[k]; ok {
		return
	}
	if d.set == nil {
		d.set = make(map[deletion]struct{})
	}
	if len(d.order) == maxDeletions {
		delete(d.set, d.order[0])
		d.order = d.order[1:]
	}
	d.set[k] = struct{}{}
	d.order = append(d.order, k)
}

func (d *deletions) has(world string, inc uint64) bool {
	_, ok := d.set[deletion{world, inc}]
	return ok
}

// Deleted reports whether this replica applied the deletion of world's
// incarnation inc while the world lived here, not fenced, since the
// process started (the newest 4096 such deletions are remembered): the
// positive evidence an auditor under a shard map needs before it writes a
// tombstone. The drop of a world that moved away (fenced) is not one: it
// lives on at its new home. false says nothing: not applied yet, before
// the process started, or not of this group.
func (s *Store) Deleted(world string, inc uint64) bool {
	s.adapter.mu.Lock()
	defer s.adapter.mu.Unlock()
	return s.adapter.deleted.has(world, inc)
}
