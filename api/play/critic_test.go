package play

import (
	"slices"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The hub queues a batch's leave before its enter (enterAs), so an entity
// named by both ends up held by the client. One batch can hold several
// events of one entity: an entity that comes into the area and goes out
// again within a batch (or joins the player's team and leaves it again
// far away) is out of the player's interest at the batch's end, so it
// must not be entered (it would be held, whole, and never updated again).
func TestInterestIndexEntersNothingThatLeftAgainInTheBatch(t *testing.T) {
	ix := newInterestIndex(InterestConfig{Cell: 10, X: "x", Y: "y", Radius: 1, Team: "team"}, fakeEntities{}.lookup)
	cs := append(pos("ann", 5, 5), fsm.Change{Entity: "ann", Field: "team", Value: fsm.String("red")})
	cs = append(cs, pos("cat", 95, 5)...)
	cs = append(cs, append(pos("dog", 95, 95), fsm.Change{Entity: "dog", Field: "team", Value: fsm.String("blue")})...)
	ix.update(changes(cs...))
	st := enterState{known: true, cell: cellKey{0, 0}, ok: true, team: "red"}

	// cat walks in and out again; dog joins red and leaves it again, far.
	ix.update([]*fsm.Event{
		{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "cat", Field: "x", Value: fsm.Int(15)}}},
		{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "dog", Field: "team", Value: fsm.String("red")}}},
		{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "cat", Field: "x", Value: fsm.Int(95)}}},
		{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "dog", Field: "team", Value: fsm.String("blue")}}},
	})
	ids, whole := ix.entering(st, cellKey{0, 0}, true, "red")
	require.False(t, whole)
	require.Empty(t, ids, "cat is far and dog is blue at the batch's end")
}

// A leave names only entities the player's view may see: with positions
// visible to the team only, an enemy's id in a leave tells the player
// that it stood in the cells its area just lost (the enter never named
// it: its snapshot is cut to nothing).
func TestLeaveNamesNoEntityThePlayerMayNotSee(t *testing.T) {
	rules := fsm.Rules{Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{"x": {Visible: "team"}, "y": {Visible: "team"}, "team": {Visible: "team"}},
		Teams:  fsm.TeamRule{From: "field", Key: "team"},
	}}
	g := newGridWorld(t, rules)
	g.set("ann", "x", 5, "y", 5, "team", "red")
	g.set("spy", "x", -5, "y", 5, "team", "blue")
	g.set("rock", "x", -5, "y", 6, "kind", "stone")
	c := g.join("ann")
	m := nextMsg(t, c, "enter")
	require.Equal(t, []string{"ann", "rock"}, ids(fields(t, m)), "the spy is not seen")

	g.set("ann", "x", 25)
	left, _ := nextLeave(t, c)
	require.Equal(t, []string{"rock"}, left, "the spy was never seen: naming it tells where it was")
}

// A team mate far away that leaves the player's team is named in a leave
// even when the player may see nothing of it any more: the player held
// it (its team's fields), and the team change itself does not reach the
// player (far, of another team), so without the leave the client keeps
// a stale team mate.
func TestLeaveNamesAFarTeamMateThatLeftTheTeamUnderFog(t *testing.T) {
	rules := fsm.Rules{Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{"x": {Visible: "team"}, "y": {Visible: "team"}, "team": {Visible: "team"}},
		Teams:  fsm.TeamRule{From: "field", Key: "team"},
	}}
	g := newGridWorld(t, rules)
	g.set("ann", "x", 5, "y", 5, "team", "red")
	g.set("bob", "x", 95, "y", 95, "team", "red")
	g.set("rock", "x", -5, "y", 6, "kind", "stone")
	c := g.join("ann")
	m := nextMsg(t, c, "enter")
	require.Equal(t, []string{"ann", "bob", "rock"}, ids(fields(t, m)))

	g.set("bob", "team", "blue")
	g.set("ann", "x", 25) // rock's cell leaves the area: a leave to wait for
	var left []string
	for !slices.Contains(left, "rock") {
		l, _ := nextLeave(t, c)
		left = append(left, l...)
	}
	require.Contains(t, left, "bob")
}
