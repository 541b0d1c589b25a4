package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// TestMovingAQuantumWorldToAGroupWithALog15VoterFencesNothing: the
// target's log 15 voter cannot decode the world's rules (a quantum needs
// log 16), so its import would be refused; the move is refused with
// version_gate before the fence and the world takes writes at its old
// home. A world without a quantum moves there as before.
func TestMovingAQuantumWorldToAGroupWithALog15VoterFencesNothing(t *testing.T) {
	src, dst := oldTarget(t, fsm.Versions{Log: 15, Snapshot: 10, Wire: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quant := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.5}}}}
	require.NoError(t, src.CreateWorld(ctx, "q", quant))
	act(t, src, incr("q", "p1", 1, "e1"))
	require.Equal(t, fsm.ImportRulesNeeds(1, quant), RulesNeeds(src, "q"))

	requireMoveRefusedUnfenced(ctx, t, src, dst, "q")
	act(t, src, incr("q", "p1", 2, "e1")) // the world takes writes at its old home

	mustCreateWorld(t, src, "plain")
	act(t, src, incr("plain", "p1", 1, "e1"))
	require.Zero(t, RulesNeeds(src, "plain"), "nothing beyond the export's format")
	seq, err := Move(ctx, src, dst, "plain", 2, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)

	require.Zero(t, RulesNeeds(src, "absent"), "the fence tells")
	require.NoError(t, CheckTargetRules(&fakeGroup{}, "q", fsm.ImportRulesNeeds(1, quant)), "a target without a gate is not asked")
	require.NoError(t, CheckTargetRules(dst, "q", fsm.Versions{}), "nothing to ask")
	require.NoError(t, CheckTargetRules(src, "q", fsm.ImportRulesNeeds(1, quant)), "a current group reads it")
}

// requireMoveRefusedUnfenced moves world from src to dst (shard 2) and
// requires the move refused version_gate before the fence: nothing fenced
// on src, nothing imported on dst.
func requireMoveRefusedUnfenced(ctx context.Context, t *testing.T, src, dst *store.Store, world string) {
	t.Helper()
	_, err := Move(ctx, src, dst, world, 2, nil)
	require.ErrorIs(t, err, store.ErrVersionGate)
	require.ErrorContains(t, err, "nothing fenced")
	info, err := src.World(world)
	require.NoError(t, err)
	require.Nil(t, info.Moved, "nothing fenced")
	_, err = dst.World(world)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
}

// TestCheckedRulesHoldsTheExportStepToWhatTheTargetWasCheckedFor: a
// quantum world's export needs log 16 (MoveNeeds, in either format); the
// source refuses its fence for a target checked for nothing or for less
// (version_gate, nothing fenced), and lets it go when checked for that,
// when the world needs nothing more, is absent, or is fenced already.
func TestCheckedRulesHoldsTheExportStepToWhatTheTargetWasCheckedFor(t *testing.T) {
	ctx, src, _ := twoGroups(t)
	quant := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.5}}}}
	need := MoveNeeds(quant)
	require.Equal(t, fsm.ImportRulesNeeds(fsm.ExportFormat, quant), need)
	require.True(t, need.Covers(fsm.ImportNeeds(fsm.ExportFormat)), "a target that reads them reads format 2")
	require.Equal(t, uint32(16), need.Log)
	require.Zero(t, MoveNeeds(fsm.Rules{}))
	require.NoError(t, src.CreateWorld(ctx, "q", quant))
	mustCreateWorld(t, src, "plain")

	err := CheckedRules(src, "q", fsm.Versions{})
	require.ErrorIs(t, err, store.ErrVersionGate)
	require.ErrorContains(t, err, "call the move through an upgraded node")
	err = CheckedRules(src, "q", fsm.Versions{Log: 15, Snapshot: 10, Wire: 1})
	require.ErrorIs(t, err, store.ErrVersionGate)
	require.ErrorContains(t, err, "checked for log 15")
	require.NoError(t, CheckedRules(src, "q", need))
	require.NoError(t, CheckedRules(src, "plain", fsm.Versions{}), "nothing more needed")
	require.NoError(t, CheckedRules(src, "absent", fsm.Versions{}), "the fence tells")
	require.NoError(t, CheckedRules(struct{}{}, "q", fsm.Versions{}), "a group that cannot move worlds: the fence tells")

	_, err = FenceAndExport(ctx, src, "q", 2)
	require.NoError(t, err)
	require.NoError(t, CheckedRules(src, "q", fsm.Versions{}), "fenced already: the import tells")
}

