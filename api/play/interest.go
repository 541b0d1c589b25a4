package play

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
)

// Interest management of the play fan-out: InterestConfig (what a
// connection wants), and the hub's interestIndex, which keeps each
// entity's grid cell and team from the events the hub fans out and
// answers, per player and prepared event, whether the connection wants it
// (hub.wants). With interest off (the default) none of this runs and the
// hub's shared stream serves every connection.

// InterestConfig turns on interest management for play connections: a
// connection receives an event only when it touches the player's own
// entity (the entity whose id is the player id), an entity of the
// player's team, an entity without a position (global), or an entity in a
// grid cell within Radius cells of the player's. Positions and teams come
// from the world's authoritative state, never from the client.
type InterestConfig struct {
	// Cell is the grid cell size in position units; 0 turns the grid off.
	Cell float64
	// X and Y name the numeric position fields (with Cell > 0).
	X, Y string
	// Radius is how many cells around the player's count as near.
	Radius int
	// Team names the team field; "" turns team interest off.
	Team string
}

// enabled reports whether any interest filter is on.
func (c InterestConfig) enabled() bool { return c.Cell > 0 || c.Team != "" }

// Validate checks the config.
func (c InterestConfig) Validate() error {
	switch {
	case c.Cell < 0 || math.IsNaN(c.Cell) || math.IsInf(c.Cell, 0):
		return fmt.Errorf("interest cell must be a finite number >= 0, not %v", c.Cell)
	case c.Cell > 0 && (c.X == "" || c.Y == ""):
		return fmt.Errorf("interest with a grid needs the X and Y field names")
	case c.Radius < 0:
		return fmt.Errorf("interest radius must be >= 0, not %d", c.Radius)
	}
	return nil
}

// interestIndex keeps, per entity, its grid cell and team, from the
// events the hub fans out; an entity it has not seen is looked up in this
// node's applied state once.
type interestIndex struct {
	cfg    InterestConfig
	lookup func(id string) (fsm.EntityView, error)

	mu   sync.RWMutex
	ents map[string]*entInterest
	// With a grid: who is in each cell, who has no position (global),
	// and the entities whose cell changed in the last update (enter.go).
	cells  map[cellKey]map[string]struct{}
	global map[string]struct{}
	movers []mover
	// With a grid and a team field: who is in each team, and the
	// entities whose team changed in the last update (enter.go).
	teams    map[string]map[string]struct{}
	switches []teamSwitch
	gen      uint64 // counts updates
}

type entInterest struct {
	x, y       float64
	hasX, hasY bool
	team       string
	exists     bool   // the entity was in the state or an event (enter.go)
	born       uint64 // the update (interestIndex.gen) that made it exist; 0: seeded
}

func (e *entInterest) cell(size float64) (int64, int64, bool) {
	if size <= 0 || !e.hasX || !e.hasY {
		return 0, 0, false
	}
	return int64(math.Floor(e.x / size)), int64(math.Floor(e.y / size)), true
}

func newInterestIndex(cfg InterestConfig, lookup func(string) (fsm.EntityView, error)) *interestIndex {
	return &interestIndex{cfg: cfg, lookup: lookup, ents: make(map[string]*entInterest),
		cells: make(map[cellKey]map[string]struct{}), global: make(map[string]struct{}),
		teams: make(map[string]map[string]struct{})}
}

func number(v fsm.Value) (float64, bool) {
	switch v.Kind {
	case fsm.KindInt:
		return float64(v.Int), true
	case fsm.KindFloat:
		return v.Float, true
	}
	return 0, false
}

// set records one field's value on e.
func (ix *interestIndex) set(e *entInterest, field string, v fsm.Value, exists bool) {
	switch field {
	case "":
		return
	case ix.cfg.Team:
		e.team = ""
		if exists && v.Kind == fsm.KindString {
			e.team = v.Str
		}
	}
	if ix.cfg.Cell <= 0 {
		return
	}
	switch field {
	case ix.cfg.X:
		e.x, e.hasX = number(v)
		e.hasX = e.hasX && exists
	case ix.cfg.Y:
		e.y, e.hasY = number(v)
		e.hasY = e.hasY && exists
	}
}

