package fsm

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// Policy says how a field merges concurrent writers.
type Policy uint8

// The field policies.
const (
	PolicyNone          Policy = iota // not yet known (undeclared, never written)
	PolicyAuthoritative               // set/delete; last writer by log order, or OCC with expect
	PolicyCounter                     // incr; all increments add up (PN-counter)
	PolicySet                         // add/remove; OR-set
	PolicyMax                         // set; keeps the largest
	PolicyMin                         // set; keeps the smallest
)

var policyNames = [...]string{"", wire.PolicyAuthoritative, wire.PolicyCounter, wire.PolicySet, wire.PolicyMax, wire.PolicyMin}

// String returns the policy's name as used in world rules.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", p)
}

// ParsePolicy parses a policy name.
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if n == s && i != int(PolicyNone) {
			return Policy(i), nil
		}
	}
	return PolicyNone, fmt.Errorf("%w: unknown policy %q", ErrMalformed, s)
}

// accepts reports whether the policy allows the op kind. Delete is an entity
// op and is checked separately.
func (p Policy) accepts(k OpKind) bool {
	switch p {
	case PolicyAuthoritative, PolicyMax, PolicyMin:
		return k == OpSet
	case PolicyCounter:
		return k == OpIncr
	case PolicySet:
		return k == OpAdd || k == OpRemove
	}
	return false
}

// inferPolicy is the policy an undeclared field takes from its first op.
func inferPolicy(k OpKind) Policy {
	switch k {
	case OpIncr:
		return PolicyCounter
	case OpAdd, OpRemove:
		return PolicySet
	}
	return PolicyAuthoritative
}

// FieldRule declares one field: its value type (for sets, the element type)
// and its policy.
type FieldRule struct {
	Type   Kind
	Policy Policy
}

// Rules are a world's declared fields. Undeclared fields take their policy
// from their first op and their type from their first value, unless Strict.
// Schema holds the keys of rules schema v1 that are not built yet
// (docs/RULES.md).
type Rules struct {
	Strict bool
	Fair   Fairness // opt-in fair resolution (see Fairness); zero: off
	Fields map[string]FieldRule
	Schema Schema
}

// maxRuleFields bounds the declared fields of a world.
const maxRuleFields = 1024

// Validate checks that every declared field has a type its policy accepts,
// and the schema's keys: their shapes, then that none whose feature is not
// built is set (ErrNotSupported).
//
// It also compiles the rules' declared actions: an expression that does not
// compile, has the wrong type, could depend on more than its inputs, or
// may cost more than the limit is refused here, when the rules are set.
func (r Rules) Validate() error {
	_, err := r.compile()
	return err
}

// compile is Validate, returning the compiled authority rules (nil when
// there are none) for the world that takes the rules.
func (r Rules) compile() (*authority, error) {
	if err := r.validateFields(); err != nil {
		return nil, err
	}
	if err := r.Schema.validate(r.Fields); err != nil {
		return nil, err
	}
	return compileAuthority(r)
}

func (r Rules) validateFields() error {
	if len(r.Fields) > maxRuleFields {
		return fmt.Errorf("%w: more than %d fields", ErrMalformed, maxRuleFields)
	}
	if err := r.Fair.validate(); err != nil {
		return err
	}
	// In name order: the first error found is part of Apply's results, which
	// must not depend on map iteration order.
	for _, name := range r.fieldNames() {
		f := r.Fields[name]
		if err := checkName("field", name); err != nil {
			return err
		}
		if f.Policy == PolicyNone || int(f.Policy) >= len(policyNames) {
			return fmt.Errorf("%w: field %q has no policy", ErrMalformed, name)
		}
		if f.Type == KindNull || f.Type > KindBool {
			return fmt.Errorf("%w: field %q has no type", ErrMalformed, name)
		}
		if f.Policy == PolicyCounter && f.Type != KindInt {
			return fmt.Errorf("%w: counter field %q must be int", ErrMalformed, name)
		}
		if (f.Policy == PolicyMax || f.Policy == PolicyMin) && f.Type == KindBool {
			return fmt.Errorf("%w: %s field %q cannot be bool", ErrMalformed, f.Policy, name)
		}
	}
	return nil
}

