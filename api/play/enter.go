package play

import (
	"slices"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Enter snapshots (issue 11): with a grid, a connection learns an entity's
// fields from the events that change them, so an entity that comes into
// its area (the player moved, or the entity did) would show only the
// fields changed after. The hub sends such an entity whole instead, in an
// "enter" message: every field the connection's view may see, as the
// node's applied state has it (at or after the connection's position:
// the versions say which is newer). An attached connection gets its whole
// area (and the entities without a position) when it attaches, which a
// new or resumed connection does once it has caught up with the hub; then
// the entities of the cells its area gains when the player changes cell,
// and each entity that moves from outside its area into it. Entities that
// leave the area are not announced (the client may drop what stops
// changing), and with team interest only (no grid) nothing is sent.

// mover is an entity whose cell changed in the index's last update.
type mover struct {
	id           string
	from, to     cellKey
	fromOK, toOK bool
}

// place adds entity id at cell k (ok: it has one, else it is global) to
// the cell index.
func (ix *interestIndex) place(id string, k cellKey, ok bool) {
	if !ok {
		ix.global[id] = struct{}{}
		return
	}
	in := ix.cells[k]
	if in == nil {
		in = make(map[string]struct{})
		ix.cells[k] = in
	}
	in[id] = struct{}{}
}

// unplace removes entity id from cell k (or the global ones).
func (ix *interestIndex) unplace(id string, k cellKey, ok bool) {
	if !ok {
		delete(ix.global, id)
		return
	}
	delete(ix.cells[k], id)
	if len(ix.cells[k]) == 0 {
		delete(ix.cells, k)
	}
}

// indexed adds e, as it is now, to the cell index (with a grid).
func (ix *interestIndex) indexed(id string, e *entInterest) {
	if ix.cfg.Cell > 0 && e.exists {
		x, y, ok := e.cell(ix.cfg.Cell)
		ix.place(id, cellKey{x, y}, ok)
	}
}

// deleted removes e, as it is now, from the cell index.
func (ix *interestIndex) deleted(id string, e *entInterest) {
	if ix.cfg.Cell > 0 && e.exists {
		x, y, ok := e.cell(ix.cfg.Cell)
		ix.unplace(id, cellKey{x, y}, ok)
	}
}

// moved re-indexes e after a change, from the cell it had before (fromOK:
// it had one; existed: it was indexed), recording it as a mover when its
// cell changed.
func (ix *interestIndex) moved(id string, e *entInterest, from cellKey, fromOK, existed bool) {
	if ix.cfg.Cell <= 0 {
		return
	}
	x, y, toOK := e.cell(ix.cfg.Cell)
	to := cellKey{x, y}
	if existed && fromOK == toOK && (!toOK || from == to) {
		return
	}
	if existed {
		ix.unplace(id, from, fromOK)
	}
	ix.place(id, to, toOK)
	ix.movers = append(ix.movers, mover{id: id, from: from, to: to, fromOK: fromOK && existed, toOK: toOK})
}

// seedAll indexes a world's entities (the hub's start: an area snapshot
// needs every entity of the area, not only those events have touched).
func (ix *interestIndex) seedAll(ents []fsm.EntityView) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, v := range ents {
		if ix.ents[v.ID] != nil {
			continue
		}
		e := &entInterest{exists: true}
		for _, f := range v.Fields {
			ix.set(e, f.Name, f.Value, true)
		}
		ix.ents[v.ID] = e
		ix.indexed(v.ID, e)
	}
}

// inArea reports whether cell k is within r cells of center c.
func inArea(k, c cellKey, r int64) bool {
	return abs(k.x-c.x) <= r && abs(k.y-c.y) <= r
}

