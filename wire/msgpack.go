// The MessagePack side of the binary play subprotocol, gsd.msgpack.v1
// (docs/PROTOCOL.md, "Binary subprotocol"): the same messages as
// gsd.json.v1, with the same keys, as MessagePack maps. Server and client
// both use it.
//
// Structs are encoded by their json tags (names and omitempty), so one set
// of message types serves both subprotocols. A Value is a msgpack scalar of
// its own type: int, float 64, str, bool or nil, so ints and floats stay
// apart (the JSON form writes an integral float like an int).
//
// MarshalMsgpack's bytes are canonical: every map's keys in one order
// (msgpack_canonical.go), so a message has one encoding, whatever Go's map
// order and the structs' field order; golden tests and signatures can
// rely on its bytes.

package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// SubprotocolMsgpack is the WebSocket subprotocol of the binary play protocol.
const SubprotocolMsgpack = "gsd.msgpack.v1"

// MsgpackMaxDepth bounds the nesting of maps and arrays ToJSON accepts.
const MsgpackMaxDepth = 32

func init() {
	msgpack.Register(Value{}, encodeValue, decodeValue)
}

func encodeValue(e *msgpack.Encoder, rv reflect.Value) error {
	v := rv.Interface().(Value)
	switch v.Kind {
	case KindNull:
		return e.EncodeNil()
	case KindInt:
		return e.EncodeInt(v.Int)
	case KindFloat:
		return e.EncodeFloat64(v.Float)
	case KindString:
		return e.EncodeString(v.Str)
	case KindBool:
		return e.EncodeBool(v.Int != 0)
	}
	return fmt.Errorf("gsd/wire: msgpack: value of unknown kind %d", v.Kind)
}

func decodeValue(d *msgpack.Decoder, rv reflect.Value) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	var v Value
	switch {
	case c == msgpcode.Nil:
		err = d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		var b bool
		b, err = d.DecodeBool()
		v = Bool(b)
	case c == msgpcode.Float || c == msgpcode.Double:
		var f float64
		f, err = d.DecodeFloat64()
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = fmt.Errorf("%w: a value must be a finite number", ErrMalformed)
		}
		v = Float(unsigned(f))
	case c == msgpcode.Uint64:
		var n uint64
		n, err = d.DecodeUint64()
		if err == nil && n > math.MaxInt64 {
			err = fmt.Errorf("%w: int value %d over the int64 range", ErrMalformed, n)
		}
		v = Int(int64(n))
	case isInt(c):
		var n int64
		n, err = d.DecodeInt64()
		v = Int(n)
	case msgpcode.IsString(c):
		var s string
		s, err = d.DecodeString()
		v = String(s)
	default:
		err = fmt.Errorf("%w: values must be scalars (int, float, string, bool, nil), got msgpack code 0x%02x", ErrMalformed, c)
	}
	if err != nil {
		return err
	}
	rv.Set(reflect.ValueOf(v))
	return nil
}

// msgpackOp is an op's msgpack form: its JSON form's keys, with the value
// a msgpack scalar of its own type.
type msgpackOp struct {
	Op     string `json:"op"`
	Entity string `json:"entity"`
	Field  string `json:"field,omitempty"`
	Value  *Value `json:"value,omitempty"`
	By     int64  `json:"by,omitempty"`
	Expect string `json:"expect,omitempty"`
}

// EncodeMsgpack encodes the op as a map with its JSON form's keys
// (msgpack.CustomEncoder), so an ActionRequest encodes as it reads in JSON.
func (o Op) EncodeMsgpack(enc *msgpack.Encoder) error {
	m := msgpackOp{Op: o.Kind.String(), Entity: o.Entity, Field: o.Field, By: o.By, Expect: o.Expect.String()}
	if o.Value.Kind != KindNull {
		m.Value = &o.Value
	}
	return enc.Encode(m)
}

func isInt(c byte) bool {
	return msgpcode.IsFixedNum(c) || c >= msgpcode.Uint8 && c <= msgpcode.Int64
}

// NewMsgpackEncoder returns an encoder writing to buf with the protocol's
// settings: json tags, ints in their smallest form. It writes maps as the
// msgpack library does, not in the canonical form: it is for frames
// written by hand, which write their maps' keys in canonical order
// (CompareMsgpackKeys) and embed values that MarshalMsgpack encoded.
func NewMsgpackEncoder(buf *bytes.Buffer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(buf)
	configure(enc)
	return enc
}

