package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A field's quantum (issue 13) needs log version 16: a voter that reads
// an older log would refuse the key in the rules' schema block, so the
// leader proposes neither a world nor a rules update that sets it while
// such a voter is in the group.
func TestQuantumWaitsForEveryVoterToReadLogVersion16(t *testing.T) {
	t.Parallel()
	quant := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.1}}}}
	old := newCluster(t, 1, func(cfg *Config) { cfg.Versions = fsm.Versions{Log: 15, Snapshot: fsm.SnapshotVersion, Wire: 1} })
	s := old.leader()
	require.ErrorIs(t, s.CreateWorld(ctxT(t), "w", quant), ErrVersionGate)
	require.NoError(t, s.CreateWorld(ctxT(t), "w", fsm.Rules{}), "rules without the key still go")
	_, err := s.UpdateRules(ctxT(t), "w", quant, 0)
	require.ErrorIs(t, err, ErrVersionGate)

	cur := newCluster(t, 1, nil).leader()
	require.NoError(t, cur.CreateWorld(ctxT(t), "w", quant))
	v, err := cur.UpdateRules(ctxT(t), "w", quant, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
}
