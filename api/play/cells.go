package play

import (
	"math"
	"slices"
	"sync"

	"github.com/gsd-dev/gsd/wire"
)

// Frames shared per interest cell (issue 11): with a grid, the attached
// members whose player stands in the same cell with the same team (a hub
// serves one view) want the same events, but for their own player's:
// those of the entities without a position, of their team's entities and
// of the cells around theirs. Each such group has a stream of its own, an
// outbox the hub offers the group's share of each batch once (its bulk
// changes merged once, into one pending delta) and whose frames, encoded
// once per codec, it queues on every member, as the shared stream does
// with interest off (hub.go). What stays per member: its enter and leave
// messages (enter.go), and its own player's events that its group's share
// lacks (an action of the player on far entities only, a rejection):
// a member that has one in a batch, whose player changed cell or team, or
// whose queue has no room for the group's next frame leaves the group
// before the batch, with a copy of the group's pending delta, and gets its
// own offers (or reads on alone) until a tick finds its area where a
// group's stream stands again.

// groupKey names the members that see the same neighbourhood: their
// player's cell (ok: it has one) and team, as their area was last sent
// (enterState).
type groupKey struct {
	cell cellKey
	ok   bool
	team string
}

func (st enterState) key() groupKey { return groupKey{cell: st.cell, ok: st.ok, team: st.team} }

// cellGroup is one groupKey's stream and members (h.mu guards it).
type cellGroup struct {
	key     groupKey
	ob      *outbox
	members map[*playConn]struct{}

	// The group's share of the hub's current batch (shareAll) and the
	// frames it made, reused.
	sel []*hubEvent
	idx []int
	sfs []*sharedFrame
	// What came into and left its members' interest in the hub's batch
	// diffAt, the same for all of them, and its messages (enter.go).
	diff   areaChange
	diffAt uint64
}

// keyOf is the group of a player whose record is me.
func (ix *interestIndex) keyOf(me entInterest) groupKey {
	x, y, ok := me.cell(ix.cfg.Cell)
	return groupKey{cell: cellKey{x, y}, ok: ok, team: me.team}
}

// shareAll computes every group's share of the hub's current batch,
// planned as p (h.mu held): the events that every player whose cell and
// team are the group's wants, sorted, each once: those without a
// position, its team's and those of the cells around its cell. Each
// event's cell adds it to the groups around that cell (groupsAt) rather
// than each group looking up every cell around its own: a batch touches
// a few cells, a grid has a group per cell with players.
func (h *hub) shareAll(p *interestPlan, hevs []*hubEvent) {
	team := h.idx.cfg.Team != ""
	for _, g := range h.groups {
		g.idx = append(g.idx[:0], p.global...)
		if team && g.key.team != "" {
			g.idx = append(g.idx, p.byTeam[g.key.team]...)
		}
	}
	r := int64(h.idx.cfg.Radius)
	for k, in := range p.byCell {
		h.groupsAround(k, r, func(g *cellGroup) { g.idx = append(g.idx, in...) })
	}
	for _, g := range h.groups {
		slices.Sort(g.idx)
		g.idx = slices.Compact(g.idx)
		g.sel = g.sel[:0]
		for _, i := range g.idx {
			g.sel = append(g.sel, hevs[i])
		}
	}
}

// groupsAround calls fn for each group with a cell within r cells of k:
// through the cells around k, or through the groups when they are fewer.
func (h *hub) groupsAround(k cellKey, r int64, fn func(*cellGroup)) {
	if r > 64 || (2*r+1)*(2*r+1) > int64(len(h.groupsAt)) {
		for at, gs := range h.groupsAt {
			if inArea(at, k, r) {
				for _, g := range gs {
					fn(g)
				}
			}
		}
		return
	}
	for x := k.x - r; x <= k.x+r; x++ {
		for y := k.y - r; y <= k.y+r; y++ {
			for _, g := range h.groupsAt[cellKey{x, y}] {
				fn(g)
			}
		}
	}
}

// covers reports whether g's share holds every event of p that player
// wants for its own sake (its own, or one touching its entity).
func (g *cellGroup) covers(p *interestPlan, player string) bool {
	for _, own := range [2][]int{p.byPlayer[player], p.byEntity[player]} {
		for _, i := range own {
			if _, ok := slices.BinarySearch(g.idx, i); !ok {
				return false
			}
		}
	}
	return true
}

