package spectator

import (
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
// player's entity has no team field of its own). teamOf gives players' teams
// when they come from claims or session data, and may be nil otherwise.
func (a *Access) Entity(view View, e fsm.EntityView, lookup Lookup, teamOf TeamFunc) (fsm.EntityView, bool) {
	if !a.Restricted() {
		return e, true
	}
	ents := []fsm.EntityView{e}
	seen := map[string]bool{e.ID: true}
	var add func(id string)
	add = func(id string) {
		if id == "" || seen[id] || lookup == nil {
			return
		}
		seen[id] = true
		if o, ok := lookup(id); ok {
			ents = append(ents, o)
			if id == view.player {
				add(ownerOf(o)) // the viewer's team may be its owner's
			}
		}
	}
	if k := a.TeamField(); k != "" {
		add(ownerOf(e))
		add(view.player)
	}
	s := SeedState(e.ID, e.Seq, 0, ents)
	view = a.bound(view, s, teamOf)
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