// fieldNames returns the declared field names, sorted.
func (r Rules) fieldNames() []string {
	names := make([]string, 0, len(r.Fields))
	for n := range r.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type jsonFieldRule struct {
	Type   string `json:"type"`
	Policy string `json:"policy"`
	FieldAccess
	// Quantum shadows FieldAccess.Quantum: a pointer, so that an explicit
	// 0 is refused rather than read as "none".
	Quantum *float64 `json:"quantum,omitempty"`
}

type jsonRules struct {
	Strict     bool                     `json:"strict"`
	FairWindow string                   `json:"fair_window,omitempty"`
	MaxLag     string                   `json:"max_lag_compensation,omitempty"`
	Fields     map[string]jsonFieldRule `json:"fields,omitempty"`
	Schema                              // the schema's keys, at the top level
}

// MarshalJSON encodes rules as {"strict":..,"fields":{"f":{"type":..,"policy":..}}}.
func (r Rules) MarshalJSON() ([]byte, error) {
	j := jsonRules{Strict: r.Strict, FairWindow: durationString(r.Fair.Window), MaxLag: durationString(r.Fair.MaxLag), Schema: r.Schema}
	if len(r.Fields) > 0 {
		j.Fields = make(map[string]jsonFieldRule, len(r.Fields))
		for n, f := range r.Fields {
			a := r.Schema.Access[n]
			jf := jsonFieldRule{Type: f.Type.String(), Policy: f.Policy.String(), FieldAccess: a}
			if a.Quantum != 0 {
				jf.Quantum = &a.Quantum
			}
			j.Fields[n] = jf
		}
	}
	return json.Marshal(j)
}

// Wire returns the rules' wire form for clients (wire.Rules): the fields
// (with their write access), strictness, fairness, actions, roles, the
// lifecycle keys and player_data. The spectator keys (fields' visibility,
// delay and quantum, teams, viewers, views, interest) are not in it: a client sets
// them with the rules' JSON (PUT .../rules), and listings leave them out.
func (r Rules) Wire() wire.Rules {
	j := wire.Rules{Strict: r.Strict, FairWindow: durationString(r.Fair.Window), MaxLag: durationString(r.Fair.MaxLag),
		Actions: r.Schema.Actions, Roles: r.Schema.Roles,
		Capacity: r.Schema.Capacity, IdleExpiry: durationString(time.Duration(r.Schema.IdleExpiry)), Mode: r.Schema.Mode, Labels: r.Schema.Labels}
	if pw := r.Schema.PlayerData.PlayerWritable; len(pw) > 0 {
		j.PlayerData = &wire.PlayerDataRule{PlayerWritable: pw}
	}
	if len(r.Fields) > 0 {
		j.Fields = make(map[string]wire.FieldRule, len(r.Fields))
		for n, f := range r.Fields {
			j.Fields[n] = wire.FieldRule{Type: f.Type.String(), Policy: f.Policy.String(), Write: r.Schema.Access[n].Write}
		}
	}
	return j
}

// UnmarshalJSON decodes and validates rules. A missing type defaults to the
// policy's natural one (int for counters, string otherwise).
func (r *Rules) UnmarshalJSON(b []byte) error {
	var j jsonRules
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: rules: %v", ErrMalformed, err)
	}
	fair, err := parseFairness(j.FairWindow, j.MaxLag)
	if err != nil {
		return err
	}
	out := Rules{Strict: j.Strict, Fair: fair, Schema: j.Schema}
	if len(j.Fields) > 0 {
		out.Fields = make(map[string]FieldRule, len(j.Fields))
	}
	for n, jf := range j.Fields {
		a := jf.FieldAccess.normal()
		if jf.Quantum != nil {
			if *jf.Quantum <= 0 {
				return fmt.Errorf("%w: field %q: quantum must be a positive finite number", ErrMalformed, n)
			}
			a.Quantum = *jf.Quantum
		}
		if a != (FieldAccess{}) {
			if out.Schema.Access == nil {
				out.Schema.Access = make(map[string]FieldAccess)
			}
			out.Schema.Access[n] = a
		}
		p, err := ParsePolicy(jf.Policy)
		if err != nil {
			return fmt.Errorf("field %q: %w", n, err)
		}
		t := jf.Type
		if t == "" {
			t = "string"
			if p == PolicyCounter {
				t = "int"
			}
		}
		k, err := ParseKind(t)
		if err != nil {
			return fmt.Errorf("field %q: %w", n, err)
		}
		out.Fields[n] = FieldRule{Type: k, Policy: p}
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*r = out
	return nil
}
