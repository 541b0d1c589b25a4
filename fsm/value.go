package fsm

import (
	"fmt"

	"github.com/gsd-dev/gsd/wire"
)

// Kind is the type of a Value (wire.Kind: clients send values).
type Kind = wire.Kind

// The kinds of values a field can hold.
const (
	KindNull   = wire.KindNull
	KindInt    = wire.KindInt
	KindFloat  = wire.KindFloat
	KindString = wire.KindString
	KindBool   = wire.KindBool
)

// Value is a scalar field value (wire.Value: the same type on the wire and
// in the state, so Apply converts nothing).
type Value = wire.Value

// ParseKind parses a type name from world rules.
func ParseKind(s string) (Kind, error) { return wire.ParseKind(s) }

// Int returns an int Value.
func Int(n int64) Value { return wire.Int(n) }

// Float returns a float Value.
func Float(f float64) Value { return wire.Float(f) }

// String returns a string Value.
func String(s string) Value { return wire.String(s) }

// Bool returns a bool Value.
func Bool(b bool) Value { return wire.Bool(b) }

// coerce converts v to kind k where that loses nothing (an int literal into a
// float field); otherwise it reports ErrTypeMismatch.
func coerce(v Value, k Kind) (Value, error) {
	if v.Kind == k {
		return v, nil
	}
	if v.Kind == KindInt && k == KindFloat {
		return Float(float64(v.Int)), nil
	}
	return v, fmt.Errorf("%w: got %s, want %s", ErrTypeMismatch, v.Kind, k)
}
