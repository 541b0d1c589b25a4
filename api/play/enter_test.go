package play

import (
	"context"
	"sort"
	"testing"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// gridWorld is world "g" on a real store whose rules (as the play service
// reads them) are rules plus a grid of cell 10, radius 1, on x and y.
type gridWorld struct {
	t   *testing.T
	st  *store.Store
	env *testEnv
	seq uint64
}

func newGridWorld(t *testing.T, rules fsm.Rules) *gridWorld {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "g", fsm.Rules{}))
	rules.Schema.Interest = fsm.InterestRule{Cell: 10, X: "x", Y: "y", Radius: 1}
	rs := apitest.NewRuledStore(st, rules)
	return &gridWorld{t: t, st: st, env: newEnvFor(t, rs, fastPlay)}
}

// set sets fields of entity (name, value pairs) in one critical action.
func (g *gridWorld) set(entity string, kv ...any) uint64 {
	g.t.Helper()
	g.seq++
	a := &fsm.Action{World: "g", Player: "gm", Seq: g.seq}
	for i := 0; i < len(kv); i += 2 {
		var v fsm.Value
		switch x := kv[i+1].(type) {
		case int:
			v = fsm.Int(int64(x))
		case string:
			v = fsm.String(x)
		}
		a.Ops = append(a.Ops, fsm.Op{Kind: fsm.OpSet, Entity: entity, Field: kv[i].(string), Value: v})
	}
	ev, _, err := g.st.Act(context.Background(), a)
	require.NoError(g.t, err)
	return ev.Seq
}

func (g *gridWorld) join(player string) *websocket.Conn {
	c := dialPlay(g.t, g.env.WSURL("g"))
	welcome(g.t, c, player)
	return c
}

// nextEnter reads up to the next enter message and returns its entities'
// fields, and the seqs of the events frames read before it.
func nextEnter(t *testing.T, c *websocket.Conn) (map[string]map[string]any, []uint64) {
	t.Helper()
	var seqs []uint64
	for {
		m := wsRecv(t, c)
		switch m["type"] {
		case "events":
			seqs = append(seqs, eventSeqs(m)...)
		case "enter":
			require.Equal(t, "g", m["world"])
			require.Positive(t, m["seq"])
			return fields(t, m), seqs
		}
	}
}

