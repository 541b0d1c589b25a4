package api

import (
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// shardFake is a backend with a shard map.
type shardFake struct {
	*apitest.Fake
	m wire.ShardMap
}

func (f shardFake) ShardMap() wire.ShardMap { return f.m }

func TestShardsRouteShowsTheShardMapToAdmins(t *testing.T) {
	t.Parallel()
	want := wire.ShardMap{Meta: true, Nodes: []wire.ShardNode{{ID: "n1", Raft: "h:1", HTTP: "h:2"}},
		Shards: []wire.ShardInfo{{ID: 1, Voters: []string{"n1"}, Leader: "n1", Worlds: 1}}, Worlds: map[string]uint64{"w": 1}}
	e := newEnvFor(t, shardFake{Fake: apitest.NewFake(), m: want}, withSecret)
	code, _, b := e.Do("GET", wire.PathShards, "", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)
	var got wire.ShardMap
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, want, got)
	e.RequireError(401, edge.CodeUnauthorized, "GET", wire.PathShards, "")

	single := newEnv(t, apitest.NewFake())
	single.RequireError(422, fsm.CodeNotSupported, "GET", wire.PathShards, "")
}
