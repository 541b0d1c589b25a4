package wire

// The statuses of an event on the wire (Event.Status).
const (
	StatusApplied  = "applied"
	StatusConflict = "conflict"
	StatusRejected = "rejected"
)

// The priorities of an action on the wire (ActionRequest.Priority,
// Event.Priority).
const (
	PriorityNameCritical = "critical"
	PriorityNameBulk     = "bulk"
)

// Change is one field's state in an event as clients see it: after the
// action for applied events, the current state of a field whose expect
// failed for conflicts.
type Change struct {
	Entity  string  `json:"entity"`
	Field   string  `json:"field,omitempty"`
	Op      string  `json:"op,omitempty"`
	Value   *Value  `json:"value,omitempty"`
	Set     []Value `json:"set,omitempty"`
	Version uint64  `json:"version"`
	Exists  *bool   `json:"exists,omitempty"`
}

// Event is the committed outcome of one action as clients see it: in HTTP
// answers, event streams, play frames and the Go client.
type Event struct {
	World     string                       `json:"world"`
	Seq       uint64                       `json:"seq"`
	Index     uint64                       `json:"index"`
	Time      int64                        `json:"time"`
	Player    string                       `json:"player"`
	ClientSeq uint64                       `json:"client_seq"`
	Priority  string                       `json:"priority"`
	Status    string                       `json:"status"`
	Reason    string                       `json:"reason,omitempty"`
	Duplicate bool                         `json:"duplicate,omitempty"`
	Versions  map[string]map[string]uint64 `json:"versions,omitempty"`
	Changes   []Change                     `json:"changes,omitempty"`
	Notice    *Notice                      `json:"notice,omitempty"`
}

// Notice is a system event's record (no player acted): kind
// "checkpoint_mismatch" says replica Node's state differed from the
// majority's at the checkpoint of log index Index proposed by Leader;
// kind "rules" says the world's rules changed at this event, to rules
// version RulesVersion (the events after it are cut under them).
type Notice struct {
	Kind         string `json:"kind"`
	Node         string `json:"node,omitempty"`
	Index        uint64 `json:"index,omitempty"`
	Leader       string `json:"leader,omitempty"`
	RulesVersion uint64 `json:"rules_version,omitempty"`
}
