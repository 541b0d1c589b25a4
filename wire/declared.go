package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// The declared actions and roles of a world's rules (docs/RULES.md, issue
// 12), defined once here: clients send them in rules, and fsm keeps them
// as they are (fsm.ActionRule and the others are these types).

// ActionRule is a declared action: typed parameters, preconditions that
// must all hold and effects, the op templates it applies.
type ActionRule struct {
	Params  map[string]string `json:"params,omitempty"` // name → int, float, string or bool
	Pre     []Precondition    `json:"pre,omitempty"`
	Effects []EffectRule      `json:"effects,omitempty"`
}

// Precondition is one check of an action: a bool expression and the name
// a rejected event carries as its reason when it does not hold. In JSON it
// is the expression alone (named "<action>.pre<i>", i from 0) or
// {"name": .., "expr": ..}.
type Precondition struct {
	Name string
	Expr string
}

type namedPrecondition struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
}

// MarshalJSON writes the expression alone when the precondition has no name.
func (p Precondition) MarshalJSON() ([]byte, error) {
	if p.Name == "" {
		return json.Marshal(p.Expr)
	}
	return json.Marshal(namedPrecondition(p))
}

// UnmarshalJSON reads either form; the object form has exactly the keys
// name and expr, and a name of 1..MaxNameLen bytes of UTF-8.
func (p *Precondition) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*p = Precondition{}
		return json.Unmarshal(b, &p.Expr)
	}
	var o namedPrecondition
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return fmt.Errorf("%w: precondition: %v", ErrMalformed, err)
	}
	if o.Name == "" || len(o.Name) > MaxNameLen || !utf8.ValidString(o.Name) {
		return fmt.Errorf("%w: precondition name must be 1..%d bytes of UTF-8", ErrMalformed, MaxNameLen)
	}
	*p = Precondition(o)
	return nil
}

// EffectRule is one op template of an action: Op is set, incr, add,
// remove or delete; Entity (a string expression) names the entity, Field
// the field (a literal name, so that rules are checked against the
// field's policy when they are set; none for delete) and Value (an
// expression; none for delete) the value, or for incr the amount.
type EffectRule struct {
	Op     string `json:"op"`
	Entity string `json:"entity"`
	Field  string `json:"field,omitempty"`
	Value  string `json:"value,omitempty"`
}

// RoleRule is what a role may do beyond a player: invoke these declared
// actions, and with Raw send raw ops.
type RoleRule struct {
	Actions []string `json:"actions,omitempty"`
	Raw     bool     `json:"raw,omitempty"`
}