func configure(enc *msgpack.Encoder) {
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
}

// MarshalMsgpack encodes v in the canonical form (msgpack_canonical.go):
// every map, a Go map or a struct, at any depth, with its keys in order,
// so equal values have equal bytes.
func MarshalMsgpack(v any) ([]byte, error) {
	c := canonicalizers.Get().(*canonicalizer)
	defer canonicalizers.Put(c)
	c.enc.Reset()
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&c.enc)
	configure(enc)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return c.canonical(c.enc.Bytes())
}

// UnmarshalMsgpack decodes exactly one msgpack value from b into v (json tags;
// unknown keys are skipped, as encoding/json does).
func UnmarshalMsgpack(b []byte, v any) error {
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	dec.SetCustomStructTag("json")
	if err := dec.Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return errors.New("gsd/wire: msgpack: trailing bytes after the message")
	}
	return nil
}

// MsgpackToJSON transcodes exactly one msgpack value into JSON, for the server's
// strict JSON decoding (unknown keys and wrong types are then refused as in
// gsd.json.v1). It refuses what JSON cannot say: bin and ext types, map
// keys that are not strings, strings that are not UTF-8, NaN and
// infinities, nesting deeper than MsgpackMaxDepth, and trailing bytes. A float
// stays a float (5.0, never 5). Every error wraps ErrMalformed.
func MsgpackToJSON(b []byte) ([]byte, error) {
	r := bytes.NewReader(b)
	t := transcoder{d: msgpack.NewDecoder(r), out: make([]byte, 0, 2*len(b)+16)}
	if err := t.value(0); err != nil {
		return nil, fmt.Errorf("%w: msgpack: %v", ErrMalformed, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: msgpack: %d trailing bytes after the message", ErrMalformed, r.Len())
	}
	return t.out, nil
}

type transcoder struct {
	d   *msgpack.Decoder
	out []byte
}

func (t *transcoder) value(depth int) error {
	if depth > MsgpackMaxDepth {
		return fmt.Errorf("nested deeper than %d", MsgpackMaxDepth)
	}
	c, err := t.d.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case c == msgpcode.Nil:
		t.out = append(t.out, "null"...)
		return t.d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		v, err := t.d.DecodeBool()
		t.out = strconv.AppendBool(t.out, v)
		return err
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := t.d.DecodeFloat64()
		if err != nil {
			return err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("NaN and infinities are not numbers here")
		}
		n := len(t.out)
		t.out = strconv.AppendFloat(t.out, f, 'g', -1, 64)
		if !bytes.ContainsAny(t.out[n:], ".e") {
			t.out = append(t.out, ".0"...) // still a float once in JSON
		}
		return nil
	case c == msgpcode.Uint64:
		v, err := t.d.DecodeUint64()
		t.out = strconv.AppendUint(t.out, v, 10)
		return err
	case isInt(c):
		v, err := t.d.DecodeInt64()
		t.out = strconv.AppendInt(t.out, v, 10)
		return err
	case msgpcode.IsString(c):
		return t.str()
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := t.d.DecodeMapLen()
		if err != nil {
			return err
		}
		t.out = append(t.out, '{')
		for i := range n {
			if i > 0 {
				t.out = append(t.out, ',')
			}
			k, err := t.d.PeekCode()
			if err != nil {
				return err
			}
			if !msgpcode.IsString(k) {
				return fmt.Errorf("map keys must be strings, got msgpack code 0x%02x", k)
			}
			if err := t.str(); err != nil {
				return err
			}
			t.out = append(t.out, ':')
			if err := t.value(depth + 1); err != nil {
				return err
			}
		}
		t.out = append(t.out, '}')
		return nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := t.d.DecodeArrayLen()
		if err != nil {
			return err
		}
		t.out = append(t.out, '[')
		for i := range n {
			if i > 0 {
				t.out = append(t.out, ',')
			}
			if err := t.value(depth + 1); err != nil {
				return err
			}
		}
		t.out = append(t.out, ']')
		return nil
	}
	return fmt.Errorf("msgpack code 0x%02x (bin, ext or reserved) is not part of the protocol", c)
}

func (t *transcoder) str() error {
	s, err := t.d.DecodeString()
	if err != nil {
		return err
	}
	if !utf8.ValidString(s) {
		return errors.New("strings must be UTF-8")
	}
	q, _ := json.Marshal(s) // a valid string: never fails
	t.out = append(t.out, q...)
	return nil
}
