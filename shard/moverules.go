package shard

import (
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// A move between groups whose leaders are different nodes (api/admin's
// move route, api/peer's move steps) cannot ask the target's gate with
// the source's rules in hand, as Move does: the node that runs the move
// asks the source group's leader what the world's rules need (ReadSource
// there, from the whole rules: the public world route answers them
// without the spectator keys, a quantum among them), sends it in the
// target's check step (CheckTargetRules there), and says in the export
// step what the target was checked for, which the source holds against
// its own copy's rules before the fence (CheckedRules). A source leader
// that cannot tell (a binary before that step) is taken to hold the most
// its log version allows (NeedsAtMost).

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

// SourceState is what the node that runs a move learns of its world at
// the leader of its home's group before the target's check (ReadSource).
type SourceState struct {
	// Needs is MoveNeeds of the world's whole rules: zero when they need
	// nothing more than any export format.
	Needs fsm.Versions
	// Fenced is the world's fence when an earlier attempt of a move
	// fenced it already, nil when it takes writes.
	Fenced *fsm.Fence
}

// ReadSource returns world's SourceState on src, the leader's group of
// its home: fsm.ErrNotSupported when src cannot move worlds, the error of
// its World (unknown_world) when it does not hold the world.
func ReadSource(src any, world string) (SourceState, error) {
	s, ok := src.(MoveSource)
	if !ok {
		return SourceState{}, fmt.Errorf("%w: this node's groups cannot move worlds", fsm.ErrNotSupported)
	}
	info, err := s.World(world)
	if err != nil {
		return SourceState{}, err
	}
	return SourceState{Needs: MoveNeeds(info.Rules), Fenced: info.Moved}, nil
}

// NeedsAtMost returns what a move takes its world to need when the
// leader of its home's group cannot tell (a binary before the move's
// needs step) and reads v (zero: it reported nothing, the baseline): the
// most the rules of a world its group holds can need beyond the format 2
// import. The group's log holds nothing its leader does not read (the
// version gate: store/versions.go), so its rules need at most v's log:
// the format 2 import's needs raised to that log when it is above the
// format 2 import's (log 16: a quantum), which the target's gate is then
// asked for; zero when it is not: rules such a group holds need no more
// than the format 2 import, which the check step asks the target's gate
// for as before (ExportFormatGate), a target that refuses it getting an
// unsalted world in format 1 as before.
func NeedsAtMost(v fsm.Versions) fsm.Versions {
	if v.IsZero() {
		v = fsm.Baseline()
	}
	f2 := fsm.ImportNeeds(fsm.ExportFormat)
	if v.Log <= f2.Log {
		return fsm.Versions{}
	}
	return fsm.Versions{Log: v.Log, Snapshot: f2.Snapshot, Wire: f2.Wire}
}

// FenceState says what a move refused before its fence leaves of the
// world at its home: "nothing fenced", or, when an earlier attempt of the
// move fenced it (fence not nil), that it is fenced already, and refuses
// writes until a move completes.
func FenceState(fence *fsm.Fence) string {
	if fence == nil {
		return "nothing fenced"
	}
	return fmt.Sprintf("already fenced towards shard %d at seq %d by an earlier attempt (it refuses writes until a move completes)", fence.Shard, fence.Seq)
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
