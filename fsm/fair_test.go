package fsm

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFairnessValidatesItsBounds(t *testing.T) {
	for _, ok := range []Fairness{{}, {Window: time.Millisecond}, {Window: MaxFairWindow, MaxLag: MaxFairLag}} {
		require.NoError(t, Rules{Fair: ok}.Validate(), "%+v", ok)
	}
	for _, bad := range []Fairness{
		{Window: -1},
		{Window: MaxFairWindow + 1},
		{Window: time.Millisecond, MaxLag: -1},
		{Window: time.Millisecond, MaxLag: MaxFairLag + 1},
		{MaxLag: time.Millisecond},
	} {
		require.ErrorIs(t, Rules{Fair: bad}.Validate(), ErrMalformed, "%+v", bad)
	}
}

func TestFairnessLagDefaultsToTheWindow(t *testing.T) {
	require.False(t, Fairness{}.Enabled())
	f := Fairness{Window: 50 * time.Millisecond}
	require.True(t, f.Enabled())
	require.Equal(t, 50*time.Millisecond, f.Lag())
	f.MaxLag = 200 * time.Millisecond
	require.Equal(t, 200*time.Millisecond, f.Lag())
}

func TestRulesJSONCarriesFairness(t *testing.T) {
	r := Rules{Fair: Fairness{Window: 50 * time.Millisecond, MaxLag: 150 * time.Millisecond}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.JSONEq(t, `{"strict":false,"fair_window":"50ms","max_lag_compensation":"150ms"}`, string(b))
	var got Rules
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, r, got)

	for _, in := range []string{
		`{"fair_window":"soon"}`,
		`{"fair_window":"50ms","max_lag_compensation":"-1s"}`,
		`{"max_lag_compensation":"50ms"}`,
		`{"fair_window":"2s"}`,
	} {
		got := Rules{Strict: true}
		require.ErrorIs(t, got.UnmarshalJSON([]byte(in)), ErrMalformed, in)
		require.Equal(t, Rules{Strict: true}, got, in)
	}
}

func TestFairnessRoundTripsThroughTheCodec(t *testing.T) {
	for _, r := range []Rules{
		{Fair: Fairness{Window: 30 * time.Millisecond}},
		{Strict: true, Fair: Fairness{Window: time.Second, MaxLag: 10 * time.Second},
			Fields: map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}},
	} {
		b := &Batch{Commands: []Command{{Kind: CmdCreateWorld, World: &WorldSpec{ID: "w", Rules: r}}}}
		enc := EncodeBatch(b)
		got, err := DecodeBatch(enc)
		require.NoError(t, err)
		require.Equal(t, b, got)
		require.Equal(t, enc, EncodeBatch(got))
	}
}

func TestRulesEncodedBeforeFairnessStillDecode(t *testing.T) {
	// The bytes a create-world command had before fairness: the strict
	// bool where the flags byte is now.
	for strict, want := range map[byte]Rules{0: {}, 1: {Strict: true}} {
		e := encoder{}
		e.byte(batchMagic)
		e.varint(7)
		e.uvarint(1)
		e.byte(byte(CmdCreateWorld))
		e.str("w")
		e.str("eu")
		e.byte(strict)
		e.uvarint(0)
		got, err := DecodeBatch(e.b)
		require.NoError(t, err)
		require.Equal(t, want, got.Commands[0].World.Rules)
		require.Equal(t, e.b, EncodeBatch(got), "and encode the same")
	}
}

func TestFairIsPublishedByCreateAndRestore(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, Fairness{}, h.f.Fair("w"), "before any world")
	fair := Fairness{Window: 40 * time.Millisecond, MaxLag: 100 * time.Millisecond}
	h.createWorld("w", Rules{Fair: fair})
	h.createWorld("plain", Rules{})
	require.Equal(t, fair, h.f.Fair("w"))
	require.Equal(t, Fairness{}, h.f.Fair("plain"))
	require.Equal(t, Fairness{}, h.f.Fair("nope"))
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, fair, wi.Rules.Fair)

	g := restored(t, h.snapshotBytes())
	require.Equal(t, fair, g.Fair("w"))
	require.Equal(t, Fairness{}, g.Fair("plain"))
	wi, err = g.World("w")
	require.NoError(t, err)
	require.Equal(t, fair, wi.Rules.Fair)
}
