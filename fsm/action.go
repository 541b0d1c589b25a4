package fsm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Limits on one action; the api rejects bigger input before commit and the
// FSM rejects it again, so a buggy edge cannot bloat the state.
const (
	MaxOpsPerAction = 256
	MaxNameLen      = 128
	MaxStringLen    = 4096
)

// OpKind is the kind of one op.
type OpKind uint8

// The ops.
const (
	OpSet OpKind = iota + 1
	OpIncr
	OpAdd
	OpRemove
	OpDelete
)

var opNames = [...]string{"", "set", "incr", "add", "remove", "delete"}

// String returns the op's wire name.
func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "op(" + strconv.Itoa(int(k)) + ")"
}

// ParseOpKind parses an op's wire name.
func ParseOpKind(s string) (OpKind, error) {
	for i, n := range opNames {
		if n == s && i != 0 {
			return OpKind(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown op %q", ErrMalformed, s)
}

// ExpectMode says what an op expects of its field before the action.
type ExpectMode uint8

// The expect modes: none, the field must not exist ("*"), or the field's
// version must equal Version ("N").
const (
	ExpectNone ExpectMode = iota
	ExpectAbsent
	ExpectVersion
)

// Expect is an op's optimistic-concurrency precondition.
type Expect struct {
	Mode    ExpectMode
	Version uint64
}

// String returns the wire form: "", "*" or the version.
func (e Expect) String() string {
	switch e.Mode {
	case ExpectAbsent:
		return "*"
	case ExpectVersion:
		return strconv.FormatUint(e.Version, 10)
	}
	return ""
}

// ParseExpect parses "", "*" or a decimal version.
func ParseExpect(s string) (Expect, error) {
	switch s {
	case "":
		return Expect{}, nil
	case "*":
		return Expect{Mode: ExpectAbsent}, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return Expect{}, fmt.Errorf("%w: expect must be \"*\" or a version, got %q", ErrMalformed, s)
	}
	return Expect{Mode: ExpectVersion, Version: n}, nil
}

// Priority is an action's lane in the batcher and the feed.
type Priority uint8

// The priorities. Critical is the zero value: an action is critical unless it
// says it is bulk.
const (
	PriorityCritical Priority = iota
	PriorityBulk
)

// String returns the priority's wire name.
func (p Priority) String() string {
	if p == PriorityBulk {
		return "bulk"
	}
	return "critical"
}

// Op is one change inside an action.
type Op struct {
	Kind   OpKind
	Entity string
	Field  string // empty for delete
	Value  Value  // set: the value; add/remove: the element
	By     int64  // incr
	Expect Expect
}

// Action is what a player asks for. All its ops apply, or none.
type Action struct {
	World     string
	Player    string
	Seq       uint64 // client seq; with World and Player the idempotency key
	InputTime int64  // optional client input time, unix nanoseconds
	Priority  Priority
	Ops       []Op
}

// Validate checks the action's shape: names, op kinds, sizes. It does not
// look at world state.
func (a *Action) Validate() error {
	if err := checkName("world", a.World); err != nil {
		return err
	}
	if err := checkName("player", a.Player); err != nil {
		return err
	}
	if a.Seq == 0 {
		return fmt.Errorf("%w: seq must be > 0", ErrMalformed)
	}
	if a.Priority > PriorityBulk {
		return fmt.Errorf("%w: unknown priority", ErrMalformed)
	}
	if len(a.Ops) == 0 {
		return fmt.Errorf("%w: an action needs at least one op", ErrMalformed)
	}
	if len(a.Ops) > MaxOpsPerAction {
		return fmt.Errorf("%w: more than %d ops", ErrMalformed, MaxOpsPerAction)
	}
	for i := range a.Ops {
		if err := a.Ops[i].validate(); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

func (o *Op) validate() error {
	if err := checkName("entity", o.Entity); err != nil {
		return err
	}
	if o.Expect.Mode > ExpectVersion {
		return fmt.Errorf("%w: bad expect", ErrMalformed)
	}
	// Every op carries its Value in the log entry, used or not: one the
	// codec cannot carry would make every replica fail to decode the entry.
	if !o.Value.valid() {
		return fmt.Errorf("%w: bad value (kind, bool or non-finite float)", ErrMalformed)
	}
	if len(o.Value.Str) > MaxStringLen {
		return fmt.Errorf("%w: string longer than %d bytes", ErrMalformed, MaxStringLen)
	}
	switch o.Kind {
	case OpDelete:
		if o.Field != "" {
			return fmt.Errorf("%w: delete takes no field", ErrMalformed)
		}
		return nil
	case OpSet, OpAdd, OpRemove:
		if o.Value.Kind == KindNull {
			return fmt.Errorf("%w: %s needs a value", ErrMalformed, o.Kind)
		}
	case OpIncr:
	default:
		return fmt.Errorf("%w: unknown op", ErrMalformed)
	}
	return checkName("field", o.Field)
}

func checkName(what, s string) error {
	if s == "" || len(s) > MaxNameLen || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s name must be 1..%d bytes of UTF-8", ErrMalformed, what, MaxNameLen)
	}
	return nil
}

// jsonOp is the HTTP/JSON form of an op.
type jsonOp struct {
	Op     string          `json:"op"`
	Entity string          `json:"entity"`
	Field  string          `json:"field,omitempty"`
	Value  json.RawMessage `json:"value,omitempty"`
	By     int64           `json:"by,omitempty"`
	Expect string          `json:"expect,omitempty"`
}

// MarshalJSON encodes the op in its wire form.
func (o Op) MarshalJSON() ([]byte, error) {
	j := jsonOp{Op: o.Kind.String(), Entity: o.Entity, Field: o.Field, By: o.By, Expect: o.Expect.String()}
	if o.Value.Kind != KindNull {
		j.Value, _ = o.Value.MarshalJSON()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the op's wire form.
func (o *Op) UnmarshalJSON(b []byte) error {
	var j jsonOp
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: op: %v", ErrMalformed, err)
	}
	k, err := ParseOpKind(j.Op)
	if err != nil {
		return err
	}
	e, err := ParseExpect(j.Expect)
	if err != nil {
		return err
	}
	out := Op{Kind: k, Entity: j.Entity, Field: j.Field, By: j.By, Expect: e}
	if len(j.Value) > 0 {
		if err := out.Value.UnmarshalJSON(j.Value); err != nil {
			return err
		}
	}
	*o = out
	return nil
}

// CmdKind is the kind of a replicated command.
type CmdKind uint8

// The command kinds carried in a Batch.
const (
	CmdAction CmdKind = iota + 1
	CmdCreateWorld
	CmdPutNode
	CmdRemoveNode
	CmdSessionOpen
	CmdSessionAck
	CmdSessionResume
	CmdSessionClose
	CmdSessionData
	CmdSessionKick
	CmdSessionBan
	CmdSessionUnban
	CmdSessionImport
	CmdSessionAcks
	CmdNodeVersions // log version 2: a node's supported versions
	CmdUpdateRules  // log version 2: replaces a world's rules
)

// WorldSpec creates a world. Origin names the replica (the shard's region)
// whose id the world's CRDT fields use for local writes.
type WorldSpec struct {
	ID     string
	Origin string
	Rules  Rules
}

// NodeInfo is a cluster member's addresses, replicated so that any node can
// forward to the leader's HTTP address and resolve peers' Raft addresses.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Region   string `json:"region,omitempty"`
	// Versions are the formats the node reads (zero: not reported).
	Versions Versions `json:"versions,omitzero"`
}

// Command is one replicated command; exactly one pointer is set, by Kind.
type Command struct {
	Kind    CmdKind
	Action  *Action
	World   *WorldSpec
	Node    *NodeInfo    // CmdPutNode, and CmdRemoveNode (ID only)
	Session *SessionCmd  // CmdSession* but CmdSessionAcks
	Acks    []SessionAck // CmdSessionAcks
	Rules   *RulesUpdate // CmdUpdateRules
}

// Batch is the payload of one Raft log entry: the leader's time and the
// commands grouped by the batcher.
type Batch struct {
	Time     int64 // leader wall clock, unix nanoseconds
	Commands []Command
}