// entering returns the entities that come into the area of a player whose
// area was last sent at st and whose cell now is (now, nowOK), from the
// index's state and its last update's movers: with no area sent yet, the
// whole area and the global entities.
func (ix *interestIndex) entering(st enterState, now cellKey, nowOK bool) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r := int64(ix.cfg.Radius)
	var ids []string
	if !st.known {
		for id := range ix.global {
			ids = append(ids, id)
		}
	}
	had := st.known && st.ok
	if nowOK && (!had || st.cell != now) {
		for x := now.x - r; x <= now.x+r; x++ {
			for y := now.y - r; y <= now.y+r; y++ {
				k := cellKey{x, y}
				if had && inArea(k, st.cell, r) {
					continue
				}
				for id := range ix.cells[k] {
					ids = append(ids, id)
				}
			}
		}
	}
	if !had || !nowOK {
		return ids
	}
	// Movers into the part of the area the player already had, from a
	// cell outside it (one without a position was global, so known).
	for _, m := range ix.movers {
		if m.toOK && inArea(m.to, now, r) && inArea(m.to, st.cell, r) && m.fromOK && !inArea(m.from, st.cell, r) {
			ids = append(ids, m.id)
		}
	}
	return ids
}

// enterState is where a member's area stood when the hub last sent it
// (h.mu guards it).
type enterState struct {
	known bool    // an area was sent since the member attached
	cell  cellKey // the player's cell then
	ok    bool    // the player had a cell
}

// snap is one entity as a view sees it, read at world seq seq (nil: gone
// or nothing visible).
type snap struct {
	we  *wire.WatchEntity
	seq uint64
}

// anyMovers reports whether an entity changed cell in the last update.
func (ix *interestIndex) anyMovers() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.movers) > 0
}

// enterAs sends c, whose player's record is me, the entities that came
// into its area since the hub last looked (h.mu held); false when c's
// queue is full. moved: an entity changed cell in the batch (without one,
// and with the player in the cell it was, nothing can have come in).
// *snaps caches the snapshots of one batch, shared by the members; it is
// made on the first one.
func (h *hub) enterAs(c *playConn, me entInterest, moved bool, snaps *map[string]snap) bool {
	if h.idx.cfg.Cell <= 0 {
		return true
	}
	x, y, ok := me.cell(h.idx.cfg.Cell)
	now := cellKey{x, y}
	if c.area.known && !moved && c.area.ok == ok && (!ok || c.area.cell == now) {
		return true
	}
	ids := h.idx.entering(c.area, now, ok)
	if c.area.known {
		// The player's own entity reaches it always: it walked with it.
		ids = slices.DeleteFunc(ids, func(id string) bool { return id == c.player })
	}
	c.area = enterState{known: true, cell: now, ok: ok}
	if len(ids) == 0 {
		return true
	}
	if *snaps == nil {
		*snaps = make(map[string]snap)
	}
	msg := &wire.Keyframe{Type: wire.TypeEnter, World: h.world, Entities: make(map[string]wire.WatchEntity, len(ids))}
	for _, id := range ids {
		sn, seen := (*snaps)[id]
		if !seen {
			sn = h.snapshot(id)
			(*snaps)[id] = sn
		}
		if sn.we != nil {
			msg.Entities[id] = *sn.we
			msg.Seq = max(msg.Seq, sn.seq)
		}
	}
	if len(msg.Entities) == 0 {
		return true
	}
	if !c.ob.enter(msg) {
		c.area.known = false // sent whole again once it attaches again
		return false
	}
	return true
}

// snapshot reads an entity from the node's applied state, cut to the
// hub's view.
func (h *hub) snapshot(id string) snap {
	v, err := h.idx.lookup(id)
	if err != nil {
		return snap{}
	}
	if h.pv != nil {
		lookup := func(id string) (fsm.EntityView, bool) {
			e, err := h.idx.lookup(id)
			return e, err == nil
		}
		var seen bool
		if v, seen = h.pv.access.Entity(h.pv.view, v, lookup, h.s.vis.TeamOf(h.world, h.pv.access)); !seen {
			return snap{}
		}
	}
	we := &wire.WatchEntity{Version: v.Version, Fields: make(map[string]wire.WatchField, len(v.Fields))}
	for _, f := range v.Fields {
		if f.Policy == fsm.PolicySet {
			we.Fields[f.Name] = wire.WatchField{IsSet: true, Set: f.Set, Version: f.Version}
			continue
		}
		val := f.Value
		we.Fields[f.Name] = wire.WatchField{Value: &val, Version: f.Version}
	}
	return snap{we: we, seq: v.Seq}
}
