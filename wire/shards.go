package wire

import (
	"net/url"
	"strconv"
)

// The admin routes of the cluster's shard map (issue 14): GET the map,
// POST a shard (ShardCreate), DELETE PathShards/{id}, POST a world's
// placement (WorldPlacement) to PathShardWorlds, POST a node to the map
// (ShardNode) at PathShardNodes, DELETE one at PathShardNode.
const (
	PathShards      = "/v1/cluster/shards"
	PathShardWorlds = "/v1/cluster/shards/worlds"
	PathShardNodes  = "/v1/cluster/shards/nodes"
)

// PathShardNodesDown is POST's path to mark nodes of the meta map down
// (NodesDown): declared dead, they leave the meta group, so the meta
// group's version gate no longer waits for them and their shards can be
// evacuated (gsdctl node down, then node evacuate).
const PathShardNodesDown = PathShardNodes + ":down"

// NodesDown is the body of POST PathShardNodesDown: nodes that are down
// for good. The meta group refuses one that answers (conflict: alive,
// evacuate it as it is); give every dead member in one call, since each
// one closes the version gate for the others.
type NodesDown struct {
	Nodes []string `json:"nodes"`
}

// PathShardNode is DELETE's path to remove node id from the meta map
// (after evacuating it): refused while it is a shard's voter.
func PathShardNode(id string) string { return PathShardNodes + "/" + url.PathEscape(id) }

// ShardMap is the cluster's shard map as a node sees it (GET
// /v1/cluster/shards): from the meta group with gsd --meta, else the
// static --shard-map.
type ShardMap struct {
	Meta   bool              `json:"meta"` // held by the meta group (else a static file)
	Nodes  []ShardNode       `json:"nodes"`
	Shards []ShardInfo       `json:"shards"`
	Worlds map[string]uint64 `json:"worlds"` // listed worlds; others hash over the shards
	// MetaMembers is the meta group's own Raft configuration as this
	// node knows it (gsd --meta; absent with a static map): it follows
	// the map's nodes.
	MetaMembers []MetaMember `json:"meta_members,omitempty"`
}

// MetaMember is a member of the meta group's Raft configuration: a voter,
// or a nonvoter that gets the map without voting on it.
type MetaMember struct {
	ID    string `json:"id"`
	Voter bool   `json:"voter"`
}

// ShardNode is one node of the shard map.
type ShardNode struct {
	ID   string `json:"id"`
	Raft string `json:"raft"`
	HTTP string `json:"http"`
	// Region is a label for voter placement, given when the node is
	// added (POST PathShardNodes); the map's view shows it with gsd
	// --meta (a static map has none).
	Region string `json:"region,omitempty"`
	// Down: the node was declared dead (PathShardNodesDown); it stays in
	// the map until evacuated and removed. Never set in a POST.
	Down bool `json:"down,omitempty"`
}

// ShardInfo is one shard: its voters, its last known leader and what
// placement weighs.
type ShardInfo struct {
	ID      uint64   `json:"id"`
	Voters  []string `json:"voters"`
	Leader  string   `json:"leader,omitempty"` // the meta group's hint; empty when unknown
	Worlds  int      `json:"worlds"`           // worlds the map lists on it
	Players uint64   `json:"players"`          // as its leader last reported
	Events  uint64   `json:"events_per_sec"`   // likewise
	// Joining is the node taking a voter's seat while a replacement is
	// under way (POST PathShardReplace); the old voter is still listed.
	Joining string `json:"joining,omitempty"`
}

// ShardCreate is the body of POST /v1/cluster/shards: a new shard with
// its voters, or with Replicas voters the meta group spreads over the
// nodes.
type ShardCreate struct {
	ID       uint64   `json:"id"`
	Voters   []string `json:"voters,omitempty"`
	Replicas int      `json:"replicas,omitempty"`
}

// WorldPlacement is the body and the answer of POST
// /v1/cluster/shards/worlds: World on Shard; without Shard, the meta
// group places the world (on the shard with the most headroom) and the
// answer says where.
//
// With Expect (and Shard), the world goes on Shard only while it is on
// shard Expect now, listed or where its name hashes: else 409 conflict,
// nothing changed (gsdctl shard drain's pins, so a concurrent move is
// never overwritten). It needs every meta member on a binary that reads
// it (else 409 version_gate); an older node refuses the field (400).
type WorldPlacement struct {
	World  string  `json:"world"`
	Shard  *uint64 `json:"shard,omitempty"`
	Expect *uint64 `json:"expect,omitempty"`
}

// PathShardReplace is POST's path to replace a voter of shard id
// (VoterReplace): node evacuation, one shard at a time.
func PathShardReplace(id uint64) string {
	return PathShards + "/" + strconv.FormatUint(id, 10) + "/replace"
}

// VoterReplace is the body of POST /v1/cluster/shards/{id}/replace: New
// takes Old's seat in the shard; without New the meta group picks it
// (fewest seats, spread over regions, never a voter of the shard). The
// shard first gains New (it joins, catches up and becomes a voter), then
// loses Old; the map shows Old among the voters until then.
type VoterReplace struct {
	Old string `json:"old"`
	New string `json:"new,omitempty"`
}

// VoterReplaced answers a VoterReplace: the node picked and the shard's
// voters once the replacement is done.
type VoterReplaced struct {
	Shard  uint64   `json:"shard"`
	Old    string   `json:"old"`
	New    string   `json:"new"`
	Voters []string `json:"voters"`
}
