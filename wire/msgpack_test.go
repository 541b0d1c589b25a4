package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

type holder struct {
	V    Value   `json:"v"`
	P    *Value  `json:"p,omitempty"`
	S    []Value `json:"s,omitempty"`
	Skip string  `json:"skip,omitempty"`
}

func TestValuesKeepTheirTypes(t *testing.T) {
	for _, v := range []Value{{}, Int(0), Int(-1), Int(math.MaxInt64), Int(math.MinInt64),
		Float(5), Float(-0.25), String(""), String("héllo"), Bool(true), Bool(false)} {
		b, err := MarshalMsgpack(holder{V: v, P: &v, S: []Value{v, v}})
		require.NoError(t, err)
		var got holder
		require.NoError(t, UnmarshalMsgpack(b, &got))
		require.Equal(t, v, got.V)
		if v.Kind == KindNull {
			require.Nil(t, got.P, "nil is a nil pointer, as JSON's null")
		} else {
			require.Equal(t, v, *got.P)
		}
		require.Equal(t, []Value{v, v}, got.S)
		// A plain msgpack reader sees a plain map with the json keys.
		var m map[string]any
		require.NoError(t, msgpack.Unmarshal(b, &m))
		require.NotContains(t, m, "skip", "omitempty is honoured")
		require.Contains(t, m, "v")
	}
	// A float is a msgpack float 64 even when integral; an int is compact.
	b, err := MarshalMsgpack(Float(5))
	require.NoError(t, err)
	require.Equal(t, "cb4014000000000000", hex.EncodeToString(b))
	b, err = MarshalMsgpack(Int(5))
	require.NoError(t, err)
	require.Equal(t, "05", hex.EncodeToString(b))
	_, err = MarshalMsgpack(Value{Kind: 99})
	require.Error(t, err)
}

func TestValuesDecodeFromEveryScalarEncoding(t *testing.T) {
	enc := func(f func(e *msgpack.Encoder) error) []byte {
		var buf bytes.Buffer
		require.NoError(t, f(msgpack.NewEncoder(&buf)))
		return buf.Bytes()
	}
	cases := []struct {
		b    []byte
		want Value
	}{
		{enc(func(e *msgpack.Encoder) error { return e.EncodeFloat32(1.5) }), Float(1.5)},
		{enc(func(e *msgpack.Encoder) error { return e.EncodeUint64(7) }), Int(7)},
		{enc(func(e *msgpack.Encoder) error { return e.EncodeInt8(-3) }), Int(-3)},
		{enc(func(e *msgpack.Encoder) error { return e.EncodeUint16(300) }), Int(300)},
	}
	for _, tc := range cases {
		var v Value
		require.NoError(t, UnmarshalMsgpack(tc.b, &v))
		require.Equal(t, tc.want, v)
	}
	bad := [][]byte{
		enc(func(e *msgpack.Encoder) error { return e.EncodeUint64(math.MaxUint64) }),
		enc(func(e *msgpack.Encoder) error { return e.EncodeFloat64(math.NaN()) }),
		enc(func(e *msgpack.Encoder) error { return e.EncodeFloat64(math.Inf(1)) }),
		enc(func(e *msgpack.Encoder) error { return e.EncodeBytes([]byte("x")) }),
		enc(func(e *msgpack.Encoder) error { return e.EncodeArrayLen(0) }),
		{}, // nothing
	}
	for _, b := range bad {
		var v Value
		require.Error(t, UnmarshalMsgpack(b, &v), "%x", b)
	}
	var v Value
	require.ErrorContains(t, UnmarshalMsgpack([]byte{0x01, 0x02}, &v), "trailing")
}

