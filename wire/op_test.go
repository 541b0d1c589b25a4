package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpKindStringAndParseRoundTripEveryOp(t *testing.T) {
	for _, k := range []OpKind{OpSet, OpIncr, OpAdd, OpRemove, OpDelete} {
		got, err := ParseOpKind(k.String())
		require.NoError(t, err)
		require.Equal(t, k, got)
	}
	require.Equal(t, "op(9)", OpKind(9).String())
	for _, bad := range []string{"", "SET", "append"} {
		_, err := ParseOpKind(bad)
		require.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func TestExpectStringAndParseRoundTrip(t *testing.T) {
	for s, x := range map[string]Expect{
		"":                     {},
		"*":                    {Mode: ExpectAbsent},
		"0":                    {Mode: ExpectVersion},
		"42":                   {Mode: ExpectVersion, Version: 42},
		"18446744073709551615": {Mode: ExpectVersion, Version: 1<<64 - 1},
	} {
		got, err := ParseExpect(s)
		require.NoError(t, err)
		require.Equal(t, x, got)
		require.Equal(t, s, x.String())
	}
	for _, bad := range []string{"-1", "x", "*1", "1.0", "18446744073709551616", " 1"} {
		_, err := ParseExpect(bad)
		require.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func TestPriorityIsCriticalUnlessBulk(t *testing.T) {
	require.Equal(t, PriorityNameCritical, PriorityCritical.String())
	require.Equal(t, PriorityNameBulk, PriorityBulk.String())
	require.Equal(t, PriorityNameCritical, Priority(7).String())
}

func TestOpJSONWireFormRoundTrips(t *testing.T) {
	cases := map[string]Op{
		`{"op":"set","entity":"e","field":"f","value":3,"expect":"*"}`: {Kind: OpSet, Entity: "e", Field: "f", Value: Int(3), Expect: Expect{Mode: ExpectAbsent}},
		`{"op":"incr","entity":"e","field":"hp","by":-2}`:              {Kind: OpIncr, Entity: "e", Field: "hp", By: -2},
		`{"op":"add","entity":"e","field":"t","value":"x"}`:            {Kind: OpAdd, Entity: "e", Field: "t", Value: String("x")},
		`{"op":"remove","entity":"e","field":"t","value":1.5}`:         {Kind: OpRemove, Entity: "e", Field: "t", Value: Float(1.5)},
		`{"op":"delete","entity":"e","expect":"7"}`:                    {Kind: OpDelete, Entity: "e", Expect: Expect{Mode: ExpectVersion, Version: 7}},
	}
	for s, o := range cases {
		b, err := json.Marshal(o)
		require.NoError(t, err)
		require.JSONEq(t, s, string(b))
		var got Op
		require.NoError(t, json.Unmarshal(b, &got), s)
		require.Equal(t, o, got, s)
	}
}

func TestOpUnmarshalJSONTreatsNullValueAsAbsent(t *testing.T) {
	var o Op
	require.NoError(t, json.Unmarshal([]byte(`{"op":"incr","entity":"e","field":"c","value":null,"by":4}`), &o))
	require.Equal(t, Op{Kind: OpIncr, Entity: "e", Field: "c", By: 4}, o)
}

func TestOpUnmarshalJSONRejectsMalformedOpsAndLeavesTargetUnchanged(t *testing.T) {
	keep := Op{Kind: OpIncr, Entity: "keep", Field: "me", By: 1}
	for _, in := range []string{
		`{`,
		`[]`,
		`{"op":5}`,
		`{"op":"explode","entity":"e"}`,
		`{"op":"set","entity":"e","field":"f","value":1,"expect":"soon"}`,
		`{"op":"set","entity":"e","field":"f","value":[1]}`,
		`{"op":"incr","entity":"e","field":"f","by":1.5}`,
	} {
		o := keep
		err := o.UnmarshalJSON([]byte(in))
		require.ErrorIs(t, err, ErrMalformed, in)
		require.Equal(t, keep, o, in)
	}
}
