package play

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func drawText(t *rapid.T, label string) string {
	return rapid.OneOf(rapid.SampledFrom([]string{"", "p1", "rock", "x", "hp", `q"uote`, "<b>&", "é", "\xff"}), rapid.String()).Draw(t, label)
}

func drawValue(t *rapid.T, label string) wire.Value {
	switch rapid.IntRange(0, 5).Draw(t, label+" kind") {
	case 0:
		return wire.Int(rapid.Int64().Draw(t, label))
	case 1:
		return wire.Float(rapid.SampledFrom([]float64{0, -0.5, 1e21, 1e-7, 123456789.125, math.MaxFloat64, math.Inf(1), math.NaN()}).Draw(t, label))
	case 2:
		return wire.String(drawText(t, label))
	case 3:
		return wire.Bool(rapid.Bool().Draw(t, label))
	case 4:
		return wire.Value{}
	}
	return wire.Float(rapid.Float64().Draw(t, label))
}

func drawWatchEntity(t *rapid.T) wire.WatchEntity {
	e := wire.WatchEntity{Version: rapid.Uint64().Draw(t, "version"), Replace: rapid.Bool().Draw(t, "replace"), Deleted: rapid.Bool().Draw(t, "deleted")}
	if n := rapid.IntRange(-1, 4).Draw(t, "fields"); n >= 0 {
		e.Fields = map[string]wire.WatchField{}
		for range n {
			f := wire.WatchField{Version: rapid.Uint64().Draw(t, "field version"), IsSet: rapid.Bool().Draw(t, "is set")}
			if rapid.Bool().Draw(t, "has value") {
				v := drawValue(t, "value")
				f.Value = &v
			}
			for range rapid.IntRange(0, 3).Draw(t, "set") {
				f.Set = append(f.Set, drawValue(t, "element"))
			}
			e.Fields[drawText(t, "name")] = f
		}
	}
	return e
}

// appendEnterJSON and appendLeaveJSON write exactly json.Marshal's bytes,
// and give up where json.Marshal fails (a NaN or infinite float).
func TestEnterAndLeaveJSONWriteWhatJSONMarshalDoes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := &wire.Keyframe{Type: wire.TypeEnter, World: drawText(t, "world"), Seq: rapid.Uint64().Draw(t, "seq"),
			Time: rapid.Int64().Draw(t, "time"), Whole: rapid.Bool().Draw(t, "whole")}
		if rapid.Bool().Draw(t, "checkpoint") {
			k.Checkpoint = drawText(t, "checkpoint")
		}
		if n := rapid.IntRange(-1, 5).Draw(t, "entities"); n >= 0 {
			k.Entities = map[string]wire.WatchEntity{}
			for range n {
				k.Entities[drawText(t, "id")] = drawWatchEntity(t)
			}
		}
		want, err := json.Marshal(k)
		got, ok := appendEnterJSON(nil, k)
		if !ok {
			require.Error(t, err, "appendEnterJSON gave up on what json.Marshal encodes")
			return
		}
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))

		l := &wire.Leave{Type: wire.TypeLeave, World: k.World, Seq: k.Seq}
		if n := rapid.IntRange(-1, 5).Draw(t, "ids"); n >= 0 {
			l.IDs = []string{}
			for range n {
				l.IDs = append(l.IDs, drawText(t, "gone"))
			}
		}
		want, err = json.Marshal(l)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendLeaveJSON([]byte{}, l)))
	})
}

// A shared enter or leave message encodes as json.Marshal does in JSON,
// and through it (no hand encoder) in msgpack.
func TestSharedMsgEncodesAsMarshal(t *testing.T) {
	v := wire.Int(7)
	nan := wire.Float(math.NaN())
	for _, m := range []*sharedMsg{
		{enter: &wire.Keyframe{Type: wire.TypeEnter, World: "w", Seq: 3, Entities: map[string]wire.WatchEntity{
			"b": {Version: 2, Fields: map[string]wire.WatchField{"y": {Value: &v, Version: 2}, "x": {IsSet: true, Set: []wire.Value{wire.String("s")}, Version: 1}}},
			"a": {Version: 1}}, Whole: true}},
		{leave: &wire.Leave{Type: wire.TypeLeave, World: "w", Seq: 4, IDs: []string{"a", "c"}}},
	} {
		var v any = m.enter
		if m.leave != nil {
			v = m.leave
		}
		for _, k := range []playCodec{codecJSON, codecMsgpack} {
			want, err := k.marshal(v)
			require.NoError(t, err)
			got, err := m.encode(k)
			require.NoError(t, err)
			require.Equal(t, want, got, "codec %v", k)
			again, _ := m.encode(k)
			require.Equal(t, got, again)
		}
	}
	bad := &sharedMsg{enter: &wire.Keyframe{Type: wire.TypeEnter, Entities: map[string]wire.WatchEntity{"a": {Fields: map[string]wire.WatchField{"x": {Value: &nan}}}}}}
	_, err := bad.encode(codecJSON)
	require.Error(t, err, "a NaN goes to json.Marshal, which refuses it")
}
