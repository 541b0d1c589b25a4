package wire

// NodeInfo is a cluster member's addresses, replicated so that any node can
// forward to the leader's HTTP address and resolve peers' Raft addresses;
// also the body of a join.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Region   string `json:"region,omitempty"`
}

// Status is a node's view of its Raft group (GET /v1/status).
type Status struct {
	ID           string     `json:"id"`
	State        string     `json:"state"`
	Leader       string     `json:"leader"`
	LeaderHTTP   string     `json:"leader_http,omitempty"`
	Term         uint64     `json:"term"`
	AppliedIndex uint64     `json:"applied_index"`
	CommitIndex  uint64     `json:"commit_index"`
	LastIndex    uint64     `json:"last_index"`
	Region       string     `json:"region"`
	Servers      []Server   `json:"servers"`
	Nodes        []NodeInfo `json:"nodes"`
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
}

// DrainRequest is the optional body of POST /v1/node/drain.
type DrainRequest struct {
	To string `json:"to,omitempty"` // a node id; default: spread over all others
}

// DrainResult answers POST and DELETE /v1/node/drain: the node, whether it
// drains, how many play connections it moved and which sessions ended
// otherwise.
type DrainResult struct {
	Node     string   `json:"node"`
	Draining bool     `json:"draining"`
	Moved    int      `json:"moved"`
	Failed   []string `json:"failed,omitempty"`
}

// HeaderClusterKey carries the cluster secret to the admin and internal
// endpoints of a cluster started with one (docs/API.md, "Cluster
// credential").
const HeaderClusterKey = "X-Gsd-Cluster-Key"
