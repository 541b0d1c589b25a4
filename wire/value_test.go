package wire

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKindStringNamesKnownKindsAndFormatsUnknownOnes(t *testing.T) {
	require.Equal(t, "null", KindNull.String())
	require.Equal(t, "int", KindInt.String())
	require.Equal(t, "float", KindFloat.String())
	require.Equal(t, "string", KindString.String())
	require.Equal(t, "bool", KindBool.String())
	require.Equal(t, "kind(9)", Kind(9).String())
}

func TestParseKindAcceptsTypeNamesButNotNull(t *testing.T) {
	for _, k := range []Kind{KindInt, KindFloat, KindString, KindBool} {
		got, err := ParseKind(k.String())
		require.NoError(t, err)
		require.Equal(t, k, got)
	}
	for _, bad := range []string{"null", "", "Int", "uint"} {
		_, err := ParseKind(bad)
		require.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func TestValueConstructorsSetKindAndPayload(t *testing.T) {
	require.Equal(t, Value{Kind: KindInt, Int: -7}, Int(-7))
	require.Equal(t, Value{Kind: KindFloat, Float: 2.5}, Float(2.5))
	require.Equal(t, Value{Kind: KindString, Str: "x"}, String("x"))
	require.Equal(t, Value{Kind: KindBool, Int: 1}, Bool(true))
	require.Equal(t, Value{Kind: KindBool}, Bool(false))
}

func TestValueCompareOrdersByKindThenContent(t *testing.T) {
	cases := []struct {
		a, b Value
		want int
	}{
		{Value{}, Int(0), -1},
		{Int(5), Float(1), -1},   // int kind sorts before float kind
		{Bool(false), Int(9), 1}, // bool kind sorts after int kind
		{Int(1), Int(2), -1},
		{Int(2), Int(1), 1},
		{Int(3), Int(3), 0},
		{Float(-1.5), Float(2), -1},
		{Float(2), Float(-1.5), 1},
		{Float(0.25), Float(0.25), 0},
		{String("a"), String("b"), -1},
		{String("b"), String("a"), 1},
		{String("same"), String("same"), 0},
		{Bool(false), Bool(true), -1},
		{Bool(true), Bool(false), 1},
		{Value{}, Value{}, 0},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.a.Compare(c.b), "%v vs %v", c.a, c.b)
	}
}

func TestValueAnyReturnsPlainGoValues(t *testing.T) {
	require.Equal(t, int64(4), Int(4).Any())
	require.Equal(t, 1.25, Float(1.25).Any())
	require.Equal(t, "s", String("s").Any())
	require.Equal(t, true, Bool(true).Any())
	require.Equal(t, false, Bool(false).Any())
	require.Nil(t, Value{}.Any())
}

func TestValueJSONRoundTripsScalars(t *testing.T) {
	cases := map[string]Value{
		`42`:                   Int(42),
		`-9223372036854775808`: Int(math.MinInt64),
		`1.5`:                  Float(1.5),
		`1e+300`:               Float(1e300),
		`-2.5e-07`:             Float(-2.5e-7),
		`"he said \"hi\" ☃"`:   String(`he said "hi" ☃`),
		`""`:                   String(""),
		`true`:                 Bool(true),
		`false`:                Bool(false),
		`null`:                 {},
	}
	for wire, v := range cases {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		require.JSONEq(t, wire, string(b))
		var got Value
		require.NoError(t, json.Unmarshal(b, &got))
		require.Equal(t, v, got, wire)
	}
}

func TestValueJSONDecodesIntegralNumbersAsIntAndOthersAsFloat(t *testing.T) {
	var v Value
	require.NoError(t, v.UnmarshalJSON([]byte(" 12 ")))
	require.Equal(t, Int(12), v)
	// An integral float is written without a fraction, so it comes back as an int.
	b, err := Float(3).MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, "3", string(b))
	require.NoError(t, v.UnmarshalJSON(b))
	require.Equal(t, Int(3), v)
	// Beyond int64 a number is a float.
	require.NoError(t, v.UnmarshalJSON([]byte("9223372036854775808")))
	require.Equal(t, Float(9223372036854775808), v)
	require.NoError(t, v.UnmarshalJSON([]byte("1e2")))
	require.Equal(t, Float(100), v)
}

func TestValueUnmarshalJSONRejectsMalformedInput(t *testing.T) {
	for _, in := range []string{
		``, `   `, `nul`, `nulls`, `tru`, `falsy`, `"unterminated`, `"bad \q escape"`,
		`[1]`, `{"a":1}`, `1e999`, `-1e999`, `NaN`, `Inf`, `-Inf`, `abc`, `1.2.3`, `0x10`,
	} {
		var v Value
		err := v.UnmarshalJSON([]byte(in))
		require.ErrorIs(t, err, ErrMalformed, "%q", in)
	}
}

func TestValueUnmarshalJSONRejectsNonScalarsInsideDocuments(t *testing.T) {
	var vs []Value
	err := json.Unmarshal([]byte(`[1, [2]]`), &vs)
	require.ErrorIs(t, err, ErrMalformed)
}

func TestValueValidAcceptsWhatTheLogCodecCarries(t *testing.T) {
	for _, v := range []Value{{}, Int(-1), Float(2.5), String("s"), Bool(true), Bool(false)} {
		require.True(t, v.Valid(), "%v", v)
	}
	for _, v := range []Value{{Kind: 9}, {Kind: KindBool, Int: 2}, Float(math.NaN()), Float(math.Inf(1))} {
		require.False(t, v.Valid(), "%v", v)
	}
}
