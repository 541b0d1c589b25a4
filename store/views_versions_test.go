package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The rules key views (issue 13's aggregated views), teams from a token
// claim, and a session open that carries the claim's team need log
// version 10:
// a voter that reads an older log refuses it (not_supported) and would
// apply the entry differently, so the leader does not propose it while
// such a voter is in the group; once every voter reads 10 it goes.
func TestViewsAndClaimTeamsWaitForEveryVoterToReadLogVersion10(t *testing.T) {
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

	claim := fsm.Rules{Schema: fsm.Schema{Teams: fsm.TeamRule{From: "claim", Key: "side"}}}
	require.ErrorIs(t, s.CreateWorld(ctxT(t), "c", claim), ErrVersionGate, "teams from a claim too")
	require.NoError(t, s.CreateWorld(ctxT(t), "c", fsm.Rules{}))
	_, err = s.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "c", ID: "s1", Player: "ann",
		Data: []fsm.DataItem{{Key: "side", Value: fsm.String("red")}}})
	require.ErrorIs(t, err, ErrVersionGate, "an open that carries the claim's team")

	cur := newCluster(t, 1, nil).leader()
	require.NoError(t, cur.CreateWorld(ctxT(t), "w", views))
	w, err := cur.fsm.World("w")
	require.NoError(t, err)
	require.Equal(t, views.Schema.Views, w.Rules.Schema.Views)
	require.NoError(t, cur.CreateWorld(ctxT(t), "c", claim))
	info, err := cur.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "c", ID: "s1", Player: "ann",
		Data: []fsm.DataItem{{Key: "side", Value: fsm.String("red")}}})
	require.NoError(t, err)
	require.Equal(t, map[string]fsm.Value{"side": fsm.String("red")}, info.Data)
}
