package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
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
		return PriorityNameBulk
	}
	return PriorityNameCritical
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
