package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The visibility rules keys (issue 13) need log version 7: a voter that
// reads an older log would refuse them and apply the entry differently, so
// the leader does not propose them while such a voter is in the group.
func TestVisibilityRulesWaitForEveryVoterToReadLogVersion7(t *testing.T) {
	t.Parallel()
	visible := fsm.Rules{Fields: map[string]fsm.FieldRule{"gold": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"gold": {Visible: "owner"}}}}
	old := newCluster(t, 1, func(cfg *Config) { cfg.Versions = fsm.Versions{Log: 6, Snapshot: 5, Wire: 1} })
	s := old.leader()
	require.ErrorIs(t, s.CreateWorld(ctxT(t), "w", visible), ErrVersionGate)
	// Nothing was proposed: the same world, without the keys, is created
	// now (it would exist had the refused command been logged). The log's
	// last index is no witness: the node logs entries of its own meanwhile.
	require.NoError(t, s.CreateWorld(ctxT(t), "w", fsm.Rules{}), "rules without the keys still go")

	cur := newCluster(t, 1, nil).leader()
	require.NoError(t, cur.CreateWorld(ctxT(t), "w", visible))
	v, err := cur.UpdateRules(ctxT(t), "w", visible, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
}
