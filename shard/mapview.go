package shard

import (
	"maps"
	"slices"

	"github.com/gsd-dev/gsd/wire"
)

// ShardMap returns the node's current shard map for the admin route
// (GET /v1/cluster/shards): nodes and shards in id order, each shard with
// its leader hint, its listed worlds and its reported load.
func (b *Backend) ShardMap() wire.ShardMap {
	v := b.r.src.View()
	out := wire.ShardMap{Meta: v.Replicated, Nodes: []wire.ShardNode{}, Shards: []wire.ShardInfo{},
		Worlds: maps.Clone(v.Map.Worlds)}
	if out.Worlds == nil {
		out.Worlds = map[string]uint64{}
	}
	for _, id := range slices.Sorted(maps.Keys(v.Map.Nodes)) {
		n := v.Map.Nodes[id]
		out.Nodes = append(out.Nodes, wire.ShardNode{ID: id, Raft: n.Raft, HTTP: n.HTTP})
	}
	worlds := map[uint64]int{}
	for _, g := range v.Map.Worlds {
		worlds[g]++
	}
	for _, s := range v.Map.Shards {
		out.Shards = append(out.Shards, wire.ShardInfo{ID: s.ID, Voters: slices.Clone(s.Voters), Leader: v.Leaders[s.ID],
			Worlds: worlds[s.ID], Players: v.Players[s.ID], Events: v.Events[s.ID], Joining: v.Joining[s.ID]})
	}
	return out
}
