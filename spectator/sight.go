package spectator

import (
	"slices"

	"github.com/gsd-dev/gsd/fsm"
)

// Lookup reads one entity of a world as this node holds it; false when
// the entity does not exist. The HTTP reads give it their stale reads.
type Lookup func(id string) (fsm.EntityView, bool)

// Entity returns e (an entity read, as fsm.FSM gives it) as view may see
// it: the fields the view may not see are gone, values, set elements and
// per-field versions alike, and the entity's version is the largest among
// the fields kept. ok is false when the view may see none of its fields:
// the entity does not show at all, as in keyframes.
//
// Whose e is and the viewing player's team come from e and the entities
// lookup reads: e's owner's (its team when e has no team field of its
// own), the viewing player's (its team) and that one's owner's (when the
// player's entity has no team field of its own). teamOf gives players'
// teams when they come from claims or session data, and may be nil
// otherwise.
func (a *Access) Entity(view View, e fsm.EntityView, lookup Lookup, teamOf TeamFunc) (fsm.EntityView, bool) {
	if !a.Restricted() {
		return e, true
	}
	s, view := a.lookupState(view, []fsm.EntityView{e}, nil, lookup, teamOf)
	w := s.who(a, teamOf, e.ID)
	out := fsm.EntityView{ID: e.ID, Seq: e.Seq}
	for _, f := range e.Fields {
		if a.visible(view, f.Name, w) {
			out.Fields = append(out.Fields, f)
			out.Version = max(out.Version, f.Version)
		}
	}
	return out, len(out.Fields) > 0
}

// Answer returns ev, the committed event of view's own action (the answer
// to the action, not an event of the feed), as view may see it: changes of
// fields it may not see are gone (a conflict's current values too), and an
// entity-level change (a conflict on an entity's version) carries the
// largest version among the entity's fields the view may see, or is gone.
// A delete of an entity that no longer exists carries version 0: its
// last version may have been a hidden field's. Status, reason and client
// seq stay: the action is the viewer's. Owners and teams are as lookup
// reads them now (after the event). Without restricted fields ev is
// returned as it is.
func (a *Access) Answer(view View, ev *fsm.Event, lookup Lookup, teamOf TeamFunc) *fsm.Event {
	if !a.Restricted() {
		return ev
	}
	ids := make([]string, 0, len(ev.Changes))
	for _, c := range ev.Changes {
		ids = append(ids, c.Entity)
	}
	s, view := a.lookupState(view, nil, ids, lookup, teamOf)
	out := *ev
	out.Changes = nil
	for _, c := range ev.Changes {
		w := s.who(a, teamOf, c.Entity)
		switch {
		case c.Field != "":
			if !a.visible(view, c.Field, w) {
				continue
			}
		case s.ents[c.Entity] == nil:
			c.Version = 0
		default:
			v, ok := versionOf(a, view, s.fieldVersions(c.Entity), w)
			if !ok {
				continue
			}
			c.Version = v
		}
		out.Changes = append(out.Changes, c)
	}
	return &out
}

// lookupState returns the state of ents, the entities ids names, and
// what deciding their sight needs (owners, the viewer, the viewer's
// owner), read with lookup, and view bound to it.
func (a *Access) lookupState(view View, ents []fsm.EntityView, ids []string, lookup Lookup, teamOf TeamFunc) (*State, View) {
	seen := make(map[string]bool)
	for _, e := range ents {
		seen[e.ID] = true
	}
	var add func(id string, owner bool)
	add = func(id string, owner bool) {
		if id == "" || seen[id] || lookup == nil {
			return
		}
		seen[id] = true
		if e, ok := lookup(id); ok {
			ents = append(ents, e)
			if owner {
				add(ownerOf(e), false)
			}
		}
	}
	for _, id := range ids {
		add(id, a.TeamField() != "")
	}
	if a.TeamField() != "" {
		for _, e := range slices.Clone(ents) { // add appends to ents

			add(ownerOf(e), false) // its team may be its owner's
		}
		add(view.player, true) // the viewer's team, maybe its owner's
	}
	s := SeedState("", 0, 0, ents)
	return s, a.bound(view, s, teamOf)
}

// ownerOf returns the player an entity read names in its owner field, or
// its own id.
func ownerOf(e fsm.EntityView) string {
	for _, f := range e.Fields {
		if f.Name == OwnerField && f.Policy != fsm.PolicySet && f.Value.Kind == fsm.KindString {
			return f.Value.Str
		}
	}
	return e.ID
}
