package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The rules key views (issue 13's aggregated views) needs log version 10:
// a voter that reads an older log refuses it (not_supported) and would
// apply the entry differently, so the leader does not propose it while
// such a voter is in the group; once every voter reads 10 it goes.
func TestViewsRulesWaitForEveryVoterToReadLogVersion10(t *testing.T) {
	t.Parallel()
	fields := map[string]fsm.FieldRule{"kills": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}}
	views := fsm.Rules{Fields: fields,
		Schema: fsm.Schema{Views: map[string]fsm.ViewRule{"kills": {Kind: "sum", Field: "kills", By: "player"}}}}
	old := newCluster(t, 1, func(cfg *Config) { cfg.Versions = fsm.Versions{Log: 9, Snapshot: fsm.SnapshotVersion, Wire: 1} })
	s := old.leader()
	require.ErrorIs(t, s.CreateWorld(ctxT(t), "w", views), ErrVersionGate)
	require.NoError(t, s.CreateWorld(ctxT(t), "w", fsm.Rules{Fields: fields}), "rules without the key still go")
	_, err := s.UpdateRules(ctxT(t), "w", views, 0)
	require.ErrorIs(t, err, ErrVersionGate, "nor as an update")

	cur := newCluster(t, 1, nil).leader()
	require.NoError(t, cur.CreateWorld(ctxT(t), "w", views))
	w, err := cur.fsm.World("w")
	require.NoError(t, err)
	require.Equal(t, views.Schema.Views, w.Rules.Schema.Views)
}
