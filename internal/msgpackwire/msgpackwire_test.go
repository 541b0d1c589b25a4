package msgpackwire

import (
	"bytes"
	"encoding/hex"
	"math"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

type holder struct {
	V    fsm.Value   `json:"v"`
	P    *fsm.Value  `json:"p,omitempty"`
	S    []fsm.Value `json:"s,omitempty"`
	Skip string      `json:"skip,omitempty"`
}

func TestValuesKeepTheirTypes(t *testing.T) {
	for _, v := range []fsm.Value{{}, fsm.Int(0), fsm.Int(-1), fsm.Int(math.MaxInt64), fsm.Int(math.MinInt64),
		fsm.Float(5), fsm.Float(-0.25), fsm.String(""), fsm.String("héllo"), fsm.Bool(true), fsm.Bool(false)} {
		b, err := Marshal(holder{V: v, P: &v, S: []fsm.Value{v, v}})
		require.NoError(t, err)
		var got holder
		require.NoError(t, Unmarshal(b, &got))
		require.Equal(t, v, got.V)
		if v.Kind == fsm.KindNull {
			require.Nil(t, got.P, "nil is a nil pointer, as JSON's null")
		} else {
			require.Equal(t, v, *got.P)
		}
		require.Equal(t, []fsm.Value{v, v}, got.S)
		// A plain msgpack reader sees a plain map with the json keys.
		var m map[string]any
		require.NoError(t, msgpack.Unmarshal(b, &m))
		require.NotContains(t, m, "skip", "omitempty is honoured")
		require.Contains(t, m, "v")
	}
	// A float is a msgpack float 64 even when integral; an int is compact.
	b, err := Marshal(fsm.Float(5))
	require.NoError(t, err)
	require.Equal(t, "cb4014000000000000", hex.EncodeToString(b))
	b, err = Marshal(fsm.Int(5))
	require.NoError(t, err)
	require.Equal(t, "05", hex.EncodeToString(b))
	_, err = Marshal(fsm.Value{Kind: 99})
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
		want fsm.Value
	}{
		{enc(func(e *msgpack.Encoder) error { return e.EncodeFloat32(1.5) }), fsm.Float(1.5)},
		{enc(func(e *msgpack.Encoder) error { return e.EncodeUint64(7) }), fsm.Int(7)},
		{enc(func(e *msgpack.Encoder) error { return e.EncodeInt8(-3) }), fsm.Int(-3)},
		{enc(func(e *msgpack.Encoder) error { return e.EncodeUint16(300) }), fsm.Int(300)},
	}
	for _, tc := range cases {
		var v fsm.Value
		require.NoError(t, Unmarshal(tc.b, &v))
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
		var v fsm.Value
		require.Error(t, Unmarshal(b, &v), "%x", b)
	}
	var v fsm.Value
	require.ErrorContains(t, Unmarshal([]byte{0x01, 0x02}, &v), "trailing")
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
	b, err := Marshal(msg{Type: "hello", Seq: 3, F: 2, Neg: -70000, Big: math.MaxUint64, Ok: true, L: []any{"a", 1.5}, M: map[string]any{"k": false}})
	require.NoError(t, err)
	j, err := ToJSON(b)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"hello","seq":3,"f":2.0,"neg":-70000,"big":18446744073709551615,"ok":true,"n":null,"l":["a",1.5],"m":{"k":false}}`, string(j))
	require.Contains(t, string(j), `"f":2.0`, "an integral float stays a float")

	enc := func(f func(e *msgpack.Encoder) error) []byte {
		var buf bytes.Buffer
		require.NoError(t, f(msgpack.NewEncoder(&buf)))
		return buf.Bytes()
	}
	deep := []byte{}
	for range MaxDepth + 2 {
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
		_, err := ToJSON(b)
		require.ErrorIs(t, err, fsm.ErrMalformed, what)
	}
}

func TestNewEncoderUsesTheProtocolSettings(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, NewEncoder(&buf).Encode(map[string]any{"b": uint64(1), "a": holder{V: fsm.Float(1)}}))
	b, err := Marshal(map[string]any{"b": uint64(1), "a": holder{V: fsm.Float(1)}})
	require.NoError(t, err)
	require.Equal(t, b, buf.Bytes(), "sorted keys, json tags, compact ints alike")
	require.Equal(t, "82a16181a176cb3ff0000000000000a16201", hex.EncodeToString(b))
}
