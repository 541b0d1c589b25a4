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
