package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashStringIsSixteenHexDigits(t *testing.T) {
	require.Equal(t, "0000000000000000", HashString(0))
	require.Equal(t, "00000000000000ff", HashString(255))
	require.Equal(t, "ffffffffffffffff", HashString(^uint64(0)))
	require.Equal(t, "0123456789abcdef", HashString(0x0123456789abcdef))
}

func TestHashDecodesFromAStringANumberOrNull(t *testing.T) {
	var h Hash
	require.NoError(t, json.Unmarshal([]byte(`"00000000000000ff"`), &h))
	require.Equal(t, Hash("00000000000000ff"), h)
	require.NoError(t, json.Unmarshal([]byte(`255`), &h))
	require.Equal(t, Hash("00000000000000ff"), h)
	require.NoError(t, json.Unmarshal([]byte(`null`), &h))
	require.Equal(t, Hash(""), h)
	require.Error(t, json.Unmarshal([]byte(`-1`), &h))
	require.Error(t, h.UnmarshalJSON([]byte(`"unterminated`)))
}

func TestEntityIntReadsNumbersOfEveryDecodedForm(t *testing.T) {
	e := Entity{Fields: map[string]any{"n": json.Number("7"), "bad": json.Number("1.5"), "f": 3.0, "frac": 2.5, "i": int64(-4), "s": "x"}}
	for field, want := range map[string]int64{"n": 7, "f": 3, "i": -4} {
		got, ok := e.Int(field)
		require.True(t, ok, field)
		require.Equal(t, want, got, field)
	}
	for _, field := range []string{"bad", "frac", "s", "missing"} {
		_, ok := e.Int(field)
		require.False(t, ok, field)
	}
}

func TestRulesCheckRefusesUnknownNamesAndBadDurations(t *testing.T) {
	ok := Rules{Strict: true, FairWindow: "50ms", MaxLag: "1s", Fields: map[string]FieldRule{
		"hp": {Policy: PolicyCounter}, "x": {Type: "float", Policy: PolicyMax}, "tags": {Type: "string", Policy: PolicySet}}}
	require.NoError(t, ok.Check())
	require.NoError(t, Rules{}.Check())
	for name, r := range map[string]Rules{
		"policy":    {Fields: map[string]FieldRule{"x": {Policy: "nope"}}},
		"no policy": {Fields: map[string]FieldRule{"x": {Type: "int"}}},
		"type":      {Fields: map[string]FieldRule{"x": {Type: "uint", Policy: PolicyAuthoritative}}},
		"window":    {FairWindow: "soon"},
		"lag":       {FairWindow: "1ms", MaxLag: "5"},
	} {
		require.ErrorIs(t, r.Check(), ErrMalformed, name)
	}
	require.EqualError(t, Rules{Fields: map[string]FieldRule{"x": {Policy: "nope"}}}.Check(),
		`field "x": gsd/fsm: malformed request: unknown policy "nope"`)
}
