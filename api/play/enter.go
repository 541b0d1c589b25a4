package play

import (
	"slices"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Enter and leave (issue 11): with a grid, a connection learns an
// entity's fields from the events that change them, so an entity that
// comes into its area (the player moved, or the entity did) would show
// only the fields changed after. The hub sends such an entity whole
// instead, in an "enter" message: every field the connection's view may
// see, as the node's applied state has it (at or after the connection's
// position: the versions say which is newer). An attached connection gets
// everything it is interested in when it attaches, which a new or resumed
// connection does once it has caught up with the hub: its whole area, the
// entities without a position and, with a team field, its team's entities
// wherever they are, in an enter marked whole (the client drops what it
// holds that is not listed). Then the entities of the cells its area gains
// when the player changes cell, each entity that moves from outside its
// area into it, and each far entity that joins the player's team; a
// player who changes team gets a whole enter again. What stops being of
// interest (its cell left the area, it walked out, or a far entity left
// the team) is named in a "leave" message, and its changes still pending
// in the connection's delta are dropped. With team interest only (no
// grid) neither is sent.

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

// indexed adds e, as it is now, to the cell and team indexes (with a grid).
func (ix *interestIndex) indexed(id string, e *entInterest) {
	if ix.cfg.Cell > 0 && e.exists {
		x, y, ok := e.cell(ix.cfg.Cell)
		ix.place(id, cellKey{x, y}, ok)
		ix.join(id, e.team)
	}
}

// deleted removes e, as it is now, from the cell and team indexes.
func (ix *interestIndex) deleted(id string, e *entInterest) {
	if ix.cfg.Cell > 0 && e.exists {
		x, y, ok := e.cell(ix.cfg.Cell)
		ix.unplace(id, cellKey{x, y}, ok)
		ix.quit(id, e.team)
	}
}

// join adds entity id to team's members (with a team field).
func (ix *interestIndex) join(id, team string) {
	if ix.cfg.Team == "" || team == "" {
		return
	}
	in := ix.teams[team]
	if in == nil {
		in = make(map[string]struct{})
		ix.teams[team] = in
	}
	in[id] = struct{}{}
}

// quit removes entity id from team's members.
func (ix *interestIndex) quit(id, team string) {
	if team == "" {
		return
	}
	delete(ix.teams[team], id)
	if len(ix.teams[team]) == 0 {
		delete(ix.teams, team)
	}
}

// teamSwitch is an entity whose team changed in the index's last update
// (existed: it was there before; a new entity's event shows it whole).
type teamSwitch struct {
	id, from, to string
	existed      bool
}

// switched re-indexes e's team after a change from team (existed: it was
// indexed), recording the switch (with a grid and a team field).
func (ix *interestIndex) switched(id string, e *entInterest, team string, existed bool) {
	if ix.cfg.Cell <= 0 || ix.cfg.Team == "" || existed && e.team == team {
		return
	}
	if existed {
		ix.quit(id, team)
	} else {
		team = ""
	}
	ix.join(id, e.team)
	if team != e.team {
		ix.switches = append(ix.switches, teamSwitch{id: id, from: team, to: e.team, existed: existed && e.born != ix.gen})
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
	ix.movers = append(ix.movers, mover{id: id, from: from, to: to, fromOK: fromOK && existed && e.born != ix.gen, toOK: toOK})
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

// entering returns the entities that come into the interest of a player
// whose area was last sent at st and whose cell now is (now, nowOK) and
// team team, from the index's state and its last update's movers and
// switches. whole: nothing was sent yet (or the player changed team), so
// ids are everything the player is interested in: its area, the global
// entities and its team's.
func (ix *interestIndex) entering(st enterState, now cellKey, nowOK bool, team string) (ids []string, whole bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r := int64(ix.cfg.Radius)
	whole = !st.known || st.team != team
	if whole {
		for id := range ix.global {
			ids = append(ids, id)
		}
		if ix.cfg.Team != "" && team != "" {
			for id := range ix.teams[team] {
				ids = append(ids, id)
			}
		}
	}
	had := !whole && st.ok
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
	if whole {
		return sortedIDs(ids), true
	}
	if had && nowOK {
		// Movers into the part of the area the player already had, from a
		// cell outside it (one without a position was global, so known).
		for _, m := range ix.movers {
			if m.toOK && inArea(m.to, now, r) && inArea(m.to, st.cell, r) && m.fromOK && !inArea(m.from, st.cell, r) && ix.near(m.id, now, r) {
				ids = append(ids, m.id)
			}
		}
	}
	// Far entities that joined the player's team (near ones are known).
	for _, sw := range ix.switches {
		if sw.existed && team != "" && sw.to == team && ix.far(sw.id, now, nowOK, r) && ix.ents[sw.id].team == team {
			ids = append(ids, sw.id)
		}
	}
	return sortedIDs(ids), false
}

// leaving returns the entities that are no longer of interest to a player
// whose area was last sent at st and whose cell now is (now, nowOK) and
// team team (the same), from the index's state and its last update's
// movers and switches: the entities of the cells its area lost, those that
// walked out of it, and far ones that left its team; never its team's, the
// global ones or its own (player).
func (ix *interestIndex) leaving(st enterState, now cellKey, nowOK bool, player, team string) []string {
	if !st.known || st.team != team {
		return nil // a whole enter follows: it replaces everything
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r := int64(ix.cfg.Radius)
	var ids []string
	if st.ok && (!nowOK || st.cell != now) {
		var came map[string]bool // movers from outside the old area: never known
		for _, m := range ix.movers {
			if !m.fromOK || !inArea(m.from, st.cell, r) {
				if came == nil {
					came = make(map[string]bool)
				}
				came[m.id] = true
			}
		}
		for x := st.cell.x - r; x <= st.cell.x+r; x++ {
			for y := st.cell.y - r; y <= st.cell.y+r; y++ {
				k := cellKey{x, y}
				if nowOK && inArea(k, now, r) {
					continue
				}
				for id := range ix.cells[k] {
					if !came[id] {
						ids = append(ids, id)
					}
				}
			}
		}
	}
	if st.ok {
		// Movers from the old area to a cell outside both areas.
		for _, m := range ix.movers {
			if m.fromOK && m.toOK && inArea(m.from, st.cell, r) && !inArea(m.to, st.cell, r) && !(nowOK && inArea(m.to, now, r)) {
				ids = append(ids, m.id)
			}
		}
	}
	// Far entities that left the player's team.
	for _, sw := range ix.switches {
		if team != "" && sw.from == team && ix.far(sw.id, now, nowOK, r) {
			ids = append(ids, sw.id)
		}
	}
	return slices.DeleteFunc(sortedIDs(ids), func(id string) bool {
		e := ix.ents[id]
		return id == player || e != nil && ix.cfg.Team != "" && team != "" && e.team == team
	})
}

// leftTeam reports whether entity id left team in the last update.
func (ix *interestIndex) leftTeam(id, team string) bool {
	if team == "" {
		return false
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return slices.ContainsFunc(ix.switches, func(sw teamSwitch) bool { return sw.id == id && sw.from == team })
}

// far reports whether entity id has a cell outside the area around
// (now, nowOK) (a player without a cell has no area). ix.mu is held.
func (ix *interestIndex) far(id string, now cellKey, nowOK bool, r int64) bool {
	e := ix.ents[id]
	if e == nil || !e.exists {
		return false
	}
	x, y, ok := e.cell(ix.cfg.Cell)
	return ok && !(nowOK && inArea(cellKey{x, y}, now, r))
}

// near reports whether entity id has, at the update's end, a cell in the
// area around now (a mover's to may be a cell it left again within the
// update). ix.mu is held.
func (ix *interestIndex) near(id string, now cellKey, r int64) bool {
	e := ix.ents[id]
	if e == nil || !e.exists {
		return false
	}
	x, y, ok := e.cell(ix.cfg.Cell)
	return ok && inArea(cellKey{x, y}, now, r)
}

// sortedIDs sorts ids and drops repeats.
func sortedIDs(ids []string) []string {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// enterState is what a member's interest was when the hub last sent it
// (h.mu guards it).
type enterState struct {
	known bool    // an area was sent since the member attached
	cell  cellKey // the player's cell then
	ok    bool    // the player had a cell
	team  string  // the player's team then
}

// snap is one entity as a view sees it, read at world seq seq (nil: gone
// or nothing visible).
type snap struct {
	we  *wire.WatchEntity
	seq uint64
}

// anyMovers reports whether an entity changed cell or team in the last
// update.
func (ix *interestIndex) anyMovers() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.movers) > 0 || len(ix.switches) > 0
}

// bulkMoves reports whether only bulk events (those of hevs that make no
// events frame) moved entities in or out of cells in the index's last
// update, and none switched team: the enter and leave messages they make
// can wait for the frames around them (outbox.lazy), as the moves' own
// changes wait for the tick's delta. A critical event's are sent at once.
func (ix *interestIndex) bulkMoves(hevs []*hubEvent) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if len(ix.switches) > 0 {
		return false
	}
	for _, he := range hevs {
		if he.frame == nil {
			continue
		}
		for _, id := range he.entities {
			if slices.ContainsFunc(ix.movers, func(m mover) bool { return m.id == id }) {
				return false
			}
		}
	}
	return true
}

// enterAs sends c, whose player's record is me, the entities that came
// into its interest since the hub last looked, and names those that left
// it (h.mu held); false when c's queue is full. moved: an entity changed
// cell or team in the batch (without one, and with the player in the cell
// and team it was, nothing can have come or gone). *snaps caches the
// snapshots of one batch, shared by the members; it is made on the first
// one. seq is the batch's last event. lazy: the messages do not wake c's
// writer (outbox.lazy): bulk moves made them.
func (h *hub) enterAs(c *playConn, me entInterest, moved bool, snaps *map[string]snap, seq uint64, lazy bool) bool {
	if h.idx.cfg.Cell <= 0 {
		return true
	}
	x, y, ok := me.cell(h.idx.cfg.Cell)
	now := cellKey{x, y}
	if c.area.known && !moved && c.area.ok == ok && (!ok || c.area.cell == now) && c.area.team == me.team {
		return true
	}
	d := h.areaDiff(c, now, ok, me.team, snaps)
	gone := without(d.gone, c.player)
	if g := h.groupOf[c]; g != nil && len(gone) > 0 {
		g.dropGone(gone) // its pending delta is its group's (cells.go)
	}
	ids, whole := d.ids, d.whole
	if !whole {
		// The player's own entity reaches it always: it walked with it.
		ids = without(ids, c.player)
	}
	c.area = enterState{known: true, cell: now, ok: ok, team: me.team}
	if len(gone) > 0 && !c.ob.leave(d.leaveMsg(h.world, gone, seq), lazy) {
		c.area.known = false // sent whole again once it attaches again
		return false
	}
	if len(ids) == 0 && !whole {
		return true
	}
	msg := d.enterMsg(h, ids, snaps)
	if msg == nil {
		return true
	}
	if !c.ob.enter(msg, lazy) {
		c.area.known = false // sent whole again once it attaches again
		return false
	}
	return true
}

// areaChange is what came into and left the interest of a player whose
// area was last sent at one enterState and who now stands in one cell and
// team (enterAs): the same for every player there but for the player's
// own id, which it may hold; and the messages that say so, made once for
// the players whose id it does not hold. The members of a cell group share
// it (cells.go).
type areaChange struct {
	gone  []string
	ids   []string
	whole bool

	leave   *sharedMsg
	enter   *sharedMsg
	entered bool // enter is made (nil: nothing to send)
}

// areaDiff returns what came into and left c's interest since its area
// was last sent, with its player now at (now, ok) in team (h.mu held):
// once per batch for the members of a cell group, whose areas are the
// same.
func (h *hub) areaDiff(c *playConn, now cellKey, ok bool, team string, snaps *map[string]snap) *areaChange {
	g := h.groupOf[c]
	if g != nil && g.diffAt == h.batches {
		return &g.diff
	}
	d := areaChange{gone: h.idx.leaving(c.area, now, ok, "", team)}
	if h.pv != nil && len(d.gone) > 0 {
		// Name only what the view may see: the index has every entity,
		// and an id the enter never named would tell where it stood.
		// A team mate that left the team was seen (its team's fields):
		// it is named whatever the view sees of it now.
		if *snaps == nil {
			*snaps = make(map[string]snap)
		}
		d.gone = slices.DeleteFunc(d.gone, func(id string) bool {
			if h.idx.leftTeam(id, c.area.team) {
				return false
			}
			sn, seen := (*snaps)[id]
			if !seen {
				sn = h.snapshot(id)
				(*snaps)[id] = sn
			}
			return sn.we == nil
		})
	}
	d.ids, d.whole = h.idx.entering(c.area, now, ok, team)
	if g == nil {
		return &d
	}
	g.diff, g.diffAt = d, h.batches
	return &g.diff
}

// leaveMsg returns the leave message naming gone (d's, or d's without
// the player's own id) at seq.
func (d *areaChange) leaveMsg(world string, gone []string, seq uint64) *sharedMsg {
	if len(gone) == len(d.gone) && d.leave != nil {
		return d.leave
	}
	sm := &sharedMsg{leave: &wire.Leave{Type: wire.TypeLeave, World: world, Seq: seq, IDs: gone}}
	if len(gone) == len(d.gone) {
		d.leave = sm
	}
	return sm
}

// enterMsg returns the enter message of the entities ids (d's, or d's
// without the player's own id) as the batch's snapshots have them; nil
// when it would carry nothing (and is not whole).
func (d *areaChange) enterMsg(h *hub, ids []string, snaps *map[string]snap) *sharedMsg {
	mine := len(ids) != len(d.ids)
	if !mine && d.entered {
		return d.enter
	}
	if *snaps == nil {
		*snaps = make(map[string]snap)
	}
	msg := &wire.Keyframe{Type: wire.TypeEnter, World: h.world, Entities: make(map[string]wire.WatchEntity, len(ids)), Whole: d.whole}
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
	var sm *sharedMsg
	if len(msg.Entities) > 0 || d.whole {
		sm = &sharedMsg{enter: msg}
	}
	if !mine {
		d.enter, d.entered = sm, true
	}
	return sm
}

// without returns ids without id: ids itself when it does not hold it,
// else a copy (ids may be shared).
func without(ids []string, id string) []string {
	if !slices.Contains(ids, id) {
		return ids
	}
	return slices.DeleteFunc(slices.Clone(ids), func(x string) bool { return x == id })
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
	vals := make([]wire.Value, len(v.Fields)) // the fields' values: one allocation
	for i, f := range v.Fields {
		if f.Policy == fsm.PolicySet {
			we.Fields[f.Name] = wire.WatchField{IsSet: true, Set: f.Set, Version: f.Version}
			continue
		}
		vals[i] = f.Value
		we.Fields[f.Name] = wire.WatchField{Value: &vals[i], Version: f.Version}
	}
	return snap{we: we, seq: v.Seq}
}
