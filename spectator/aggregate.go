package spectator

import (
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Aggregates keeps a world's aggregated views (rules key views: a
// scoreboard's sum, count, max or min of a field, by team, by player or
// over the world; a heatmap; a feed of a field's latest changes)
// incrementally: each entity contributes its field's current value to
// its group, and a tick updates only the entities it touched and the
// groups they were or are in. Not safe for concurrent use.
//
// A view may see an aggregate only when it may see the field on every
// entity (the field is visible to all, or its class sees the field's
// visibility), and, for one by team with teams from a field, the team
// field too: a sum over fields it may not see would tell it what they
// hold.
type Aggregates struct {
	access *Access
	grid   fsm.InterestRule // heatmaps' cells
	aggs   []*aggregate     // by name
}

type aggregate struct {
	name    string
	rule    fsm.ViewRule
	members map[string]member          // entity → its contribution
	groups  map[string]map[string]bool // group → entities in it
	dirty   map[string]bool            // groups changed since the last frame
	values  map[string]wire.Value      // group → aggregate, as last made

	feed      []wire.FeedItem // a feed's latest items, oldest first
	feedDirty bool
}

// FeedLen is how many items a feed view keeps and sends.
const FeedLen = 32

// observe records a released event's changes of feed views' fields.
func (ag *Aggregates) observe(ev *fsm.Event) {
	if ev.Status != fsm.StatusApplied {
		return
	}
	for _, g := range ag.aggs {
		if g.rule.Kind != "feed" {
			continue
		}
		for _, c := range ev.Changes {
			if c.Field == g.rule.Field {
				g.feed = append(g.feed, wire.FeedItem{Seq: ev.Seq, Player: ev.Player, Entity: c.Entity, Value: c.Value})
				g.feedDirty = true
			}
		}
		if n := len(g.feed); n > FeedLen {
			g.feed = slices.Clone(g.feed[n-FeedLen:])
		}
	}
}

type member struct {
	group string
	value fsm.Value
}

// NewAggregates compiles the aggregated views of a world's rules. A
// heatmap counts the entities holding its field per cell of the world's
// interest grid (rules key interest: cell, x, y), grouped by cell
// ("cx,cy"), so it needs the grid and is not grouped otherwise.
func NewAggregates(a *Access, r fsm.Rules) (*Aggregates, error) {
	ag := &Aggregates{access: a, grid: r.Schema.Interest}
	for _, name := range sortedKeys(r.Schema.Views) {
		v := r.Schema.Views[name]
		switch v.Kind {
		case "sum", "count", "max", "min":
		case "heatmap":
			if g := ag.grid; g.Cell <= 0 || g.X == "" || g.Y == "" || v.By != "" {
				return nil, fmt.Errorf("%w: view %s: a heatmap needs the interest grid (cell, x, y) and no by", ErrBadRules, name)
			}
		case "feed":
			if v.By != "" {
				return nil, fmt.Errorf("%w: view %s: a feed has no by", ErrBadRules, name)
			}
		default:
			return nil, fmt.Errorf("%w: view %s: kind %q", ErrBadRules, name, v.Kind)
		}
		switch v.By {
		case "", "team", "player":
		default:
			return nil, fmt.Errorf("%w: view %s: by %q", ErrBadRules, name, v.By)
		}
		if v.Field == "" {
			return nil, fmt.Errorf("%w: view %s: no field", ErrBadRules, name)
		}
		ag.aggs = append(ag.aggs, &aggregate{name: name, rule: v, members: map[string]member{},
			groups: map[string]map[string]bool{}, dirty: map[string]bool{}, values: map[string]wire.Value{}})
	}
	return ag, nil
}

// update recomputes the contributions of entities from s.
func (ag *Aggregates) update(s *State, teamOf TeamFunc, entities iter.Seq[string]) {
	for id := range entities {
		for _, g := range ag.aggs {
			g.update(s, ag, teamOf, id)
		}
	}
}

func (g *aggregate) update(s *State, ag *Aggregates, teamOf TeamFunc, id string) {
	if g.rule.Kind == "feed" {
		return // kept by observe
	}
	old, had := g.members[id]
	var now member
	has := false
	if e := s.ents[id]; e != nil {
		if f := e.field(g.rule.Field); f != nil && (!f.isSet || g.rule.Kind == "count" || g.rule.Kind == "heatmap") {
			has = true
			now.value = f.value
			switch g.rule.By {
			case "team":
				now.group = s.who(ag.access, teamOf, id).team
			case "player":
				now.group = s.who(ag.access, teamOf, id).owner
			}
			if g.rule.Kind == "heatmap" {
				now.value = fsm.Value{}
				now.group, has = cell(e, ag.grid)
			}
		}
	}
	if had == has && old == now {
		return
	}
	if had {
		delete(g.groups[old.group], id)
		g.dirty[old.group] = true
		delete(g.members, id)
	}
	if has {
		g.members[id] = now
		if g.groups[now.group] == nil {
			g.groups[now.group] = map[string]bool{}
		}
		g.groups[now.group][id] = true
		g.dirty[now.group] = true
	}
}

// frames returns the frame of each aggregate whose groups changed since
// its last one, made at seq.
func (ag *Aggregates) frames(world string, seq uint64) ([]*aggFrame, error) {
	var out []*aggFrame
	for _, g := range ag.aggs {
		if g.feedDirty {
			g.feedDirty = false
			f, err := encode(wire.TypeView, seq, &wire.ViewFrame{Type: wire.TypeView, World: world, Name: g.name,
				Kind: g.rule.Kind, Seq: seq, Feed: slices.Clone(g.feed)})
			if err != nil {
				return nil, err
			}
			out = append(out, &aggFrame{agg: g, frame: f})
			continue
		}
		if len(g.dirty) == 0 {
			continue
		}
		for grp := range g.dirty {
			if v, ok := g.compute(grp); ok {
				g.values[grp] = v
			} else {
				delete(g.values, grp)
			}
		}
		clear(g.dirty)
		f, err := encode(wire.TypeView, seq, &wire.ViewFrame{Type: wire.TypeView, World: world, Name: g.name,
			Kind: g.rule.Kind, Seq: seq, Groups: maps.Clone(g.values)}) // the frame keeps it: Frame.Msgpack
		if err != nil {
			return nil, err
		}
		out = append(out, &aggFrame{agg: g, frame: f})
	}
	return out, nil
}

// current returns, as of seq, every aggregate view may see: its groups'
// values as the last frames made them (a pipeline updates the aggregates
// and makes their frames in one step, so no group is dirty between steps),
// or a feed's items; of an aggregate it may see one group of only (part),
// that group as state has it. view is bound (Access.bound).
func (ag *Aggregates) current(world string, state *State, teamOf TeamFunc, view View) []wire.ViewFrame {
	seq := state.Seq()
	var out []wire.ViewFrame
	for _, g := range ag.aggs {
		f := wire.ViewFrame{Type: wire.TypeView, World: world, Name: g.name, Kind: g.rule.Kind, Seq: seq}
		switch grp, ok := ag.part(view, g); {
		case ag.sees(view, g) && g.rule.Kind == "feed":
			f.Feed = slices.Clone(g.feed)
		case ag.sees(view, g):
			f.Groups = maps.Clone(g.values)
		case ok:
			f.Groups = ag.group(state, teamOf, g, grp)
		default:
			continue
		}
		out = append(out, f)
	}
	return out
}

// part returns the one group of g that a view which may not see g whole
// may see (filtering by team): its team's, of an aggregate by team over a
// team-visible field (the view sees that field on every entity of its
// team, as Access.visible says), or its player's, of one by player over
// an owner- or team-visible field (the view sees it on every entity its
// player owns). A heatmap or a feed is never cut so. view is bound
// (Access.bound); false: no group.
func (ag *Aggregates) part(view View, g *aggregate) (string, bool) {
	vis := ag.access.fields[g.rule.Field]
	switch {
	case g.rule.By == "team" && vis == VisibleTeam && view.team != "":
		return view.team, true
	case g.rule.By == "player" && (vis == VisibleOwner || vis == VisibleTeam) && view.player != "":
		return view.player, true
	}
	return "", false
}

// group returns g's aggregate of group grp as s has it now (nil when the
// group is empty), made afresh from s rather than from g's groups: those
// place an entity by its team when it last changed, and an entity whose
// owner changed team since is no longer the view's to see.
func (ag *Aggregates) group(s *State, teamOf TeamFunc, g *aggregate, grp string) map[string]wire.Value {
	var vals []fsm.Value
	for _, id := range sortedKeys(s.ents) {
		f := s.ents[id].field(g.rule.Field)
		if f == nil || f.isSet && g.rule.Kind != "count" {
			continue
		}
		w := s.who(ag.access, teamOf, id)
		if g.rule.By == "team" && w.team == grp || g.rule.By == "player" && w.owner == grp {
			vals = append(vals, f.value)
		}
	}
	if len(vals) == 0 {
		return nil
	}
	return map[string]wire.Value{grp: aggregateOf(g.rule.Kind, vals)}
}

// aggFrame is an aggregate's frame, to send to the views that may see it.
type aggFrame struct {
	agg   *aggregate
	frame *Frame
}

// compute returns a group's aggregate, and false when the group is empty.
func (g *aggregate) compute(grp string) (wire.Value, bool) {
	ids := g.groups[grp]
	if len(ids) == 0 {
		delete(g.groups, grp)
		return wire.Value{}, false
	}
	vals := make([]fsm.Value, 0, len(ids))
	for id := range ids {
		vals = append(vals, g.members[id].value)
	}
	return aggregateOf(g.rule.Kind, vals), true
}

// aggregateOf returns kind's aggregate of vals (at least one).
func aggregateOf(kind string, vals []fsm.Value) wire.Value {
	switch kind {
	case "count", "heatmap":
		return fsm.Int(int64(len(vals)))
	case "sum":
		var i int64
		var f float64
		isFloat := false
		for _, v := range vals {
			switch v.Kind {
			case fsm.KindInt:
				i += v.Int // wraps like the counters it sums
			case fsm.KindFloat:
				f, isFloat = f+v.Float, true
			}
		}
		if isFloat {
			s := f + float64(i)
			if math.IsInf(s, 0) {
				s = math.Copysign(math.MaxFloat64, s) // JSON has no infinity
			}
			return fsm.Float(s)
		}
		return fsm.Int(i)
	}
	best := vals[0]
	for _, v := range vals[1:] {
		c := v.Compare(best)
		if kind == "max" && c > 0 || kind == "min" && c < 0 {
			best = v
		}
	}
	return best
}

// cell returns the grid cell ("cx,cy") of an entity's numeric position,
// and false when it has none.
func cell(e *entState, grid fsm.InterestRule) (string, bool) {
	var at [2]int64
	for i, name := range []string{grid.X, grid.Y} {
		f := e.field(name)
		if f == nil || f.isSet {
			return "", false
		}
		var v float64
		switch f.value.Kind {
		case fsm.KindInt:
			v = float64(f.value.Int)
		case fsm.KindFloat:
			v = f.value.Float
		default:
			return "", false
		}
		c := math.Floor(v / grid.Cell)
		if c < math.MinInt64 || c >= math.MaxInt64 {
			return "", false // off any grid a client can draw
		}
		at[i] = int64(c)
	}
	return strconv.FormatInt(at[0], 10) + "," + strconv.FormatInt(at[1], 10), true
}

// sees reports whether view may see aggregate g.
func (ag *Aggregates) sees(view View, g *aggregate) bool {
	if !ag.access.seesEverywhere(view, g.rule.Field) {
		return false
	}
	if g.rule.Kind == "heatmap" && (!ag.access.seesEverywhere(view, ag.grid.X) || !ag.access.seesEverywhere(view, ag.grid.Y)) {
		return false // where entities are tells their positions
	}
	if k := ag.access.TeamField(); g.rule.By == "team" && k != "" {
		return ag.access.seesEverywhere(view, k)
	}
	return true
}

// seesEverywhere reports whether view may see field on every entity.
func (a *Access) seesEverywhere(view View, field string) bool {
	vis, ok := a.fields[field]
	return !ok || view.sees.has(vis)
}

// Len returns how many aggregated views there are (0 for nil).
func (ag *Aggregates) Len() int {
	if ag == nil {
		return 0
	}
	return len(ag.aggs)
}