// update applies the applied events' changes to the index.
func (ix *interestIndex) update(evs []*fsm.Event) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.movers = ix.movers[:0]
	ix.switches = ix.switches[:0]
	ix.gen++
	for _, ev := range evs {
		if ev.Status != fsm.StatusApplied {
			continue
		}
		for _, c := range ev.Changes {
			if c.Field == "" { // deleted: it has no position or team any more
				if e := ix.ents[c.Entity]; e != nil {
					ix.deleted(c.Entity, e)
				}
				ix.ents[c.Entity] = &entInterest{}
				continue
			}
			if c.Field != ix.cfg.Team && (ix.cfg.Cell <= 0 || c.Field != ix.cfg.X && c.Field != ix.cfg.Y) {
				if ix.cfg.Cell > 0 {
					ix.known(c.Entity) // a new entity without a position is global
				}
				continue
			}
			e := ix.ents[c.Entity]
			if e == nil {
				e = ix.seed(c.Entity)
				ix.ents[c.Entity] = e
				ix.indexed(c.Entity, e)
			}
			fx, fy, fromOK := e.cell(ix.cfg.Cell)
			existed, team := e.exists, e.team
			ix.set(e, c.Field, c.Value, true)
			if !existed {
				e.exists, e.born = true, ix.gen // a change names it: it exists
			}
			ix.moved(c.Entity, e, cellKey{fx, fy}, fromOK, existed)
			ix.switched(c.Entity, e, team, existed)
		}
	}
}

// known indexes an entity a change names that the index has not seen, or
// had as gone (ix.mu held).
func (ix *interestIndex) known(id string) {
	e := ix.ents[id]
	if e == nil {
		e = ix.seed(id)
		ix.ents[id] = e
		ix.indexed(id, e)
	}
	if !e.exists {
		e.exists, e.born = true, ix.gen
		ix.indexed(id, e)
	}
}

// seed reads an entity's position and team from the applied state.
func (ix *interestIndex) seed(id string) *entInterest {
	e := &entInterest{}
	view, err := ix.lookup(id)
	if err != nil {
		return e // not there (yet): no position, no team
	}
	e.exists = true
	for _, f := range view.Fields {
		ix.set(e, f.Name, f.Value, true)
	}
	return e
}

// get returns an entity's record, seeding it when unknown.
func (ix *interestIndex) get(id string) entInterest {
	ix.mu.RLock()
	e := ix.ents[id]
	var v entInterest
	if e != nil {
		v = *e // copied under the lock: update mutates records in place
	}
	ix.mu.RUnlock()
	if e != nil {
		return v
	}
	seeded := ix.seed(id)
	ix.mu.Lock()
	if e = ix.ents[id]; e == nil { // an update may have come first
		e = seeded
		ix.ents[id] = e
		ix.indexed(id, e)
	}
	v = *e
	ix.mu.Unlock()
	return v
}

