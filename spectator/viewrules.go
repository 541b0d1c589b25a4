package spectator

import "github.com/gsd-dev/gsd/fsm"

// ViewRules returns the rules a relay of viewer v computes v's aggregated
// views with, over the events it receives (already cut to v's view): of
// the world's rules only the views v may see whole (the leak rule of
// Aggregates: v sees the view's field on every entity, a heatmap's
// position too, a view by team its team field), and what they are made
// with (the interest grid for a heatmap, the team field for a view by
// team); no field is restricted in them, since the relay holds only what
// v may see. A view the relay could not make as the node does is left
// out: one by team whose teams come from claims or session data (not in
// the events), one by player when v may not see the owner field. They
// carry too the quantum of each field v may see (fields.<name>.quantum,
// with the field's type and policy), so that the relay's watch frames
// round it as the node's do. Errors:
// the viewer's (ErrUnknownClass, ErrBadDelay) and rules the package
// cannot enforce (ErrBadRules).
func ViewRules(r fsm.Rules, v Viewer) (fsm.Rules, error) {
	a, err := NewAccess(r)
	if err != nil {
		return fsm.Rules{}, err
	}
	view, _, err := a.Resolve(v)
	if err != nil {
		return fsm.Rules{}, err
	}
	ag, err := NewAggregates(a, r)
	if err != nil {
		return fsm.Rules{}, err
	}
	var out fsm.Rules
	// The quanta of the fields v may see somewhere, with their fields'
	// rules (a quantum needs a declared float field): the relay's frames
	// round them as the node's do. A field v never sees is not named.
	for _, name := range sortedKeys(a.quanta) {
		if !a.mayShow(view, name) {
			continue
		}
		if out.Fields == nil {
			out.Fields, out.Schema.Access = map[string]fsm.FieldRule{}, map[string]fsm.FieldAccess{}
		}
		out.Fields[name] = r.Fields[name]
		out.Schema.Access[name] = fsm.FieldAccess{Quantum: a.quanta[name]}
	}
	for _, g := range ag.aggs {
		switch {
		case !ag.sees(view, g):
			continue
		case g.rule.By == "team" && a.TeamField() == "":
			continue
		case g.rule.By == "player" && !a.seesEverywhere(view, OwnerField):
			continue
		}
		if out.Schema.Views == nil {
			out.Schema.Views = map[string]fsm.ViewRule{}
		}
		out.Schema.Views[g.name] = g.rule
		if g.rule.Kind == "heatmap" {
			out.Schema.Interest = fsm.InterestRule{Cell: r.Schema.Interest.Cell, X: r.Schema.Interest.X, Y: r.Schema.Interest.Y}
		}
		if g.rule.By == "team" {
			out.Schema.Teams = r.Schema.Teams
		}
	}
	return out, nil
}
