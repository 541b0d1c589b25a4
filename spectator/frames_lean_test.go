package spectator

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestStripVersionsLeavesOutVersionMembersOnly(t *testing.T) {
	for in, want := range map[string]string{
		`{"version":12,"fields":{"x":{"value":1,"version":12}}}`: `{"fields":{"x":{"value":1}}}`,
		`{"a":{"version":3}}`:                                           `{"a":{}}`,
		`{"a":{"version":3,"deleted":true}}`:                            `{"a":{"deleted":true}}`,
		`{"s":{"value":"\"version\":1","version":2}}`:                   `{"s":{"value":"\"version\":1"}}`,
		`{"s":{"value":"\\","version":2}}`:                              `{"s":{"value":"\\"}}`,
		`{"version":{"version":4,"fields":{"version":{"value":true}}}}`: `{"version":{"fields":{"version":{"value":true}}}}`,
		`{"value":"version","n":1}`:                                     `{"value":"version","n":1}`,
		`{"type":"delta","seq":7}`:                                      `{"type":"delta","seq":7}`,
		`{"x":"unterminated \`:                                          `{"x":"unterminated \`,
	} {
		require.Equal(t, want, string(stripVersions([]byte(in))), "%s", in)
	}
}

// zeroVersions is a keyframe's or delta's entities with versions 0.
func zeroVersions(es map[string]wire.WatchEntity) map[string]wire.WatchEntity {
	for id, e := range es {
		e.Version = 0
		for n, f := range e.Fields {
			f.Version = 0
			e.Fields[n] = f
		}
		es[id] = e
	}
	return es
}

// The ruler's frames without versions say the same but the versions,
// and their deflated bytes inflate to them.
func TestLeanFramesSayTheSameButVersions(t *testing.T) {
	frames := rulerFrames(t, battleEvents(t, rulerLoad{players: 50, items: 8, rate: 200, seconds: 2, seed: 7}))
	require.Greater(t, len(frames), 10)
	for _, f := range frames {
		lean, binary, err := f.Encoded(CodecJSON | CodecLean)
		require.NoError(t, err)
		require.False(t, binary)
		require.NotContains(t, string(lean), `"version":`)
		var got, want wire.WatchDelta // a keyframe decodes into it too (its keys)
		require.NoError(t, json.Unmarshal(lean, &got), "%s", lean)
		require.NoError(t, json.Unmarshal(f.Data, &want))
		want.Entities = zeroVersions(want.Entities)
		require.Equal(t, want, got)
		d, binary, err := f.Encoded(CodecDeflate | CodecLean)
		require.NoError(t, err)
		require.True(t, binary)
		require.Equal(t, lean, inflate(t, d))

		// In msgpack: the same content as the lean JSON, and as the frame's
		// msgpack but the versions.
		mp, binary, err := f.Encoded(CodecMsgpack | CodecLean)
		require.NoError(t, err)
		require.True(t, binary)
		require.NotContains(t, string(mp), "\xa7version")
		asJSON, err := wire.MsgpackToJSON(mp)
		require.NoError(t, err)
		require.JSONEq(t, string(lean), string(asJSON))
		full, err := f.Msgpack()
		require.NoError(t, err)
		var fromLean, fromFull wire.WatchDelta
		require.NoError(t, wire.UnmarshalMsgpack(mp, &fromLean))
		require.NoError(t, wire.UnmarshalMsgpack(full, &fromFull))
		fromFull.Entities = zeroVersions(fromFull.Entities)
		require.Equal(t, fromFull, fromLean)
		require.LessOrEqual(t, len(mp), len(full))
		again, err := f.LeanMsgpack()
		require.NoError(t, err)
		require.Same(t, &mp[0], &again[0], "made once")
	}
	view := &Frame{Type: wire.TypeView, Data: []byte(`{"type":"view","version":1}`)}
	require.Equal(t, view.Data, view.Lean(), "only keyframes and deltas are made lean")
	vf, err := encode(wire.TypeView, 3, &wire.ViewFrame{Type: wire.TypeView, World: "w", Name: "kills", Kind: "sum", Seq: 3})
	require.NoError(t, err)
	lm, err := vf.LeanMsgpack()
	require.NoError(t, err)
	m, err := vf.Msgpack()
	require.NoError(t, err)
	require.Equal(t, m, lm, "nor in msgpack")
}

// The lean wire forms have wire's keys but "version", so that a client
// decodes them into the wire types.
func TestLeanWireFormsAreTheWiresWithoutVersions(t *testing.T) {
	keys := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			if tag := rt.Field(i).Tag.Get("json"); tag != "version" {
				out = append(out, tag)
			}
		}
		return out
	}
	require.Equal(t, keys(wire.WatchField{}), keys(leanField{}))
	require.Equal(t, keys(wire.WatchEntity{}), keys(leanEntity{}))
	require.Equal(t, keys(wire.Keyframe{}), keys(leanKeyframe{}))
	require.Equal(t, keys(wire.WatchDelta{}), keys(leanDelta{}))
	_, ok := leanWire(&wire.Events{})
	require.False(t, ok)
	l, ok := leanWire(&wire.WatchDelta{Type: wire.TypeWatchDelta})
	require.True(t, ok)
	require.Nil(t, l.(*leanDelta).Entities, "none stays none")
}

func TestParseVersionsRefusesWhatCannotBeServed(t *testing.T) {
	for _, s := range []string{"", "true"} {
		lean, err := ParseVersions(s, false, nil)
		require.NoError(t, err)
		require.False(t, lean)
	}
	lean, err := ParseVersions("false", false, []string{wire.SubprotocolMsgpack, wire.SubprotocolJSON})
	require.NoError(t, err)
	require.True(t, lean)
	lean, err = ParseVersions("false", false, nil)
	require.NoError(t, err)
	require.True(t, lean, "no subprotocol: JSON")
	_, err = ParseVersions("no", false, nil)
	require.ErrorIs(t, err, ErrBadCodec)
	_, err = ParseVersions("false", true, nil)
	require.ErrorIs(t, err, ErrBadCodec)
	lean, err = ParseVersions("false", false, []string{wire.SubprotocolMsgpack})
	require.NoError(t, err)
	require.True(t, lean, "msgpack alone: lean msgpack")

	require.Equal(t, []string{"a", "b", "c"}, Offered([]string{"a, b", " c ,"}))
	require.Empty(t, Offered(nil))
}
