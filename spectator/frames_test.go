package spectator

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func ptr(v fsm.Value) *fsm.Value { return &v }

func TestTickerCoalescesATicksMovesToTheLatestValue(t *testing.T) {
	a := access(t, map[string]string{"x": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x", "mine"))
	tk := NewTicker(a, NewState("w"), nil)
	require.False(t, tk.Pending())
	require.Nil(t, tk.Delta(View{}))
	for _, v := range []string{"1", "2", "3"} {
		require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.String(v)), set("ann", "mine", fsm.String("m"+v)))))
	}
	require.True(t, tk.Pending())
	d := tk.Delta(resolve(t, a, Viewer{}))
	require.Equal(t, &wire.WatchDelta{Type: wire.TypeWatchDelta, World: "w", From: 1, Seq: 3, Time: g.time,
		Entities: map[string]wire.WatchEntity{"ann": {Version: 3, Fields: map[string]wire.WatchField{
			"x": {Value: ptr(fsm.String("3")), Version: 3},
		}}}}, d)
	tk.Reset()
	require.False(t, tk.Pending())

	// A tick that changed only hidden fields makes no delta.
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "mine", fsm.String("m4")))))
	require.Nil(t, tk.Delta(resolve(t, a, Viewer{})))
	caster := tk.Delta(View{sees: 1 << VisibleHidden})
	require.Equal(t, map[string]wire.WatchField{"mine": {Value: ptr(fsm.String("m4")), Version: 4}}, caster.Entities["ann"].Fields)
	tk.Reset()

	// Rejected and conflicting events touch nothing.
	require.NoError(t, tk.Apply(g.act("ann", expect(set("ann", "x", fsm.String("no")), 99))))
	require.True(t, tk.Pending())
	require.Nil(t, tk.Delta(resolve(t, a, Viewer{})))
}

func TestTickerSendsDeletesOnlyToViewsThatSawTheEntity(t *testing.T) {
	a := access(t, map[string]string{"x": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x", "mine"))
	tk := NewTicker(a, NewState("w"), nil)
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.String("1")), set("box", "mine", fsm.String("b")))))
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "mine", fsm.String("m")))))
	require.NoError(t, tk.Apply(g.act("ann", del("ann"), del("box"))))
	require.NoError(t, tk.Apply(g.act("ann", set("tmp", "x", fsm.String("t")))))
	require.NoError(t, tk.Apply(g.act("ann", del("tmp"))))
	d := tk.Delta(resolve(t, a, Viewer{}))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Deleted: true, Version: 1}}, d.Entities,
		"box was never visible, tmp came and went within the tick, ann's last visible version is 1, not the hidden 2")
}

func TestTickerReplacesAnEntityThatWasDeletedAndMadeAgain(t *testing.T) {
	a := access(t, map[string]string{"x": "", "y": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x", "y", "mine"))
	tk := NewTicker(a, NewState("w"), nil)
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.String("1")), set("ann", "y", fsm.String("1")))))
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", del("ann"), set("ann", "y", fsm.String("2")), set("ann", "mine", fsm.String("m")))))
	d := tk.Delta(resolve(t, a, Viewer{}))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Replace: true, Version: 2, Fields: map[string]wire.WatchField{
		"y": {Value: ptr(fsm.String("2")), Version: 2},
	}}}, d.Entities, "x is gone with the old entity")
}

func TestTickerReplacesAnEntityWhoseTeamChanged(t *testing.T) {
	a := access(t, map[string]string{"side": "", "plan": "team", "x": ""}, nil, fsm.TeamRule{From: "field", Key: "side"})
	g := newGame(t, "w", strFields("side", "plan", "x"))
	tk := NewTicker(a, NewState("w"), nil)
	red, blue := resolve(t, a, Viewer{Team: "red"}), resolve(t, a, Viewer{Team: "blue"})
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("red")), set("ann", "plan", fsm.String("rush")),
		set("ann", "x", fsm.String("0")))))
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("blue")))))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Replace: true, Version: 2, Fields: map[string]wire.WatchField{
		"side": {Value: ptr(fsm.String("blue")), Version: 2},
		"x":    {Value: ptr(fsm.String("0")), Version: 1},
	}}}, tk.Delta(red).Entities, "red no longer sees the plan")
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Replace: true, Version: 2, Fields: map[string]wire.WatchField{
		"side": {Value: ptr(fsm.String("blue")), Version: 2},
		"plan": {Value: ptr(fsm.String("rush")), Version: 1},
		"x":    {Value: ptr(fsm.String("0")), Version: 1},
	}}}, tk.Delta(blue).Entities, "blue now sees the plan it never got")
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Replace: true, Version: 2, Fields: map[string]wire.WatchField{
		"side": {Value: ptr(fsm.String("blue")), Version: 2},
		"x":    {Value: ptr(fsm.String("0")), Version: 1},
	}}}, tk.Delta(resolve(t, a, Viewer{Team: "green"})).Entities, "a team change resends the whole picture")
}

