package wire

// ActionRequest is one action as the HTTP API and the play protocol take
// it; the world is in the path (or the connection). Player and Seq are the
// idempotency key with the world: a retry must send the same payload with
// the same Seq. It carries either raw Ops or a declared action: Action
// names one of the world's rules' actions and Params gives its parameters
// (docs/RULES.md); the two keys are left out of raw actions, whose bytes
// are as before.
type ActionRequest struct {
	Player    string           `json:"player"`
	Seq       uint64           `json:"seq"`
	InputTime int64            `json:"input_time,omitempty"` // client input time, unix nanoseconds
	Priority  string           `json:"priority,omitempty"`   // "critical" (default) or "bulk"
	Ops       []Op             `json:"ops"`
	Action    string           `json:"action,omitempty"`
	Params    map[string]Value `json:"params,omitempty"`
}

// Batch is the body of POST /v1/worlds/{world}/actions:batch.
type Batch struct {
	Actions []ActionRequest `json:"actions"`
}