// framed reports whether g's share makes an events frame.
func (g *cellGroup) framed() bool {
	return slices.ContainsFunc(g.sel, func(he *hubEvent) bool { return he.frame != nil })
}

// fanCells offers a batch, planned as p, to the groups and their members
// (h.mu held): who leaves its group does so first, from the group's
// position before the batch, and is offered the batch as an attached
// member by fanout; then each group's share is offered once, its frames
// queued on its members, and each member is sent what came into and left
// its area (a member whose queue has no room for that goes on alone).
//
// Only some members are looked at one by one: a member's player that no
// event of the batch touches (by it or on its entity) stands where its
// group does, as it did when it joined or stayed last, and its group's
// share covers it; a member whose group's share makes no frame has room
// for it; and a member whose area (its group's) no mover and no team
// switch of the batch touches has nothing coming or going.
func (h *hub) fanCells(p *interestPlan, hevs []*hubEvent, moved, lazy bool, snaps *map[string]snap, last uint64) {
	if len(h.groupOf) == 0 {
		return
	}
	h.batches++
	h.shareAll(p, hevs)
	for _, own := range [2]map[string][]int{p.byPlayer, p.byEntity} {
		for player := range own {
			for _, c := range h.cellConns[player] {
				g := h.groupOf[c]
				if g == nil {
					continue // it left already, by the other map
				}
				if h.idx.keyOf(h.idx.get(player)) != g.key || !g.covers(p, player) {
					h.leaveGroup(c, g) // attached: fanout offers it the batch
				}
			}
		}
	}
	for _, g := range h.groups {
		if !g.framed() {
			continue
		}
		for c := range g.members {
			if c.ob.behind(false) {
				h.leaveGroup(c, g)
				h.detach(c)
			}
		}
	}
	for _, g := range h.groups {
		if len(g.sel) == 0 {
			g.ob.skip(last) // nothing to merge or frame
			continue
		}
		g.ob.offer(g.sel, nil) // no limit: it takes them all
		g.ob.skip(last)
		g.sfs = g.ob.takeSharedAppend(g.sfs)
		pos := g.ob.position()
		for c := range g.members {
			for _, sf := range g.sfs {
				c.ob.push(sf.item, pos)
			}
		}
		clear(g.sel) // the frames hold the events, not these buffers
		clear(g.sfs)
	}
	if !moved {
		return
	}
	for _, g := range h.groups {
		if !h.idx.touches(g.key) {
			continue
		}
		for c := range g.members {
			if !h.enterAs(c, h.idx.get(c.player), true, snaps, last, lazy) {
				h.leaveGroup(c, g)
				h.detach(c)
			}
		}
	}
}

// touches reports whether the index's last update moved an entity into
// or out of the area of the players whose cell and team are k's, or
// switched one's team: without, those players' areas lost and gained
// nothing (enterAs, as long as their own cell and team stay k's).
func (ix *interestIndex) touches(k groupKey) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if len(ix.switches) > 0 {
		return true
	}
	if !k.ok {
		return false
	}
	r := int64(ix.cfg.Radius)
	return slices.ContainsFunc(ix.movers, func(m mover) bool {
		return m.fromOK && inArea(m.from, k.cell, r) || m.toOK && inArea(m.to, k.cell, r)
	})
}

// joinCell makes attached member c a member of the group its area was
// last sent for, at a tick (h.mu held), if it stands where the group's
// stream does: its own pending delta is sealed into its queue first
// (outbox.join). A group is made for its first member.
func (h *hub) joinCell(c *playConn) bool {
	if h.ownOffers || h.idx == nil || h.idx.cfg.Cell <= 0 || !c.area.known {
		return false
	}
	k := c.area.key()
	g := h.groups[k]
	if g == nil {
		g = &cellGroup{key: k, ob: newOutbox(math.MaxInt, codecJSON), members: make(map[*playConn]struct{})}
		g.ob.start(h.next - 1)
	}
	if !c.ob.join(h.ticks, g.ob.position()) {
		return false
	}
	// A member whose position moved over filtered events only is owed a
	// progress frame (outbox.onTick): the stream's next one.
	g.ob.owe(c.ob.coveredSeq())
	if h.groups[k] == nil && k.ok {
		if h.groupsAt == nil {
			h.groupsAt = make(map[cellKey][]*cellGroup)
		}
		h.groupsAt[k.cell] = append(h.groupsAt[k.cell], g)
	}
	if h.groups == nil {
		h.groups = make(map[groupKey]*cellGroup)
		h.groupOf = make(map[*playConn]*cellGroup)
		h.cellConns = make(map[string][]*playConn)
	}
	h.groups[k] = g
	g.members[c] = struct{}{}
	h.groupOf[c] = g
	h.cellConns[c.player] = append(h.cellConns[c.player], c)
	h.members[c] = memberCell
	return true
}

