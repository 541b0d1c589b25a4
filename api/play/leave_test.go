package play

import (
	"testing"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// nextLeave reads up to the next leave message and returns the entities it
// names, and the types of the messages read before it.
func nextLeave(t *testing.T, c *websocket.Conn) ([]string, []string) {
	t.Helper()
	var before []string
	for {
		m := wsRecv(t, c)
		if m["type"] != "leave" {
			before = append(before, m["type"].(string))
			continue
		}
		require.Equal(t, "g", m["world"])
		require.Positive(t, m["seq"])
		var out []string
		for _, id := range m["ids"].([]any) {
			out = append(out, id.(string))
		}
		return out, before
	}
}

// changes is one applied event's changes, for the index.
func changes(cs ...fsm.Change) []*fsm.Event {
	return []*fsm.Event{{Status: fsm.StatusApplied, Changes: cs}}
}

func pos(id string, x, y int64) []fsm.Change {
	return []fsm.Change{{Entity: id, Field: "x", Value: fsm.Int(x)}, {Entity: id, Field: "y", Value: fsm.Int(y)}}
}

// The index names what leaves a player's interest: the entities of the
// cells its area lost, those that walked out of it, far ones that left its
// team; never its team's, the global ones, its own, or one that walked
// into a lost cell from outside (the player never had it).
func TestInterestIndexNamesWhatLeaves(t *testing.T) {
	ix := newInterestIndex(InterestConfig{Cell: 10, X: "x", Y: "y", Radius: 1, Team: "team"}, fakeEntities{}.lookup)
	var cs []fsm.Change
	for _, e := range []struct {
		id   string
		x, y int64
		team string
	}{{"ann", 5, 5, "red"}, {"west", -5, 5, ""}, {"mate", -5, 5, "red"}, {"east", 15, 5, ""}, {"roamer", 5, 15, ""}, {"far", 95, 95, ""}, {"ally", 95, 95, "red"}} {
		cs = append(cs, pos(e.id, e.x, e.y)...)
		if e.team != "" {
			cs = append(cs, fsm.Change{Entity: e.id, Field: "team", Value: fsm.String(e.team)})
		}
	}
	cs = append(cs, fsm.Change{Entity: "board", Field: "score", Value: fsm.Int(1)}) // global
	ix.update(changes(cs...))

	ids, whole := ix.entering(enterState{}, cellKey{0, 0}, true, "red")
	require.True(t, whole)
	require.Equal(t, []string{"ally", "ann", "board", "east", "mate", "roamer", "west"}, ids, "area, global and the far team mate")
	require.Empty(t, ix.leaving(enterState{}, cellKey{0, 0}, true, "ann", "red"), "nothing sent yet: nothing leaves")
	st := enterState{known: true, cell: cellKey{0, 0}, ok: true, team: "red"}

	// ann walks two cells east; far walks into cell x=-1 (lost, never had);
	// roamer walks away north.
	ix.update(changes(append(append(pos("ann", 25, 5), pos("far", -5, -5)...), pos("roamer", 5, 45)...)...))
	require.Equal(t, []string{"roamer", "west"}, ix.leaving(st, cellKey{2, 0}, true, "ann", "red"), "mate is a team mate; far was never had")
	ids, whole = ix.entering(st, cellKey{2, 0}, true, "red")
	require.False(t, whole)
	require.Equal(t, []string{"ann"}, ids, "the new cells hold only ann (hubs drop the player's own)")

	// A player who loses its position loses its whole area.
	require.Equal(t, []string{"east", "roamer", "west"}, ix.leaving(enterState{known: true, cell: cellKey{0, 0}, ok: true, team: "red"}, cellKey{}, false, "ann", "red"))

	// ally leaves the team far away: it leaves; east (near) joins it: no news;
	// far joins it far away: it enters.
	st = enterState{known: true, cell: cellKey{2, 0}, ok: true, team: "red"}
	ix.update(changes(fsm.Change{Entity: "ally", Field: "team", Value: fsm.String("blue")}, fsm.Change{Entity: "east", Field: "team", Value: fsm.String("red")},
		fsm.Change{Entity: "far", Field: "team", Value: fsm.String("red")}))
	require.Equal(t, []string{"ally"}, ix.leaving(st, cellKey{2, 0}, true, "ann", "red"))
	ids, _ = ix.entering(st, cellKey{2, 0}, true, "red")
	require.Equal(t, []string{"far"}, ids)

	// A new entity of the team far away shows itself in its own event.
	ix.update(changes(append(pos("newbie", 95, 95), fsm.Change{Entity: "newbie", Field: "team", Value: fsm.String("red")})...))
	ids, _ = ix.entering(st, cellKey{2, 0}, true, "red")
	require.Empty(t, ids)

	// The player changes team: a whole enter follows, so no leave.
	require.Empty(t, ix.leaving(st, cellKey{2, 0}, true, "ann", "blue"))
	ids, whole = ix.entering(st, cellKey{2, 0}, true, "blue")
	require.True(t, whole)
	require.Contains(t, ids, "ally")
	require.NotContains(t, ids, "mate")
}

// Over the play protocol: an entity that walks out of the area is named in
// a leave message after the events the player got, its bulk moves pending
// in the player's delta are dropped (they would bring it back), and it
// comes whole again when it walks back in.
func TestLeaveNamesWhatWalksOutAndDropsItsPendingMoves(t *testing.T) {
	g := newGridWorld(t, fsm.Rules{})
	g.set("ann", "x", 5, "y", 5)
	g.set("cat", "x", 15, "y", 5, "hp", 3)
	c := g.join("ann")
	got, _ := nextEnter(t, c)
	require.Equal(t, []string{"ann", "cat"}, ids(got))

	walk := g.set("cat", "x", 95)
	left, before := nextLeave(t, c)
	require.Equal(t, []string{"cat"}, left)
	require.NotContains(t, before, "enter")
	_ = walk

	g.set("cat", "x", 15, "hp", 2)
	got, _ = nextEnter(t, c)
	require.Equal(t, map[string]map[string]any{"cat": {"x": float64(15), "y": float64(5), "hp": float64(2)}}, got)
}

// A player's first enter is marked whole and carries its far team mates;
// a player who walks away gets a leave for what its area lost.
func TestWholeEnterCarriesFarTeamMatesAndWalkingAwayLeaves(t *testing.T) {
	rules := fsm.Rules{}
	rules.Schema.Teams = fsm.TeamRule{From: "field", Key: "team"}
	g := newGridWorld(t, rules)
	g.set("ann", "x", 5, "y", 5, "team", "red")
	g.set("bob", "x", 95, "y", 95, "team", "red")
	g.set("cat", "x", -5, "y", 5, "team", "blue")
	c := g.join("ann")
	m := nextMsg(t, c, "enter")
	require.Equal(t, true, m["whole"])
	require.Equal(t, []string{"ann", "bob", "cat"}, ids(fields(t, m)))

	g.set("ann", "x", 25)
	left, _ := nextLeave(t, c)
	require.Equal(t, []string{"cat"}, left, "bob is a team mate: never left")
}

// nextMsg reads up to the next message of type typ.
func nextMsg(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		if m := wsRecv(t, c); m["type"] == typ {
			return m
		}
	}
}
