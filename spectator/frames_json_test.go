package spectator

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// appendWatchDelta writes exactly json.Marshal's bytes, for any delta:
// odd strings (quotes, HTML characters, control characters, non-ASCII,
// invalid UTF-8), every kind of value, sets, empty and nil maps; where it
// declines (a NaN or infinite float) json.Marshal refuses too.
func TestAppendWatchDeltaWritesWhatJSONMarshalWrites(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		str := rapid.OneOf(rapid.SampledFrom([]string{"", "a", "hp", "x_1", `q"uote`, `back\slash`, "<b>&amp;", "tab\there", "nul\x00", "é", "日本", "\xff\xfe", "del\x7f", "\u2028"}),
			rapid.String())
		value := rapid.Custom(func(t *rapid.T) wire.Value {
			switch rapid.IntRange(0, 5).Draw(t, "kind") {
			case 0:
				return wire.Int(rapid.Int64().Draw(t, "int"))
			case 1:
				return wire.Float(rapid.Float64().Draw(t, "float"))
			case 2:
				return wire.Float(rapid.SampledFrom([]float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e21, 1e-7, math.Copysign(0, -1), 0.5}).Draw(t, "odd float"))
			case 3:
				return wire.String(str.Draw(t, "str"))
			case 4:
				return wire.Bool(rapid.Bool().Draw(t, "bool"))
			}
			return wire.Value{}
		})
		d := &wire.WatchDelta{Type: str.Draw(t, "type"), World: str.Draw(t, "world"), From: rapid.Uint64().Draw(t, "from"),
			Seq: rapid.Uint64().Draw(t, "seq"), Time: rapid.Int64().Draw(t, "time")}
		if rapid.IntRange(0, 9).Draw(t, "nil entities") > 0 {
			d.Entities = map[string]wire.WatchEntity{}
			for range rapid.IntRange(0, 4).Draw(t, "entities") {
				e := wire.WatchEntity{Version: rapid.Uint64().Draw(t, "version"), Replace: rapid.Bool().Draw(t, "replace"), Deleted: rapid.Bool().Draw(t, "deleted")}
				if rapid.Bool().Draw(t, "fields") {
					e.Fields = map[string]wire.WatchField{}
					for range rapid.IntRange(0, 4).Draw(t, "n fields") {
						f := wire.WatchField{Version: rapid.Uint64().Draw(t, "field version"), IsSet: rapid.Bool().Draw(t, "is set")}
						if rapid.Bool().Draw(t, "has value") {
							v := value.Draw(t, "value")
							f.Value = &v
						}
						if rapid.Bool().Draw(t, "has set") {
							f.Set = rapid.SliceOfN(value, 0, 3).Draw(t, "set")
						}
						e.Fields[str.Draw(t, "field")] = f
					}
				}
				d.Entities[str.Draw(t, "id")] = e
			}
		}
		want, wantErr := json.Marshal(d)
		got, ok := appendWatchDelta(nil, d)
		if !ok {
			require.Error(t, wantErr, "it declined a delta json.Marshal encodes")
			return
		}
		require.NoError(t, wantErr)
		require.Equal(t, string(want), string(got))
	})
}

// encode uses it for deltas, and json.Marshal's error for what it declines.
func TestEncodeFallsBackToJSONMarshal(t *testing.T) {
	nan := wire.Float(math.NaN())
	_, err := encode(wire.TypeWatchDelta, 1, &wire.WatchDelta{Entities: map[string]wire.WatchEntity{"e": {Fields: map[string]wire.WatchField{"f": {Value: &nan}}}}})
	require.Error(t, err)
	one := wire.Int(1)
	f, err := encode(wire.TypeWatchDelta, 1, &wire.WatchDelta{Type: wire.TypeWatchDelta, World: "w", Entities: map[string]wire.WatchEntity{"e": {Version: 1, Fields: map[string]wire.WatchField{"f": {Value: &one, Version: 1}}}}})
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"delta","world":"w","from":0,"seq":0,"time":0,"entities":{"e":{"version":1,"fields":{"f":{"value":1,"version":1}}}}}`, string(f.Data))
}
