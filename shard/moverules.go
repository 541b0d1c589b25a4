package shard

import (
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// A move between groups whose leaders are different nodes (api/admin's
// move route, api/peer's move steps) cannot ask the target's gate with
// the source's rules in hand, as Move does: the node that runs the move
// reads the world's rules (MoveNeeds), sends what they need in the
// target's check step (CheckTargetRules there), and says in the export
// step what the target was checked for, which the source holds against
// its own copy's rules before the fence (CheckedRules).

// MoveNeeds returns what the import of a world with rules needs when its
// rules need more than any export format does (RulesNeeds: a quantum,
// log 16): fsm.ImportRulesNeeds of format 2 (fsm.ExportFormat), so that
// a target whose voters read it reads the export in either format. The
// zero Versions when the rules need nothing more: the move asks the
// target as before (ExportFormatGate), which every binary since log 15
// answers.
func MoveNeeds(rules fsm.Rules) fsm.Versions {
	if fsm.ImportRulesNeeds(1, rules) == fsm.ImportNeeds(1) {
		return fsm.Versions{}
	}
	return fsm.ImportRulesNeeds(fsm.ExportFormat, rules)
}

// CheckedRules returns why src, the leader's group of world's home, must
// not fence world for a target checked for checked (what the move's check
// step sent the target and its gate passed; zero: nothing sent, as from
// an admin node before the step had needs): the world's rules need what
// checked does not cover (RulesNeeds), wrapping store.ErrVersionGate;
// nil when they need nothing more, when checked covers it, when src
// does not hold the world or cannot move worlds (the fence tells), or
// when the world is fenced already (a retry: the import tells). It is
// read from src's applied state just before the fence: a rules update
// that commits between the two is not seen, and its import refused
// (version_gate, the world fenced until the target is upgraded).
func CheckedRules(src any, world string, checked fsm.Versions) error {
	s, ok := src.(MoveSource)
	if !ok {
		return nil
	}
	info, err := s.World(world)
	if err != nil || info.Moved != nil {
		return nil
	}
	need := RulesNeeds(s, world)
	if need.IsZero() || checked.Covers(need) {
		return nil
	}
	what := "nobody asked the move's target whether its voters read them (an export step without \"needs\": the admin node runs a binary without that check); call the move through an upgraded node"
	if !checked.IsZero() {
		what = fmt.Sprintf("the move's target was checked for %s only (the rules changed since the check); call the move again", checked)
	}
	return fmt.Errorf("move %s: its rules need %s at the target, and %s; nothing fenced: %w", world, need, what, store.ErrVersionGate)
}