func ids(m map[string]map[string]any) []string {
	var out []string
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// A player who joins gets its area whole (and the entities without a
// position), nothing farther; an entity that walks in from outside comes
// whole, with the fields set while it was away; a player who walks into
// new cells gets what is there, and nothing it had already.
func TestEnterSnapshotsSendWhatComesIntoThePlayersArea(t *testing.T) {
	g := newGridWorld(t, fsm.Rules{})
	g.set("ann", "x", 5, "y", 5)
	g.set("near", "x", 15, "y", 5, "hp", 9)
	g.set("far", "x", 95, "y", 95, "hp", 7)
	g.set("board", "score", 3) // no position: global
	c := g.join("ann")
	got, _ := nextEnter(t, c)
	require.Equal(t, []string{"ann", "board", "near"}, ids(got))
	require.Equal(t, float64(9), got["near"]["hp"])

	// far's hp changes out of sight, then far walks in: it comes whole.
	// (The walk waits until the hp change was fanned out: one batch of
	// both would judge the change by where far is at the batch's end.)
	hp := g.set("far", "hp", 6)
	require.NotContains(t, readUpTo(t, c, hp), `"hp"`, "the out-of-sight hp change is not sent")
	walk := g.set("far", "x", 19, "y", 5)
	got, seqs := nextEnter(t, c)
	require.Equal(t, map[string]map[string]any{"far": {"x": float64(19), "y": float64(5), "hp": float64(6)}}, got)
	require.Equal(t, []uint64{walk}, seqs, "the walk itself came as an event first")

	// A step within the area is no entry.
	g.set("far", "x", 18)
	// ann walks east: cells x=3 come into view (rock), x=0 leaves.
	g.set("rock", "x", 35, "y", 5, "kind", "granite")
	g.set("ann", "x", 25)
	got, _ = nextEnter(t, c)
	require.Equal(t, map[string]map[string]any{"rock": {"x": float64(35), "y": float64(5), "kind": "granite"}}, got)
}

// Enter snapshots are cut to the player's view like everything else.
func TestEnterSnapshotsAreCutToThePlayersView(t *testing.T) {
	g := newGridWorld(t, fogRules)
	g.set("ann", "x", 5, "y", 5, "team", "red")
	g.set("cat", "x", 6, "y", 5, "team", "blue")
	g.set("chest", "x", 7, "y", 5, "owner", "ann", "gold", "ann-gold", "trap", "the-trap")
	for p, want := range map[string]map[string]any{
		"ann": {"x": float64(7), "y": float64(5), "owner": "ann", "gold": "ann-gold"},
		"cat": {"x": float64(7), "y": float64(5), "owner": "ann"},
	} {
		got, _ := nextEnter(t, g.join(p))
		require.Equal(t, want, got["chest"], p)
	}
}

// A resumed connection gets its area whole again once it has caught up.
func TestEnterSnapshotAfterAResume(t *testing.T) {
	g := newGridWorld(t, fsm.Rules{})
	g.set("ann", "x", 5, "y", 5)
	c := dialPlay(t, g.env.WSURL("g"))
	w := welcome(t, c, "ann")
	got, _ := nextEnter(t, c)
	require.Equal(t, []string{"ann"}, ids(got))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

	g.set("gem", "x", 6, "y", 6, "value", 100)
	c2 := dialPlay(t, g.env.WSURL("g"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"], "last_seq": w["seq"]})
	require.Equal(t, "welcome", wsRecv(t, c2)["type"])
	got, _ = nextEnter(t, c2)
	require.Equal(t, []string{"ann", "gem"}, ids(got))
	require.Equal(t, float64(100), got["gem"]["value"])
}

// The cell index follows the events: a deleted entity leaves its cell, one
// that gets its first position moves out of the global ones, one made by
// an event is indexed, and a repeated world seed keeps what it knew.
func TestInterestIndexKeepsCellsAndMovers(t *testing.T) {
	state := fakeEntities{"rock": {"x": fsm.Int(5), "y": fsm.Int(5)}, "flag": {"team": fsm.String("red")}}
	ix := newInterestIndex(InterestConfig{Cell: 10, X: "x", Y: "y", Radius: 1}, state.lookup)
	ix.seedAll([]fsm.EntityView{{ID: "rock", Fields: []fsm.FieldView{{Name: "x", Value: fsm.Int(5)}, {Name: "y", Value: fsm.Int(5)}}}, {ID: "flag"}})
	ix.seedAll([]fsm.EntityView{{ID: "rock", Fields: []fsm.FieldView{{Name: "x", Value: fsm.Int(99)}}}})
	require.Equal(t, []string{"flag", "rock"}, sorted(enterIDs(ix, enterState{}, cellKey{0, 0}, true)))
	ev := func(changes ...fsm.Change) []*fsm.Event {
		return []*fsm.Event{{Status: fsm.StatusApplied, Changes: changes}, {Status: fsm.StatusRejected}}
	}
	// flag gets a position far away; rock is deleted; gem appears nearby.
	ix.update(ev(fsm.Change{Entity: "flag", Field: "x", Value: fsm.Int(95)}, fsm.Change{Entity: "flag", Field: "y", Value: fsm.Int(95)},
		fsm.Change{Entity: "rock"}, fsm.Change{Entity: "gem", Field: "x", Value: fsm.Int(1)}, fsm.Change{Entity: "gem", Field: "y", Value: fsm.Int(1)}))
	require.Equal(t, []string{"gem"}, sorted(enterIDs(ix, enterState{}, cellKey{0, 0}, true)), "flag is far, rock gone")
	require.Equal(t, []string{"flag"}, sorted(enterIDs(ix, enterState{}, cellKey{9, 9}, true)))
	// gem is new: its own event, which the player gets, shows it whole.
	require.Empty(t, enterIDs(ix, enterState{known: true, ok: true}, cellKey{0, 0}, true))
	// flag walks in from afar: it enters a kept area.
	ix.update(ev(fsm.Change{Entity: "flag", Field: "x", Value: fsm.Int(15)}, fsm.Change{Entity: "flag", Field: "y", Value: fsm.Int(5)}))
	require.Equal(t, []string{"flag"}, sorted(enterIDs(ix, enterState{known: true, ok: true}, cellKey{0, 0}, true)))
	// A player without a position has no area: only the global ones.
	require.Empty(t, enterIDs(ix, enterState{known: true}, cellKey{}, false))
	// Nothing moved in the last update: nothing enters a kept area.
	ix.update(ev(fsm.Change{Entity: "gem", Field: "hp", Value: fsm.Int(1)}))
	require.Empty(t, enterIDs(ix, enterState{known: true, ok: true}, cellKey{0, 0}, true))
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

// enterIDs is ix.entering's ids for a player without a team.
func enterIDs(ix *interestIndex, st enterState, now cellKey, ok bool) []string {
	ids, _ := ix.entering(st, now, ok, "")
	return ids
}
