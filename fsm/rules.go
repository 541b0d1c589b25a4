package fsm

import (
	"encoding/json"
	"fmt"
	"sort"

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
type Rules struct {
	Strict bool
	Fair   Fairness // opt-in fair resolution (see Fairness); zero: off
	Fields map[string]FieldRule
}

// maxRuleFields bounds the declared fields of a world.
const maxRuleFields = 1024

// Validate checks that every declared field has a type its policy accepts.
func (r Rules) Validate() error {
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

// MarshalJSON encodes rules in their wire form (Wire):
// {"strict":..,"fields":{"f":{"type":..,"policy":..}}}.
func (r Rules) MarshalJSON() ([]byte, error) { return json.Marshal(r.Wire()) }

// Wire returns the rules' wire form.
func (r Rules) Wire() wire.Rules {
	j := wire.Rules{Strict: r.Strict, FairWindow: durationString(r.Fair.Window), MaxLag: durationString(r.Fair.MaxLag)}
	if len(r.Fields) > 0 {
		j.Fields = make(map[string]wire.FieldRule, len(r.Fields))
		for n, f := range r.Fields {
			j.Fields[n] = wire.FieldRule{Type: f.Type.String(), Policy: f.Policy.String()}
		}
	}
	return j
}

// UnmarshalJSON decodes and validates rules. A missing type defaults to the
// policy's natural one (int for counters, string otherwise).
func (r *Rules) UnmarshalJSON(b []byte) error {
	var j wire.Rules
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: rules: %v", ErrMalformed, err)
	}
	fair, err := parseFairness(j.FairWindow, j.MaxLag)
	if err != nil {
		return err
	}
	out := Rules{Strict: j.Strict, Fair: fair}
	if len(j.Fields) > 0 {
		out.Fields = make(map[string]FieldRule, len(j.Fields))
	}
	for n, jf := range j.Fields {
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
