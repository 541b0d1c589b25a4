package wire

import "fmt"

// NodeInfo is a cluster member's addresses, replicated so that any node can
// forward to the leader's HTTP address and resolve peers' Raft addresses;
// also the body of a join.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Region   string `json:"region,omitempty"`
	// Versions are the formats the node reads (zero: not reported).
	Versions Versions `json:"versions,omitzero"`
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
	Versions     Versions   `json:"versions"` // what this node reads
	// LastMismatch is the last hash checkpoint mismatch reported to this
	// node as leader (issue 12); absent when none was.
	LastMismatch *MismatchReport `json:"last_mismatch,omitempty"`
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

// Versions are the formats a binary reads: the log (command kinds and their
// encodings), the snapshot and the node-to-node wire. Each node reports its
// own in the replicated node table (fsm.Versions is this type; fsm says
// which versions this binary reads and what each command needs).
type Versions struct {
	Log      uint32 `json:"log"`
	Snapshot uint32 `json:"snapshot"`
	Wire     uint32 `json:"wire"`
}

// IsZero reports whether nothing was reported.
func (v Versions) IsZero() bool { return v == Versions{} }

// Covers reports whether a node reading v reads everything need asks for.
func (v Versions) Covers(need Versions) bool {
	return v.Log >= need.Log && v.Snapshot >= need.Snapshot && v.Wire >= need.Wire
}

// String formats v as "log L, snapshot S, wire W".
func (v Versions) String() string {
	return fmt.Sprintf("log %d, snapshot %d, wire %d", v.Log, v.Snapshot, v.Wire)
}
