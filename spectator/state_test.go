package spectator

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestStateFollowsTheFSMThroughEveryOp(t *testing.T) {
	a := access(t, map[string]string{}, nil, fsm.TeamRule{})
	g := newGame(t, "w", map[string]fsm.FieldRule{
		"name":  {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"hp":    {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"items": {Type: fsm.KindString, Policy: fsm.PolicySet},
		"best":  {Type: fsm.KindInt, Policy: fsm.PolicyMax},
	})
	s := NewState("w")
	for _, ev := range []*fsm.Event{
		g.act("ann", set("ann", "name", fsm.String("Ann")), incr("ann", "hp", 10), add("ann", "items", fsm.String("sword"))),
		g.act("ann", incr("ann", "hp", -3), add("ann", "items", fsm.String("axe")), add("ann", "items", fsm.String("sword"))),
		g.act("ann", remove("ann", "items", fsm.String("sword")), remove("ann", "items", fsm.String("bow")), set("ann", "best", fsm.Int(5))),
		g.act("ann", set("ann", "best", fsm.Int(3)), set("box", "name", fsm.String("box")), remove("box", "items", fsm.String("x"))),
		g.act("bob", del("box"), del("nobody")),
		g.act("bob", expect(set("ann", "name", fsm.String("x")), 99)), // a conflict changes nothing
	} {
		require.NoError(t, s.Apply(ev))
	}
	require.Equal(t, uint64(6), s.Seq())
	require.Equal(t, g.time, s.Time())
	want, err := g.f.Entity("w", "ann")
	require.NoError(t, err)
	seeded := SeedState("w", want.Seq, g.time, []fsm.EntityView{want})
	view := resolve(t, a, Viewer{})
	require.Equal(t, Keyframe(a, seeded, nil, view), Keyframe(a, s, nil, view), "the feed's state is the FSM's")
	require.NotContains(t, Keyframe(a, s, nil, view).Entities, "box")
}

func TestSeedStateSortsSetElements(t *testing.T) {
	s := SeedState("w", 3, 0, []fsm.EntityView{{ID: "e", Fields: []fsm.FieldView{
		{Name: "tags", Policy: fsm.PolicySet, Set: []fsm.Value{fsm.String("b"), fsm.String("a")}, Version: 3},
	}}})
	require.Equal(t, []fsm.Value{fsm.String("a"), fsm.String("b")}, s.ents["e"].field("tags").set)
	require.NoError(t, s.Apply(&fsm.Event{World: "w", Seq: 4, Status: fsm.StatusApplied,
		Changes: []fsm.Change{{Entity: "e", Field: "tags", Op: fsm.OpAdd, Value: fsm.String("ab"), Version: 4}}}))
	require.Equal(t, []fsm.Value{fsm.String("a"), fsm.String("ab"), fsm.String("b")}, s.ents["e"].field("tags").set)
}

func TestStateOwnerAndTeamComeFromTheOwnerFieldTheTeamFieldOrTheEdge(t *testing.T) {
	byField := access(t, map[string]string{"side": "", "plan": "team"}, nil, fsm.TeamRule{From: "field", Key: "side"})
	s := SeedState("w", 1, 0, []fsm.EntityView{
		{ID: "ann", Fields: []fsm.FieldView{{Name: "side", Value: fsm.String("red")}}},
		{ID: "bob", Fields: []fsm.FieldView{{Name: "side", Value: fsm.Int(7)}}},
		{ID: "sword", Fields: []fsm.FieldView{{Name: OwnerField, Value: fsm.String("ann")}}},
		{ID: "flag", Fields: []fsm.FieldView{{Name: OwnerField, Value: fsm.String("ann")}, {Name: "side", Value: fsm.String("blue")}}},
		{ID: "odd", Fields: []fsm.FieldView{{Name: OwnerField, Value: fsm.Int(1)}}},
	})
	require.Equal(t, who{"ann", "red"}, s.who(byField, nil, "ann"))
	require.Equal(t, who{"bob", ""}, s.who(byField, nil, "bob"), "a team is a string")
	require.Equal(t, who{"cat", ""}, s.who(byField, nil, "cat"), "no entity, no team")
	require.Equal(t, who{"ann", "red"}, s.who(byField, nil, "sword"), "its owner's team")
	require.Equal(t, who{"ann", "blue"}, s.who(byField, nil, "flag"), "its own team field first")
	require.Equal(t, who{"odd", ""}, s.who(byField, nil, "odd"), "an owner is a string")
	require.Equal(t, "side", byField.TeamField())
	require.Equal(t, map[string]map[string]bool{"ann": {"sword": true, "flag": true}}, s.owned)

	byClaim := access(t, map[string]string{"plan": "team"}, nil, fsm.TeamRule{From: "claim", Key: "team"})
	claims := func(p string) string { return map[string]string{"ann": "blue"}[p] }
	require.Equal(t, who{"ann", "blue"}, s.who(byClaim, claims, "sword"), "the owner's claim")
	require.Equal(t, who{"cat", ""}, s.who(byClaim, nil, "cat"))
	none := access(t, map[string]string{"plan": "team"}, nil, fsm.TeamRule{})
	require.Equal(t, who{"ann", ""}, s.who(none, claims, "ann"))

	// The owned index follows owner changes and deletes.
	require.NoError(t, s.Apply(&fsm.Event{World: "w", Seq: 2, Status: fsm.StatusApplied, Changes: []fsm.Change{
		{Entity: "sword", Field: OwnerField, Op: fsm.OpSet, Value: fsm.String("bob"), Version: 2},
		{Entity: "flag", Op: fsm.OpDelete},
		{Entity: "axe", Field: OwnerField, Op: fsm.OpSet, Value: fsm.String("bob"), Version: 2},
		{Entity: "axe", Field: "x", Op: fsm.OpSet, Value: fsm.Int(1), Version: 2},
	}}))
	require.Equal(t, map[string]map[string]bool{"bob": {"sword": true, "axe": true}}, s.owned)
}

func TestEncodeRefusesAValueJSONCannotHold(t *testing.T) {
	a := access(t, map[string]string{}, nil, fsm.TeamRule{})
	s := SeedState("w", 1, 0, []fsm.EntityView{{ID: "e", Fields: []fsm.FieldView{{Name: "x", Value: fsm.Float(math.NaN())}}}})
	k := Keyframe(a, s, nil, View{})
	_, err := encode("keyframe", 1, k)
	require.Error(t, err)
}

// A clone goes on apart from its state; a filtered state takes seq gaps.
func TestStateCloneChangesApartAndFilteredTakesGaps(t *testing.T) {
	g := newGame(t, "w", map[string]fsm.FieldRule{"tags": {Type: fsm.KindString, Policy: fsm.PolicySet}})
	s := NewState("w").Filtered()
	require.NoError(t, s.Apply(g.act("p", add("e", "tags", fsm.String("a")), set("e", OwnerField, fsm.String("p")))))
	g.act("p", add("e", "tags", fsm.String("hidden")))
	ev := g.act("p", add("e", "tags", fsm.String("b")))
	c := s.Clone()
	require.NoError(t, s.Apply(ev), "seq 3 after seq 1: a filtered feed's gap")
	require.ErrorIs(t, s.Apply(ev), ErrGap, "a repeat")
	require.Equal(t, uint64(1), c.Seq())
	require.Equal(t, []fsm.Value{fsm.String("a")}, c.ents["e"].field("tags").set)
	require.Equal(t, []fsm.Value{fsm.String("a"), fsm.String("b")}, s.ents["e"].field("tags").set)
	require.True(t, c.owned["p"]["e"])
	require.NoError(t, c.Apply(g.act("p", fsm.Op{Kind: fsm.OpDelete, Entity: "e"})))
	require.Empty(t, c.owned)
	require.True(t, s.owned["p"]["e"], "the clone's delete left the state's owner index alone")
}

// An entity's version in a delta is its largest field version, kept
// right even by a change that lowers a field's version (the FSM's only
// rise, a feed could say otherwise).
func TestAnEntitysVersionIsItsLargestFieldVersion(t *testing.T) {
	tk := NewTicker(access(t, nil, nil, fsm.TeamRule{}), NewState("w"), nil)
	for i, c := range []fsm.Change{
		{Entity: "e", Field: "x", Op: fsm.OpSet, Value: fsm.Int(1), Version: 5},
		{Entity: "e", Field: "y", Op: fsm.OpSet, Value: fsm.Int(1), Version: 3},
		{Entity: "e", Field: "x", Op: fsm.OpSet, Value: fsm.Int(2), Version: 1},
	} {
		tk.Reset()
		require.NoError(t, tk.Apply(&fsm.Event{World: "w", Seq: uint64(i + 1), Status: fsm.StatusApplied, Changes: []fsm.Change{c}}))
	}
	require.Equal(t, uint64(3), tk.Delta(View{}).Entities["e"].Version)
	require.Equal(t, uint64(3), Keyframe(tk.access, tk.State(), nil, View{}).Entities["e"].Version)
}

// An entity's fields, written in any order and any number, are kept in
// name order, each once, and each is found by its name (its owner field
// by its index too); a name it lacks is not.
func TestStateKeepsAnEntitysFieldsInNameOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		names := rapid.SliceOfN(rapid.StringMatching(`[a-d]{1,3}|owner`), 1, 30).Draw(t, "names")
		s := NewState("w")
		want := map[string]int64{}
		for i, name := range names {
			want[name] = int64(i)
			require.NoError(t, s.Apply(&fsm.Event{World: "w", Seq: uint64(i + 1), Status: fsm.StatusApplied,
				Changes: []fsm.Change{{Entity: "e", Field: name, Op: fsm.OpSet, Value: fsm.Int(int64(i)), Version: uint64(i + 1)}}}))
		}
		e := s.ents["e"]
		require.Len(t, e.fields, len(want))
		require.True(t, slices.IsSortedFunc(e.fields, func(a, b namedField) int { return strings.Compare(a.name, b.name) }))
		for name, v := range want {
			require.Equal(t, fsm.Int(v), e.field(name).value, name)
		}
		require.Nil(t, e.field("zz"), "a field it lacks")
		// Its first fields live in its own room, the rest apart; the owner
		// index holds wherever it is.
		require.True(t, e.owner == e.field(OwnerField))
		require.Equal(t, min(len(want), entFields), e.nf)
		require.Equal(t, uint64(len(names)), e.version)
	})
}
