package spectator

import "github.com/gsd-dev/gsd/fsm"

// Rules updates in the feed (log version 12). A rules update is the
// world's event (fsm.CmdUpdateRulesEvent, a notice of kind
// fsm.NoticeRules): the events up to it are cut under the old rules,
// those after it under the new. A reader that knows the rules version it
// cuts under (NewAccessAt) ends at the event of a later update, before
// any event after it: Filter.Prepare (so Events, and every event stream
// and play view over them) refuses the events after it, and a Pipeline
// sends the frames up to it and stops, both with ErrRulesChanged. The
// events of earlier updates, met by a reader started before them under
// today's rules, pass. A cluster still at log 11 writes updates without
// the event: the readers learn of those by polling (the edge).

// RulesUpdate reports whether ev is a rules update's event, and the
// world's rules version from it on.
func RulesUpdate(ev *fsm.Event) (uint64, bool) {
	if n := ev.Notice; n != nil && n.Kind == fsm.NoticeRules {
		return n.RulesVersion, true
	}
	return 0, false
}

// NewAccessAt is NewAccess for the world's rules version version (its
// fsm.WorldInfo.RulesVersion): readers under it end at the event of a
// later rules update. NewAccess's readers (version unknown) end at none.
func NewAccessAt(r fsm.Rules, version uint64) (*Access, error) {
	a, err := NewAccess(r)
	if err == nil {
		a.version = version
	}
	return a, err
}

// Version returns the rules version a was compiled for (0: unknown).
func (a *Access) Version() uint64 { return a.version }

// ends reports whether ev is the event of a rules update after a's
// rules: the last event a reader under a may cut.
func (a *Access) ends(ev *fsm.Event) bool {
	v, ok := RulesUpdate(ev)
	return ok && a.version != 0 && v > a.version
}