func TestTickerReplaceTellsAViewThatLostSightOfAnEntity(t *testing.T) {
	a := access(t, map[string]string{"side": "hidden", "plan": "team"}, nil, fsm.TeamRule{From: "field", Key: "side"})
	g := newGame(t, "w", strFields("side", "plan"))
	tk := NewTicker(a, NewState("w"), nil)
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("red")), set("ann", "plan", fsm.String("rush")))))
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("blue")))))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Replace: true, Fields: map[string]wire.WatchField{}}},
		tk.Delta(resolve(t, a, Viewer{Team: "red"})).Entities)
}

func TestTickerRefusesEventsOutOfOrder(t *testing.T) {
	tk := NewTicker(access(t, nil, nil, fsm.TeamRule{}), NewState("w"), nil)
	require.ErrorIs(t, tk.Apply(&fsm.Event{World: "w", Seq: 5}), ErrGap)
	require.False(t, tk.Pending())
}

func TestKeyframeShowsOnlyEntitiesWithAFieldTheViewMaySee(t *testing.T) {
	a := access(t, map[string]string{"x": "", "mine": "hidden", "tags": ""}, nil, fsm.TeamRule{})
	s := SeedState("w", 7, 70, []fsm.EntityView{
		{ID: "ann", Fields: []fsm.FieldView{{Name: "x", Value: fsm.Int(1), Version: 3}, {Name: "mine", Value: fsm.Int(2), Version: 7}}},
		{ID: "box", Fields: []fsm.FieldView{{Name: "mine", Value: fsm.Int(3), Version: 5}}},
		{ID: "bag", Fields: []fsm.FieldView{{Name: "tags", Policy: fsm.PolicySet, Set: []fsm.Value{fsm.String("a")}, Version: 4}}},
	})
	require.Equal(t, &wire.Keyframe{Type: wire.TypeKeyframe, World: "w", Seq: 7, Time: 70, Entities: map[string]wire.WatchEntity{
		"ann": {Version: 3, Fields: map[string]wire.WatchField{"x": {Value: ptr(fsm.Int(1)), Version: 3}}},
		"bag": {Version: 4, Fields: map[string]wire.WatchField{"tags": {IsSet: true, Set: []fsm.Value{fsm.String("a")}, Version: 4}}},
	}}, Keyframe(a, s, nil, resolve(t, a, Viewer{})))
}

func TestTickerReplacesWhatAPlayerOwnsWhenItsTeamChanges(t *testing.T) {
	a := access(t, map[string]string{"side": "", "owner": "", "plan": "team"}, nil, fsm.TeamRule{From: "field", Key: "side"})
	g := newGame(t, "w", strFields("side", "owner", "plan"))
	tk := NewTicker(a, NewState("w"), nil)
	blue := resolve(t, a, Viewer{Team: "blue"})
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("red")),
		set("map", "owner", fsm.String("ann")), set("map", "plan", fsm.String("rush")))))
	require.NotContains(t, Keyframe(a, tk.State(), nil, blue).Entities["map"].Fields, "plan", "ann's map is red's")
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "side", fsm.String("blue")))))
	d := tk.Delta(blue)
	require.Contains(t, d.Entities["map"].Fields, "plan", "the map follows its owner to blue")
	require.True(t, d.Entities["map"].Replace, "its sight changed: the whole picture")
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", del("ann"))))
	d = tk.Delta(blue)
	require.True(t, d.Entities["map"].Replace, "its owner gone, it has no team")
	require.NotContains(t, d.Entities["map"].Fields, "plan")
}

// An entity's state leads to its touch in the tick: never to a touch of a
// past tick used again for another entity, nor to another ticker's.
func TestTickerTouchesAreTheTicksOwn(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	s := NewState("w")
	tk := NewTicker(a, s, nil)
	require.NoError(t, tk.Apply(g.act("ann", set("bob", "x", fsm.String("0")), set("ann", "x", fsm.String("0")))))
	tk.Reset()
	require.NoError(t, tk.Apply(g.act("ann", set("bob", "x", fsm.String("1")), set("ann", "x", fsm.String("1")))))
	tk.Reset()
	// bob takes the touch ann had (the last freed), then ann is touched.
	require.NoError(t, tk.Apply(g.act("bob", set("bob", "x", fsm.String("2")))))
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.String("2")))))
	var ids []string
	for id := range tk.touchedIDs {
		ids = append(ids, id)
	}
	require.Equal(t, []string{"bob", "ann"}, ids, "in the order touched")
	for id := range tk.touchedIDs {
		require.Equal(t, "bob", id)
		break
	}
	d := tk.Delta(View{})
	require.Len(t, d.Entities, 2)
	require.Equal(t, ptr(fsm.String("2")), d.Entities["ann"].Fields["x"].Value)
	require.Equal(t, ptr(fsm.String("2")), d.Entities["bob"].Fields["x"].Value)

	other := NewTicker(a, s, nil) // another ticker of the same state
	require.NoError(t, other.Apply(g.act("ann", set("ann", "x", fsm.String("3")))))
	od := other.Delta(View{})
	require.NotNil(t, od, "ann's touch is tk's, not other's")
	require.Equal(t, uint64(5), od.From)
	require.Equal(t, ptr(fsm.String("3")), od.Entities["ann"].Fields["x"].Value)
}
