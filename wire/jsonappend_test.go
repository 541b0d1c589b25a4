package wire

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The appenders write what json.Marshal writes, and refuse what it
// refuses.
func TestJSONAppendersWriteWhatMarshalWrites(t *testing.T) {
	for _, s := range []string{"", "p1", `a"b`, `a\b`, "<&>", "é", "\x01", "\xff"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(AppendJSONString(nil, s)), "%q", s)
	}
	one := Int(1)
	for _, f := range []WatchField{
		{Version: 3},
		{Value: &one, Version: 4},
		{Set: []Value{String("a"), Float(1.5), Bool(true), {}}, IsSet: true, Version: 5},
	} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		got, ok := AppendWatchFieldJSON(nil, f)
		require.True(t, ok)
		require.Equal(t, string(want), string(got))
	}
	nan := Float(math.NaN())
	_, ok := AppendWatchFieldJSON(nil, WatchField{Value: &nan})
	require.False(t, ok)
	_, ok = AppendWatchFieldJSON(nil, WatchField{Set: []Value{Float(math.Inf(1))}})
	require.False(t, ok)
	_, err := json.Marshal(WatchField{Value: &nan})
	require.Error(t, err, "Marshal refuses it too")
}

// An entity's JSON as json.Marshal writes it, its fields' names sorted in
// the scratch given; a field json.Marshal refuses is refused.
func TestAppendWatchEntityJSONWritesWhatMarshalWrites(t *testing.T) {
	two := Int(2)
	for _, e := range []WatchEntity{
		{Version: 1},
		{Version: 2, Replace: true, Deleted: true},
		{Version: 3, Fields: map[string]WatchField{"z": {Value: &two, Version: 3}, "a": {Set: []Value{String("x")}, IsSet: true, Version: 2}}},
	} {
		want, err := json.Marshal(e)
		require.NoError(t, err)
		got, names, ok := AppendWatchEntityJSON(nil, e, make([]string, 0, 4))
		require.True(t, ok)
		require.Equal(t, string(want), string(got))
		require.True(t, slices.IsSorted(names))
	}
	nan := Float(math.NaN())
	_, _, ok := AppendWatchEntityJSON(nil, WatchEntity{Fields: map[string]WatchField{"f": {Value: &nan}}}, nil)
	require.False(t, ok)
}

// A map of entities as json.Marshal writes it, ids sorted; an entity
// json.Marshal refuses is refused.
func TestAppendWatchEntitiesJSONWritesWhatMarshalWrites(t *testing.T) {
	two := Int(2)
	for _, es := range []map[string]WatchEntity{
		{},
		{"b": {Version: 1}, "a": {Version: 3, Fields: map[string]WatchField{"z": {Value: &two, Version: 3}, "a": {Version: 2}}}, "c": {Version: 2, Deleted: true}},
	} {
		want, err := json.Marshal(es)
		require.NoError(t, err)
		got, ok := AppendWatchEntitiesJSON(nil, es)
		require.True(t, ok)
		require.Equal(t, string(want), string(got))
	}
	nan := Float(math.NaN())
	_, ok := AppendWatchEntitiesJSON(nil, map[string]WatchEntity{"e": {Fields: map[string]WatchField{"f": {Value: &nan}}}})
	require.False(t, ok)
}
