package spectator

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// A delta made in slices writes the bytes its wire form's encoding
// writes, and its Msgpack form is the wire form's, made when asked.
func TestTickDeltaFrameIsItsWireFormsEncoding(t *testing.T) {
	a := access(t, map[string]string{"plan": "team"}, nil, fsm.TeamRule{From: "field", Key: "side"})
	g := newGame(t, "w", nil)
	tk := NewTicker(a, NewState("w"), nil)
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("red")), set("ann", "name", fsm.String(`"Ann" <3`)))))
	require.NoError(t, tk.Apply(g.act("bob", add("bob", "tags", fsm.String("b")), set("bob", "x", fsm.Float(0.5)))))
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("blue")), set("ann", "plan", fsm.String("hold")))))
	require.NoError(t, tk.Apply(g.act("bob", add("bob", "tags", fsm.String("a")), del("bob"), set("bob", "x", fsm.Int(2)))))
	require.NoError(t, tk.Apply(g.act("cat", set("cat", "x", fsm.Int(1)), del("cat"))))
	for _, view := range []View{{}, resolve(t, a, Viewer{Team: "red"}), {sees: 0xff}} {
		d := tk.tickDelta(view, true)
		require.NotNil(t, d)
		f, err := d.frame()
		require.NoError(t, err)
		want, err := encode(wire.TypeWatchDelta, d.seq, tk.Delta(view))
		require.NoError(t, err)
		require.Equal(t, string(want.Data), string(f.Data))
		mp, err := f.Msgpack()
		require.NoError(t, err)
		wantMP, err := want.Msgpack()
		require.NoError(t, err)
		require.Equal(t, wantMP, mp)
	}
}

func TestTickDeltaWithANaNIsRefusedAsJSONRefusesIt(t *testing.T) {
	d := &tickDelta{world: "w", seq: 1, ents: []deltaEntity{{id: "e", version: 1, hi: 1}},
		fields: []deltaField{{name: "x", value: fsm.Float(math.NaN()), version: 1}}}
	_, err := d.frame()
	require.Error(t, err)
}

// A tick that changes many fields of one entity sends each once.
func TestADeltaOfManyFieldsOfOneEntityHoldsEachOnce(t *testing.T) {
	a := access(t, nil, nil, fsm.TeamRule{})
	g := newGame(t, "w", nil)
	tk := NewTicker(a, NewState("w"), nil)
	var ops []fsm.Op
	for i := range 3 * fieldSetMax {
		ops = append(ops, set("ann", fmt.Sprintf("f%02d", i%(2*fieldSetMax)), fsm.Int(int64(i))))
	}
	require.NoError(t, tk.Apply(g.act("ann", ops...)))
	d := tk.Delta(View{})
	require.Len(t, d.Entities["ann"].Fields, 2*fieldSetMax)
	require.Equal(t, fsm.Int(2*fieldSetMax), *d.Entities["ann"].Fields["f00"].Value, "the latest value")
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "f01", fsm.Int(-1)))))
	require.Len(t, tk.Delta(View{}).Entities["ann"].Fields, 1, "a touch used again starts empty")
}

// A delta's entities are in the order of their ids' bytes, whatever
// their length and however they start.
func TestADeltasEntitiesAreInIdOrder(t *testing.T) {
	ids := []string{"b", "a\x00", "a", "abcdefgh", "abcdefghZ", "abcdefgh\x00", "abcdefgi", "\xff", "A", ""}
	d := &tickDelta{world: "w"}
	for _, id := range ids {
		d.ents = append(d.ents, deltaEntity{id: id})
	}
	d.sort()
	got := make([]string, 0, len(ids))
	for _, e := range d.ents {
		got = append(got, e.id)
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	require.Equal(t, want, got)
}

// Sorted by key, a delta's entities are in id byte order and each keeps
// its own fields, for ids that share long prefixes or differ only past
// their eighth differing byte.
func TestSortByIDOrdersAsTheIdsBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		prefix := rapid.SampledFrom([]string{"", "player-", "p\x00\x00"}).Draw(t, "prefix")
		ids := rapid.SliceOfNDistinct(rapid.StringOfN(rapid.SampledFrom([]rune{0, 'a', 'b', 0xff}), 0, 12, -1),
			0, 40, func(s string) string { return s }).Draw(t, "ids")
		ents := make([]deltaEntity, len(ids))
		for i, id := range ids {
			ents[i] = deltaEntity{id: prefix + id, lo: i, hi: i + 1}
		}
		sortByID(ents)
		for i := 1; i < len(ents); i++ {
			require.Negative(t, strings.Compare(ents[i-1].id, ents[i].id), "in order, each once")
		}
		for _, e := range ents {
			require.Equal(t, prefix+ids[e.lo], e.id, "an entity moves whole")
		}
		require.Len(t, ents, len(ids))
	})
}

// A delta of more entities than sortByID's keys can index is sorted all
// the same.
func TestSortByIDSortsMoreEntitiesThanItsKeysIndex(t *testing.T) {
	const n = maxKeyed + 1
	ents := make([]deltaEntity, n)
	for i := range ents {
		ents[i] = deltaEntity{id: fmt.Sprintf("e%06d", i*7919%n), lo: i * 7919 % n} // a permutation
	}
	sortByID(ents)
	for i, e := range ents {
		require.Equal(t, fmt.Sprintf("e%06d", i), e.id)
		require.Equal(t, i, e.lo, "an entity moves whole")
	}
}

// A delta of an access that restricts nothing lists each entity's changed
// fields in name order however they were changed (walking the entity's
// fields, or sorting the changed ones when they are few of many): its
// bytes are its wire form's encoding, tick after tick.
func TestPropertyTickDeltaListsChangedFieldsInNameOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, err := NewAccess(fsm.Rules{})
		require.NoError(t, err)
		g := newGame(t, "w", nil)
		tk := NewTicker(a, NewState("w"), nil)
		for range rapid.IntRange(1, 8).Draw(t, "ticks") {
			for range rapid.IntRange(1, 6).Draw(t, "events") {
				var ops []fsm.Op
				for range rapid.IntRange(1, 5).Draw(t, "ops") {
					e := fmt.Sprintf("e%d", rapid.IntRange(0, 3).Draw(t, "entity"))
					f := fmt.Sprintf("f%02d", rapid.IntRange(0, 19).Draw(t, "field"))
					ops = append(ops, set(e, f, fsm.Int(rapid.Int64Range(0, 9).Draw(t, "value"))))
				}
				require.NoError(t, tk.Apply(g.act("p", ops...)))
			}
			d := tk.tickDelta(View{}, true)
			require.NotNil(t, d)
			f, err := d.frame()
			require.NoError(t, err)
			want, err := encode(wire.TypeWatchDelta, d.seq, tk.Delta(View{}))
			require.NoError(t, err)
			require.Equal(t, string(want.Data), string(f.Data))
			tk.Reset()
		}
	})
}
