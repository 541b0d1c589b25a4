package wire

// PathShards is the admin route of the cluster's shard map (issue 14).
const PathShards = "/v1/cluster/shards"

// ShardMap is the cluster's shard map as a node sees it (GET
// /v1/cluster/shards): from the meta group with gsd --meta, else the
// static --shard-map.
type ShardMap struct {
	Meta   bool              `json:"meta"` // held by the meta group (else a static file)
	Nodes  []ShardNode       `json:"nodes"`
	Shards []ShardInfo       `json:"shards"`
	Worlds map[string]uint64 `json:"worlds"` // listed worlds; others hash over the shards
}

// ShardNode is one node of the shard map.
type ShardNode struct {
	ID   string `json:"id"`
	Raft string `json:"raft"`
	HTTP string `json:"http"`
}

// ShardInfo is one shard: its voters, its last known leader and what
// placement weighs.
type ShardInfo struct {
	ID      uint64   `json:"id"`
	Voters  []string `json:"voters"`
	Leader  string   `json:"leader,omitempty"` // the meta group's hint; empty when unknown
	Worlds  int      `json:"worlds"`           // worlds the map lists on it
	Players uint64   `json:"players"`          // as its leader last reported
}
