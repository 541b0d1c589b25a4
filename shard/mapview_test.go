package shard

import (
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestBackendShardMapShowsTheRoutersView(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Shards: []MapShard{{ID: 0, Voters: []string{"n1"}}, {ID: 5, Voters: []string{"n2", "n1"}}},
		Worlds: map[string]uint64{"a": 5, "b": 5},
	})
	src := &hintSource{v: &View{Map: c.smap, Leaders: map[uint64]string{5: "n2"}, Players: map[uint64]uint64{5: 7}, Events: map[uint64]uint64{5: 40}, Replicated: true,
		Joining: map[uint64]string{5: "n3"}}}
	b, err := NewBackend(NewRouterWith(c.mgrs["n1"], src))
	require.NoError(t, err)
	require.Equal(t, wire.ShardMap{Meta: true,
		Nodes:  []wire.ShardNode{{ID: "n1", Raft: c.smap.Nodes["n1"].Raft, HTTP: "http-n1:80"}, {ID: "n2", Raft: c.smap.Nodes["n2"].Raft, HTTP: "http-n2:80"}},
		Shards: []wire.ShardInfo{{ID: 0, Voters: []string{"n1"}}, {ID: 5, Voters: []string{"n2", "n1"}, Leader: "n2", Worlds: 2, Players: 7, Events: 40, Joining: "n3"}},
		Worlds: map[string]uint64{"a": 5, "b": 5}}, b.ShardMap())

	static, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	src.v = &View{Map: &Map{Shards: c.smap.Shards}}
	m, err := NewBackend(NewRouterWith(c.mgrs["n1"], src))
	require.NoError(t, err)
	require.False(t, static.ShardMap().Meta)
	require.Equal(t, map[string]uint64{}, m.ShardMap().Worlds)
	require.Empty(t, m.ShardMap().Nodes)
}
