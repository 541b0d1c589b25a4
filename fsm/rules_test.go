package fsm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPolicyStringAndParseRoundTripEveryPolicy(t *testing.T) {
	for _, p := range []Policy{PolicyAuthoritative, PolicyCounter, PolicySet, PolicyMax, PolicyMin} {
		got, err := ParsePolicy(p.String())
		require.NoError(t, err)
		require.Equal(t, p, got)
	}
	require.Equal(t, "", PolicyNone.String())
	require.Equal(t, "policy(42)", Policy(42).String())
	for _, bad := range []string{"", "lww", "Counter"} {
		_, err := ParsePolicy(bad)
		require.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func TestPolicyAcceptsOnlyItsOwnOps(t *testing.T) {
	accepted := map[Policy][]OpKind{
		PolicyAuthoritative: {OpSet},
		PolicyMax:           {OpSet},
		PolicyMin:           {OpSet},
		PolicyCounter:       {OpIncr},
		PolicySet:           {OpAdd, OpRemove},
		PolicyNone:          nil,
	}
	for p, ok := range accepted {
		for _, k := range []OpKind{OpSet, OpIncr, OpAdd, OpRemove, OpDelete} {
			want := false
			for _, a := range ok {
				want = want || a == k
			}
			require.Equal(t, want, p.accepts(k), "%s accepts %s", p, k)
		}
	}
}

func TestInferPolicyFollowsTheFirstOp(t *testing.T) {
	require.Equal(t, PolicyCounter, inferPolicy(OpIncr))
	require.Equal(t, PolicySet, inferPolicy(OpAdd))
	require.Equal(t, PolicySet, inferPolicy(OpRemove))
	require.Equal(t, PolicyAuthoritative, inferPolicy(OpSet))
}

func TestRulesValidateAcceptsWellFormedRules(t *testing.T) {
	r := rules(true, map[string]FieldRule{
		"name":  {Type: KindString, Policy: PolicyAuthoritative},
		"alive": {Type: KindBool, Policy: PolicyAuthoritative},
		"hp":    {Type: KindInt, Policy: PolicyCounter},
		"tags":  {Type: KindString, Policy: PolicySet},
		"best":  {Type: KindFloat, Policy: PolicyMax},
		"first": {Type: KindString, Policy: PolicyMin},
	})
	require.NoError(t, r.Validate())
	require.NoError(t, Rules{}.Validate())
	require.Equal(t, []string{"alive", "best", "first", "hp", "name", "tags"}, r.fieldNames())
}

func TestRulesValidateRejectsBadDeclarations(t *testing.T) {
	tooMany := make(map[string]FieldRule, maxRuleFields+1)
	for i := range maxRuleFields + 1 {
		tooMany["f"+strconv.Itoa(i)] = FieldRule{Type: KindInt, Policy: PolicyCounter}
	}
	cases := map[string]map[string]FieldRule{
		"too many fields":   tooMany,
		"empty name":        {"": {Type: KindInt, Policy: PolicyCounter}},
		"long name":         {strings.Repeat("n", MaxNameLen+1): {Type: KindInt, Policy: PolicyCounter}},
		"invalid utf-8":     {"\xff": {Type: KindInt, Policy: PolicyCounter}},
		"no policy":         {"f": {Type: KindInt}},
		"unknown policy":    {"f": {Type: KindInt, Policy: Policy(9)}},
		"no type":           {"f": {Policy: PolicyAuthoritative}},
		"unknown type":      {"f": {Type: Kind(9), Policy: PolicyAuthoritative}},
		"counter of string": {"f": {Type: KindString, Policy: PolicyCounter}},
		"counter of float":  {"f": {Type: KindFloat, Policy: PolicyCounter}},
		"max of bool":       {"f": {Type: KindBool, Policy: PolicyMax}},
		"min of bool":       {"f": {Type: KindBool, Policy: PolicyMin}},
	}
	for name, fields := range cases {
		err := rules(false, fields).Validate()
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func TestRulesValidateAcceptsMaximumFieldCount(t *testing.T) {
	fields := make(map[string]FieldRule, maxRuleFields)
	for i := range maxRuleFields {
		fields["f"+strconv.Itoa(i)] = FieldRule{Type: KindInt, Policy: PolicyCounter}
	}
	require.NoError(t, rules(false, fields).Validate())
}

func TestRulesJSONRoundTrips(t *testing.T) {
	r := rules(true, map[string]FieldRule{
		"hp":   {Type: KindInt, Policy: PolicyCounter},
		"tags": {Type: KindString, Policy: PolicySet},
		"best": {Type: KindFloat, Policy: PolicyMax},
		"low":  {Type: KindInt, Policy: PolicyMin},
		"on":   {Type: KindBool, Policy: PolicyAuthoritative},
	})
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.JSONEq(t, `{"strict":true,"fields":{
		"hp":{"type":"int","policy":"counter"},
		"tags":{"type":"string","policy":"set"},
		"best":{"type":"float","policy":"max"},
		"low":{"type":"int","policy":"min"},
		"on":{"type":"bool","policy":"authoritative"}}}`, string(b))
	var got Rules
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, r, got)
}

func TestRulesJSONWithoutFieldsOmitsThem(t *testing.T) {
	b, err := json.Marshal(Rules{})
	require.NoError(t, err)
	require.Equal(t, `{"strict":false}`, string(b))
	var got Rules
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, Rules{}, got)
}

func TestRulesUnmarshalDefaultsTypeFromPolicy(t *testing.T) {
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"policy":"counter"},"name":{"policy":"authoritative"},"tags":{"policy":"set"}}}`), &r))
	require.Equal(t, rules(false, map[string]FieldRule{
		"hp":   {Type: KindInt, Policy: PolicyCounter},
		"name": {Type: KindString, Policy: PolicyAuthoritative},
		"tags": {Type: KindString, Policy: PolicySet},
	}), r)
}

func TestRulesUnmarshalRejectsMalformedRulesAndLeavesTargetUnchanged(t *testing.T) {
	for _, in := range []string{
		`{`,
		`[]`,
		`{"fields":[]}`,
		`{"fields":{"f":{"policy":"lww"}}}`,
		`{"fields":{"f":{"policy":"counter","type":"decimal"}}}`,
		`{"fields":{"f":{"policy":"counter","type":"string"}}}`,
		`{"fields":{"f":{"policy":"max","type":"bool"}}}`,
		`{"fields":{"":{"policy":"set"}}}`,
	} {
		r := rules(true, nil)
		err := r.UnmarshalJSON([]byte(in))
		require.ErrorIs(t, err, ErrMalformed, in)
		require.Equal(t, rules(true, nil), r, in)
	}
	var r Rules
	err := r.UnmarshalJSON([]byte(`{"fields":{"speed":{"policy":"lww"}}}`))
	require.ErrorContains(t, err, `field "speed"`)
	err = r.UnmarshalJSON([]byte(`{"fields":{"speed":{"policy":"max","type":"decimal"}}}`))
	require.ErrorContains(t, err, `field "speed"`)
}

func TestRulesValidateReportsTheFirstBadFieldByName(t *testing.T) {
	// The error is part of Apply's results, so it must not depend on map order.
	fields := map[string]FieldRule{}
	for i := range 50 {
		fields[fmt.Sprintf("f%02d", i)] = FieldRule{Type: KindString}
	}
	for range 20 {
		err := rules(false, fields).Validate()
		require.ErrorIs(t, err, ErrMalformed)
		require.ErrorContains(t, err, `field "f00" has no policy`)
	}
	res := newHarness(t).apply(cmdWorld("w", rules(false, fields)))
	require.ErrorContains(t, res[0].Err, `field "f00"`)
}