func TestToJSONIsStrict(t *testing.T) {
	type msg struct {
		Type string         `json:"type"`
		Seq  uint64         `json:"seq"`
		F    float64        `json:"f"`
		Neg  int64          `json:"neg"`
		Big  uint64         `json:"big"`
		Ok   bool           `json:"ok"`
		N    any            `json:"n"`
		L    []any          `json:"l"`
		M    map[string]any `json:"m"`
	}
	b, err := MarshalMsgpack(msg{Type: "hello", Seq: 3, F: 2, Neg: -70000, Big: math.MaxUint64, Ok: true, L: []any{"a", 1.5}, M: map[string]any{"k": false}})
	require.NoError(t, err)
	j, err := MsgpackToJSON(b)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"hello","seq":3,"f":2.0,"neg":-70000,"big":18446744073709551615,"ok":true,"n":null,"l":["a",1.5],"m":{"k":false}}`, string(j))
	require.Contains(t, string(j), `"f":2.0`, "an integral float stays a float")

	enc := func(f func(e *msgpack.Encoder) error) []byte {
		var buf bytes.Buffer
		require.NoError(t, f(msgpack.NewEncoder(&buf)))
		return buf.Bytes()
	}
	deep := []byte{}
	for range MsgpackMaxDepth + 2 {
		deep = append(deep, 0x91) // an array of one
	}
	deep = append(deep, 0x01)
	bad := map[string][]byte{
		"empty":          {},
		"reserved":       {0xc1},
		"bin":            enc(func(e *msgpack.Encoder) error { return e.EncodeBytes([]byte("x")) }),
		"ext":            {0xd4, 0x01, 0x00},
		"int key":        {0x81, 0x01, 0x02},
		"nan":            enc(func(e *msgpack.Encoder) error { return e.EncodeFloat64(math.NaN()) }),
		"trailing":       {0x80, 0x00},
		"not utf-8":      {0xa1, 0xff},
		"too deep":       deep,
		"short map":      {0x82, 0xa1, 'a', 0x01},
		"short array":    {0x92, 0x01},
		"bad map value":  {0x81, 0xa1, 'a', 0xc1},
		"short string":   {0xa3, 'a'},
		"short key":      {0x81},
		"short float":    {0xcb, 0x00},
		"bad key string": {0x81, 0xa2, 'a'},
		"short uint64":   {0xcf, 0x00},
		"short int":      {0xd1, 0x00},
		"short map16":    {0xde, 0x00},
		"short array16":  {0xdc},
	}
	for what, b := range bad {
		_, err := MsgpackToJSON(b)
		require.ErrorIs(t, err, ErrMalformed, what)
	}
}

func TestNewEncoderUsesTheProtocolSettingsButNotTheCanonicalOrder(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, NewMsgpackEncoder(&buf).Encode(holder{V: Float(1), S: []Value{Int(200)}}))
	require.Equal(t, "82a176cb3ff0000000000000a17391ccc8", hex.EncodeToString(buf.Bytes()),
		"json tags, omitempty, compact ints; the fields in their order")
	b, err := MarshalMsgpack(holder{V: Float(1), S: []Value{Int(200)}})
	require.NoError(t, err)
	require.Equal(t, "82a17391ccc8a176cb3ff0000000000000", hex.EncodeToString(b), "the same, keys in canonical order")
}

func TestActionRequestsEncodeInMsgpackWithTheirJSONKeys(t *testing.T) {
	a := ActionRequest{Player: "ann", Seq: 3, InputTime: 9, Priority: PriorityNameBulk, Ops: []Op{
		{Kind: OpSet, Entity: "e", Field: "x", Value: Float(1.5), Expect: Expect{Mode: ExpectAbsent}},
		{Kind: OpIncr, Entity: "e", Field: "hp", By: -2},
		{Kind: OpAdd, Entity: "e", Field: "tags", Value: String("red")},
		{Kind: OpDelete, Entity: "gone", Expect: Expect{Mode: ExpectVersion, Version: 4}},
	}}
	b, err := MarshalMsgpack(a)
	require.NoError(t, err)
	got, err := MsgpackToJSON(b)
	require.NoError(t, err)
	want, err := json.Marshal(a)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}