// leaveGroup makes c, a member of g, go on alone as an attached member
// from g's position, with a copy of g's pending delta (h.mu held); the
// last member ends the group.
func (h *hub) leaveGroup(c *playConn, g *cellGroup) {
	c.ob.resume(g.ob.pending())
	h.dropCell(c)
	h.members[c] = memberAttached
}

// dropCell removes c from its group, if it has one (h.mu held).
func (h *hub) dropCell(c *playConn) {
	g := h.groupOf[c]
	if g == nil {
		return
	}
	delete(g.members, c)
	delete(h.groupOf, c)
	// A new slice, not one edited in place: fanCells may be ranging over
	// the old one.
	var cs []*playConn
	for _, o := range h.cellConns[c.player] {
		if o != c {
			cs = append(cs, o)
		}
	}
	if len(cs) > 0 {
		h.cellConns[c.player] = cs
	} else {
		delete(h.cellConns, c.player)
	}
	if len(g.members) == 0 {
		delete(h.groups, g.key)
		if g.key.ok {
			at := slices.DeleteFunc(h.groupsAt[g.key.cell], func(o *cellGroup) bool { return o == g })
			if len(at) > 0 {
				h.groupsAt[g.key.cell] = at
			} else {
				delete(h.groupsAt, g.key.cell)
			}
		}
	}
}

// tickCells flushes each group's pending delta to its members (h.mu held):
// a member that already holds sharedLagDeltas delta frames, or has no
// room, leaves first.
func (h *hub) tickCells() {
	for _, g := range h.groups {
		g.ob.onTick(h.ticks)
		if g.ob.dueDelta() {
			for c := range g.members {
				if c.ob.behind(true) {
					h.leaveGroup(c, g)
					h.detach(c)
				}
			}
		}
		sf := g.ob.takeSharedDelta()
		if sf == nil {
			continue
		}
		pos := g.ob.position()
		for c := range g.members {
			c.ob.push(sf.item, pos)
		}
	}
}

// dropGone drops from g's pending delta the changes of the entities that
// left its members' interest (gone, as enterAs names them for one member:
// every member names the same, but for their own players, which a member
// of g names only when it went and came back within the batch, and then
// its enter follows).
func (g *cellGroup) dropGone(gone []string) {
	g.ob.mu.Lock()
	defer g.ob.mu.Unlock()
	for _, id := range gone {
		if g.ob.delta.get(id) != nil && !g.hasPlayer(id) {
			g.ob.delta.drop(id)
		}
	}
}

// hasPlayer reports whether a member of g is player id's connection.
func (g *cellGroup) hasPlayer(id string) bool {
	for c := range g.members {
		if c.player == id {
			return true
		}
	}
	return false
}

// owe lowers the covered seq of the stream's last frame to that of a
// member that joins it, so that the stream's progress frames cover its
// position for that member too (they are encoded from each member's own).
func (o *outbox) owe(written uint64) {
	o.mu.Lock()
	o.written = min(o.written, written)
	o.mu.Unlock()
}

// sharedMsg is an enter or leave message, encoded once per codec for all
// the connections that queue it (the members of a cell group).
type sharedMsg struct {
	enter *wire.Keyframe
	leave *wire.Leave
	enc   [2]struct {
		once sync.Once
		b    []byte
		err  error
	}
}

func (m *sharedMsg) encode(k playCodec) ([]byte, error) {
	if int(k) >= len(m.enc) {
		return m.marshal(k)
	}
	e := &m.enc[k]
	e.once.Do(func() { e.b, e.err = m.marshal(k) })
	return e.b, e.err
}

// marshal encodes the message in codec k: JSON by hand (enter_json.go).
func (m *sharedMsg) marshal(k playCodec) ([]byte, error) {
	switch {
	case k == codecJSON && m.leave != nil:
		return appendLeaveJSON(nil, m.leave), nil
	case k == codecJSON:
		if b, ok := appendEnterJSON(nil, m.enter); ok {
			return b, nil
		}
	}
	if m.leave != nil {
		return k.marshal(m.leave)
	}
	return k.marshal(m.enter)
}