// wants decides whether player receives he.
func (ix *interestIndex) wants(player string, he *hubEvent) bool {
	if he.ev.Player == player {
		return true
	}
	me := ix.get(player)
	mx, my, mePos := me.cell(ix.cfg.Cell)
	for _, id := range he.entities {
		if id == player {
			return true
		}
		e := ix.get(id)
		if ix.cfg.Team != "" && me.team != "" && e.team == me.team {
			return true
		}
		if ix.cfg.Cell <= 0 {
			if e.team == "" {
				return true // teams only: an entity without a team is global
			}
			continue
		}
		ex, ey, pos := e.cell(ix.cfg.Cell)
		if !pos {
			return true // global
		}
		r := int64(ix.cfg.Radius)
		if mePos && abs(ex-mx) <= r && abs(ey-my) <= r {
			return true
		}
	}
	return false
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// A batch's interest plan: the hub sorts a batch's events once by who may
// want them (their player, the entities they touch, those entities' teams
// and cells, or everyone), so that each member's share costs a lookup per
// cell around it instead of a check per event (wants). select gives
// exactly the events wants would, in order.

// cellKey is a grid cell.
type cellKey struct{ x, y int64 }

// interestPlan is one batch's events by who may want them; entries are
// indexes into the batch.
type interestPlan struct {
	global   []int // an entity without a position (or, teams only, without a team)
	byPlayer map[string][]int
	byEntity map[string][]int
	byTeam   map[string][]int
	byCell   map[cellKey][]int

	// A reused plan's lists start in arena (two entries each, room kept
	// from one batch to the next; used: taken in this batch, wanted: what
	// the last one would have taken).
	arena        []int
	used, wanted int
}

// planAdd appends event i to key k's list in m: a new list takes its
// first two entries' room from p's arena, when there is some.
func planAdd[K comparable](p *interestPlan, m map[K][]int, k K, i int) {
	s, ok := m[k]
	if !ok {
		p.wanted += 2
		if p.used+2 <= len(p.arena) {
			s = p.arena[p.used : p.used : p.used+2]
			p.used += 2
		}
	}
	m[k] = append(s, i)
}

// plan sorts hevs by who may want them, from the index's current state.
func (ix *interestIndex) plan(hevs []*hubEvent) *interestPlan {
	return ix.planInto(nil, hevs)
}

// planInto is plan in p's maps, cleared (nil: new ones): a hub plans
// every batch, and its maps keep their room from one to the next.
func (ix *interestIndex) planInto(p *interestPlan, hevs []*hubEvent) *interestPlan {
	if p == nil {
		p = &interestPlan{byPlayer: map[string][]int{}, byEntity: map[string][]int{}, byTeam: map[string][]int{}, byCell: map[cellKey][]int{}}
	} else {
		p.global = p.global[:0]
		p.byPlayer, p.byEntity = reused(p.byPlayer), reused(p.byEntity)
		p.byTeam, p.byCell = reused(p.byTeam), reused(p.byCell)
		if p.wanted > len(p.arena) && p.wanted <= 4096 {
			p.arena = make([]int, p.wanted)
		}
		p.used, p.wanted = 0, 0
	}
	for i, he := range hevs {
		planAdd(p, p.byPlayer, he.ev.Player, i)
		global := false
		for _, id := range he.entities {
			planAdd(p, p.byEntity, id, i)
			e := ix.get(id)
			if ix.cfg.Team != "" && e.team != "" {
				planAdd(p, p.byTeam, e.team, i)
			}
			if ix.cfg.Cell <= 0 {
				global = global || e.team == ""
				continue
			}
			if x, y, ok := e.cell(ix.cfg.Cell); ok {
				planAdd(p, p.byCell, cellKey{x, y}, i)
			} else {
				global = true
			}
		}
		if global {
			p.global = append(p.global, i)
		}
	}
	return p
}

// reused returns m cleared, or a new map when m held a big batch's keys
// (clearing costs as much as the room it keeps).
func reused[K comparable](m map[K][]int) map[K][]int {
	if len(m) > 256 {
		return make(map[K][]int)
	}
	clear(m)
	return m
}

// selectFor appends to out (reset) the events of hevs, planned as p, that
// player wants, in order, each once.
func (ix *interestIndex) selectFor(p *interestPlan, player string, hevs []*hubEvent, out []*hubEvent, idx []int) ([]*hubEvent, []int) {
	return ix.selectForMe(p, player, ix.get(player), hevs, out, idx)
}

// selectForMe is selectFor with the player's own record read already.
func (ix *interestIndex) selectForMe(p *interestPlan, player string, me entInterest, hevs []*hubEvent, out []*hubEvent, idx []int) ([]*hubEvent, []int) {
	idx = append(idx[:0], p.global...)
	idx = append(idx, p.byPlayer[player]...)
	idx = append(idx, p.byEntity[player]...)
	if ix.cfg.Team != "" && me.team != "" {
		idx = append(idx, p.byTeam[me.team]...)
	}
	if mx, my, ok := me.cell(ix.cfg.Cell); ok && len(p.byCell) > 0 {
		r := int64(ix.cfg.Radius)
		for x := mx - r; x <= mx+r; x++ {
			for y := my - r; y <= my+r; y++ {
				idx = append(idx, p.byCell[cellKey{x, y}]...)
			}
		}
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out = out[:0]
	for _, i := range idx {
		out = append(out, hevs[i])
	}
	return out, idx
}
