package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// log15Target boots group 1 on a current node and group 2 on a node
// that reads log 15 (its voter), and returns their stores.
func log15Target(t *testing.T) (src, dst *store.Store) {
	t.Helper()
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	src = bootGroups(t, m, 1)[1]
	cfg := testStoreConfig("n2")
	cfg.Versions = fsm.Versions{Log: 15, Snapshot: 10, Wire: 1}
	old, err := NewManager(ManagerConfig{DataDir: t.TempDir(), Store: cfg}, groupMux(t), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = old.Close(context.Background()) })
	return src, bootGroups(t, old, 2)[2]
}

// TestMovingAQuantumWorldToAGroupWithALog15VoterFencesNothing: the
// target's log 15 voter cannot decode the world's rules (a quantum needs
// log 16), so its import would be refused; the move is refused with
// version_gate before the fence and the world takes writes at its old
// home. A world without a quantum moves there as before.
func TestMovingAQuantumWorldToAGroupWithALog15VoterFencesNothing(t *testing.T) {
	src, dst := log15Target(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quant := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.5}}}}
	require.NoError(t, src.CreateWorld(ctx, "q", quant))
	act(t, src, incr("q", "p1", 1, "e1"))
	require.Equal(t, fsm.ImportRulesNeeds(1, quant), RulesNeeds(src, "q"))

	_, err := Move(ctx, src, dst, "q", 2, nil)
	require.ErrorIs(t, err, store.ErrVersionGate)
	require.ErrorContains(t, err, "nothing fenced")
	info, err := src.World("q")
	require.NoError(t, err)
	require.Nil(t, info.Moved, "nothing fenced")
	act(t, src, incr("q", "p1", 2, "e1"))
	_, err = dst.World("q")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)

	mustCreateWorld(t, src, "plain")
	act(t, src, incr("plain", "p1", 1, "e1"))
	require.Zero(t, RulesNeeds(src, "plain"), "nothing beyond the export's format")
	seq, err := Move(ctx, src, dst, "plain", 2, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)

	require.Zero(t, RulesNeeds(src, "absent"), "the fence tells")
	require.NoError(t, CheckTargetRules(&fakeGroup{}, "q", fsm.ImportRulesNeeds(1, quant)), "a target without a gate is not asked")
	require.NoError(t, CheckTargetRules(dst, "q", fsm.Versions{}), "nothing to ask")
}
