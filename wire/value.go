package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Kind is the type of a Value.
type Kind uint8

// The kinds of values a field can hold.
const (
	KindNull Kind = iota
	KindInt
	KindFloat
	KindString
	KindBool
)

var kindNames = [...]string{"null", "int", "float", "string", "bool"}

// String returns the kind's name as used in world rules.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind parses a type name from world rules.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s && i != int(KindNull) {
			return Kind(i), nil
		}
	}
	return KindNull, fmt.Errorf("%w: unknown type %q", ErrMalformed, s)
}

// Value is a scalar field value. It is comparable, so it can key maps (set
// elements). Bools are kept in Int (0 or 1). NaN and infinities never enter.
type Value struct {
	Kind  Kind
	Int   int64
	Float float64
	Str   string
}

// Int returns an int Value.
func Int(n int64) Value { return Value{Kind: KindInt, Int: n} }

// Float returns a float Value.
func Float(f float64) Value { return Value{Kind: KindFloat, Float: f} }

// String returns a string Value.
func String(s string) Value { return Value{Kind: KindString, Str: s} }

// Bool returns a bool Value.
func Bool(b bool) Value {
	if b {
		return Value{Kind: KindBool, Int: 1}
	}
	return Value{Kind: KindBool}
}

// Compare orders values: first by kind, then by content. It is total and
// deterministic, used for max/min policies and for sorting set elements.
func (v Value) Compare(o Value) int {
	if v.Kind != o.Kind {
		if v.Kind < o.Kind {
			return -1
		}
		return 1
	}
	switch v.Kind {
	case KindInt, KindBool:
		switch {
		case v.Int < o.Int:
			return -1
		case v.Int > o.Int:
			return 1
		}
	case KindFloat:
		switch {
		case v.Float < o.Float:
			return -1
		case v.Float > o.Float:
			return 1
		}
	case KindString:
		switch {
		case v.Str < o.Str:
			return -1
		case v.Str > o.Str:
			return 1
		}
	}
	return 0
}

// Any returns the value as a plain Go value (int64, float64, string, bool or nil).
func (v Value) Any() any {
	switch v.Kind {
	case KindInt:
		return v.Int
	case KindFloat:
		return v.Float
	case KindString:
		return v.Str
	case KindBool:
		return v.Int != 0
	}
	return nil
}

// MarshalJSON encodes the value as a plain JSON scalar.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Kind {
	case KindInt:
		return strconv.AppendInt(nil, v.Int, 10), nil
	case KindFloat:
		return strconv.AppendFloat(nil, v.Float, 'g', -1, 64), nil
	case KindString:
		return json.Marshal(v.Str)
	case KindBool:
		return strconv.AppendBool(nil, v.Int != 0), nil
	}
	return []byte("null"), nil
}

// UnmarshalJSON decodes a JSON scalar. Integral numbers that fit int64 become
// ints, other numbers floats; arrays and objects are malformed.
func (v *Value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("%w: empty value", ErrMalformed)
	}
	switch b[0] {
	case 'n':
		if string(b) != "null" {
			return fmt.Errorf("%w: bad value", ErrMalformed)
		}
		*v = Value{}
	case 't', 'f':
		switch string(b) {
		case "true":
			*v = Bool(true)
		case "false":
			*v = Bool(false)
		default:
			return fmt.Errorf("%w: bad value", ErrMalformed)
		}
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%w: bad string: %v", ErrMalformed, err)
		}
		*v = String(s)
	case '[', '{':
		return fmt.Errorf("%w: values must be scalars (int, float, string, bool)", ErrMalformed)
	default:
		if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			*v = Int(n)
			return nil
		}
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("%w: bad number %q", ErrMalformed, b)
		}
		*v = Float(unsigned(f))
	}
	return nil
}

// unsigned returns f with a zero's sign dropped. A -0 read from a client
// is stored as 0: the state machine takes them as one value, but an
// event's line writes -0 as "-0", which a reader (a relay checking the
// audit leaves) reads as the int 0, whose leaf differs.
func unsigned(f float64) float64 {
	if f == 0 {
		return 0
	}
	return f
}

// Valid reports whether the log entry codec can carry v: a known kind, a
// bool of 0 or 1, a finite float. The edge checks it, so no entry fails to
// decode.
func (v Value) Valid() bool {
	switch v.Kind {
	case KindNull, KindInt, KindString:
		return true
	case KindBool:
		return v.Int == 0 || v.Int == 1
	case KindFloat:
		return !math.IsNaN(v.Float) && !math.IsInf(v.Float, 0)
	}
	return false
}