// TestAMoveRetriedAfterAnEarlierFenceSaysTheWorldIsFenced: an earlier
// attempt (through an admin node that did not check the world's rules)
// fenced the quantum world towards a shard with a log 15 voter; a retry
// is refused at the check as before, and says the world is fenced there
// already, never "nothing fenced".
func TestAMoveRetriedAfterAnEarlierFenceSaysTheWorldIsFenced(t *testing.T) {
	src, dst := oldTarget(t, fsm.Versions{Log: 15, Snapshot: 10, Wire: 1})
	ctx := moveContext(t)
	quant := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.5}}}}
	require.NoError(t, src.CreateWorld(ctx, "q", quant))
	act(t, src, incr("q", "p1", 1, "e1"))
	info, err := src.World("q")
	require.NoError(t, err)
	_, err = src.MoveWorld(ctx, "q", 2, info.Incarnation)
	require.NoError(t, err)

	_, err = Move(ctx, src, dst, "q", 2, nil)
	require.ErrorIs(t, err, store.ErrVersionGate)
	require.ErrorContains(t, err, "already fenced towards shard 2 at seq 1")
	require.NotContains(t, err.Error(), "nothing fenced")
	_, err = dst.World("q")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "nothing imported")
}

// TestReadSourceAnswersTheWorldsNeedsAndItsFence: the needs come from the
// world's whole rules (a quantum: log 16) and the fence from an earlier
// attempt; a world the group does not hold answers unknown_world, a
// group that cannot move worlds not_supported. A source that cannot tell
// is taken to need what its leader's log allows beyond the format 2
// import (NeedsAtMost).
func TestReadSourceAnswersTheWorldsNeedsAndItsFence(t *testing.T) {
	ctx, src, _ := twoGroups(t)
	quant := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.5}}}}
	require.NoError(t, src.CreateWorld(ctx, "q", quant))
	mustCreateWorld(t, src, "plain")

	got, err := ReadSource(src, "q")
	require.NoError(t, err)
	require.Equal(t, SourceState{Needs: MoveNeeds(quant)}, got)
	got, err = ReadSource(src, "plain")
	require.NoError(t, err)
	require.Equal(t, SourceState{}, got)
	_, err = ReadSource(src, "absent")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, err = ReadSource(struct{}{}, "q")
	require.ErrorIs(t, err, fsm.ErrNotSupported)
	e, err := FenceAndExport(ctx, src, "q", 2)
	require.NoError(t, err)
	got, err = ReadSource(src, "q")
	require.NoError(t, err)
	require.Equal(t, &fsm.Fence{World: "q", Shard: 2, Seq: e.Seq}, got.Fenced)
	require.Equal(t, "already fenced towards shard 2 at seq 0 by an earlier attempt (it refuses writes until a move completes)", FenceState(got.Fenced))
	require.Equal(t, "nothing fenced", FenceState(nil))

	log16 := fsm.Versions{Log: 16, Snapshot: 10, Wire: 1}
	require.Equal(t, log16, NeedsAtMost(log16))
	require.True(t, NeedsAtMost(log16).Covers(MoveNeeds(quant)), "covers the most a log 16 group holds")
	require.Equal(t, fsm.Versions{Log: 17, Snapshot: 10, Wire: 1}, NeedsAtMost(fsm.Versions{Log: 17, Snapshot: 11, Wire: 2}))
	require.Zero(t, NeedsAtMost(fsm.Versions{Log: 15, Snapshot: 10, Wire: 1}), "no rules beyond format 2's import: the check asks for that")
	require.Zero(t, NeedsAtMost(fsm.Versions{Log: 11, Snapshot: 7, Wire: 1}))
	require.Zero(t, NeedsAtMost(fsm.Versions{}), "nothing reported: the baseline")
}
