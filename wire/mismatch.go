package wire

import "time"

// CheckpointMismatch is one replica's report that its state hash of a
// world at a hash checkpoint's log index differs from the hash the
// checkpoint's leader carried (issue 12, store/checkpoint.go): the body of
// the node-to-node call POST /internal/v1/worlds/{world}/checkpoints:mismatch,
// which a follower sends to the leader of the world's group.
type CheckpointMismatch struct {
	Node       string `json:"node"`        // the replica that found it
	World      string `json:"world"`       // the world; the path's {world}
	Index      uint64 `json:"index"`       // the log index both hashes are of
	Leader     string `json:"leader"`      // the node that proposed the checkpoint
	LeaderHash Hash   `json:"leader_hash"` // the hash the checkpoint carried
	Hash       Hash   `json:"hash"`        // Node's own hash
}

// MismatchAnswer answers a CheckpointMismatch report: whether the report
// made a majority of the voters against the leader, which then handed its
// leadership to another voter.
type MismatchAnswer struct {
	SteppedDown bool `json:"stepped_down"`
}

// MismatchReport is the last checkpoint mismatch reported to this node as
// leader (GET /v1/status, "last_mismatch"): the checkpoint, who reported
// against it with which hash, and whether they made a majority of the
// voters (then this leader was the odd replica and stepped down; else the
// reporters are the odd ones).
type MismatchReport struct {
	World      string             `json:"world"`
	Index      uint64             `json:"index"`
	Leader     string             `json:"leader"`
	LeaderHash Hash               `json:"leader_hash"`
	Reporters  []MismatchReporter `json:"reporters"` // sorted by node
	Voters     int                `json:"voters"`
	Majority   bool               `json:"majority"`
	Time       time.Time          `json:"time"` // when the last report arrived
}

// MismatchReporter is one replica that reported against a checkpoint, and
// its own hash.
type MismatchReporter struct {
	Node string `json:"node"`
	Hash Hash   `json:"hash"`
}

// HealOrder is a leader's order to one of its group's replicas, whose
// state differed from the majority's and which the leader has removed
// from the group: move the group's data aside, start it empty and wait to
// be added again (POST /internal/v1/groups/{group}/checkpoints:heal).
type HealOrder struct {
	Node   string `json:"node"`   // the replica ordered; a node refuses an order for another
	Leader string `json:"leader"` // the leader that removed it
}

// HealAnswer answers a HealOrder: the node took it and restarts the
// group empty.
type HealAnswer struct {
	Accepted bool `json:"accepted"`
}

// CheckpointMark is a replica's hash of a world at the checkpoint of log
// index Index, as a healing leader asks the other voters for it (GET
// /internal/v1/groups/{group}/worlds/{world}/checkpoints/{index}): Known
// is false when the replica holds no mark there.
type CheckpointMark struct {
	World string `json:"world"`
	Index uint64 `json:"index"`
	Hash  Hash   `json:"hash,omitempty"`
	Known bool   `json:"known"`
}
