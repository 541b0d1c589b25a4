package play

import (
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// secondConn attaches another connection of player p to h, as cellsHubOver
// attaches the first.
func secondConn(t require.TestingT, h *hub, p string) *playConn {
	c := &playConn{s: h.s, world: "w", player: p, ob: newOutbox(1<<20, codecJSON), detached: make(chan struct{}, 1)}
	c.ob.start(0)
	h.mu.Lock()
	h.members[c] = memberDetached
	h.mu.Unlock()
	ok, err := h.attach(c)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = c.ob.take()
	require.NoError(t, err)
	return c
}

// fanCells looks only at the members a batch touches (cells.go): members
// whose players move themselves across cells (touched as actor and entity
// at once), players with two connections, players without a position and
// entities moving in and out of areas far from most groups still get what
// their own offers would give them.
func TestCellStreamsLookingOnlyAtTouchedMembersMissNothing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		players := []string{"p0", "p1", "p2", "p3"}
		names := append(append([]string{}, players...), "e0", "e1")
		coord := rapid.Int64Range(0, 29) // 3×3 cells, radius 0
		state := verEntities{}
		for _, n := range names {
			if n == "p3" && rapid.Bool().Draw(t, "p3nowhere") {
				state.set(n, "hp", fsm.Int(10), 0) // no position: global
				continue
			}
			state.set(n, "x", fsm.Int(coord.Draw(t, n+"x")), 0)
			state.set(n, "y", fsm.Int(coord.Draw(t, n+"y")), 0)
		}
		shared, sc := cellsHubOver(t, state.lookup, names, 0, players...)
		own, oc := cellsHubOver(t, state.lookup, names, 0, players...)
		own.ownOffers = true
		type pair struct{ s, o *playConn }
		pairs := []pair{{secondConn(t, shared, "p0"), secondConn(t, own, "p0")}}
		for _, p := range players {
			pairs = append(pairs, pair{sc[p], oc[p]})
		}
		clients := map[*playConn]*cellClient{}
		for _, pr := range pairs {
			clients[pr.s] = &cellClient{fields: map[string]map[string]verValue{}}
			clients[pr.o] = &cellClient{fields: map[string]map[string]verValue{}}
		}
		take := func(pr pair) {
			clients[pr.s].read(t, mustTakeT(t, pr.s.ob))
			clients[pr.o].read(t, mustTakeT(t, pr.o.ob))
		}
		var seq uint64
		for b := range rapid.IntRange(1, 20).Draw(t, "batches") {
			var evs []*fsm.Event
			for i := range rapid.IntRange(1, 3).Draw(t, fmt.Sprint("events", b)) {
				seq++
				by := rapid.SampledFrom(players).Draw(t, fmt.Sprint("by", b, i))
				ent := by // mostly a player's own move
				if rapid.IntRange(0, 2).Draw(t, fmt.Sprint("other", b, i)) == 0 {
					ent = rapid.SampledFrom(names).Draw(t, fmt.Sprint("ent", b, i))
				}
				ev := &fsm.Event{Seq: seq, World: "w", Player: by, Status: fsm.StatusApplied, Priority: fsm.PriorityBulk}
				if rapid.IntRange(0, 3).Draw(t, fmt.Sprint("crit", b, i)) == 0 {
					ev.Priority = fsm.PriorityCritical
				}
				x, y := coord.Draw(t, fmt.Sprint("x", b, i)), coord.Draw(t, fmt.Sprint("y", b, i))
				ev.Changes = []fsm.Change{{Entity: ent, Field: "x", Op: fsm.OpSet, Value: fsm.Int(x), Version: seq},
					{Entity: ent, Field: "y", Op: fsm.OpSet, Value: fsm.Int(y), Version: seq}}
				state.set(ent, "x", fsm.Int(x), seq)
				state.set(ent, "y", fsm.Int(y), seq)
				evs = append(evs, ev)
			}
			for _, h := range []*hub{shared, own} {
				hevs, err := h.s.prepare(evs, true)
				require.NoError(t, err)
				h.fanout(evs, hevs)
			}
			if rapid.Bool().Draw(t, fmt.Sprint("tick", b)) {
				for _, pr := range pairs {
					if lagging(pr.s.ob) {
						take(pr)
					}
				}
				shared.tick()
				own.tick()
			}
			for i, pr := range pairs {
				if rapid.Bool().Draw(t, fmt.Sprint("take", b, i)) {
					take(pr)
				}
			}
		}
		for range 2 {
			for range progressTicks {
				shared.tick()
				own.tick()
				for _, pr := range pairs {
					if lagging(pr.s.ob) {
						take(pr)
					}
				}
			}
			for _, pr := range pairs {
				take(pr)
			}
		}
		for i, pr := range pairs {
			got, want := clients[pr.s], clients[pr.o]
			require.Equal(t, want.events, got.events, "connection %d's critical events", i)
			require.Equal(t, want.areas, got.areas, "connection %d's enters and leaves", i)
			require.Equal(t, want.fields, got.fields, "connection %d's fields", i)
			require.Equal(t, seq, got.seq, "connection %d: all covered", i)
		}
	})
}

// groupsAround finds exactly the groups whose cell is within the radius,
// whether it walks the cells around (many groups) or the groups (few).
func TestGroupsAroundFindsTheGroupsWithinTheRadius(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := &hub{groupsAt: map[cellKey][]*cellGroup{}}
		var all []*cellGroup
		for i := range rapid.IntRange(0, 40).Draw(t, "groups") {
			k := cellKey{rapid.Int64Range(-6, 6).Draw(t, fmt.Sprint("x", i)), rapid.Int64Range(-6, 6).Draw(t, fmt.Sprint("y", i))}
			g := &cellGroup{key: groupKey{cell: k, ok: true, team: fmt.Sprint(i)}}
			h.groupsAt[k] = append(h.groupsAt[k], g)
			all = append(all, g)
		}
		at := cellKey{rapid.Int64Range(-8, 8).Draw(t, "at x"), rapid.Int64Range(-8, 8).Draw(t, "at y")}
		r := rapid.SampledFrom([]int64{0, 1, 2, 100}).Draw(t, "radius")
		got := map[*cellGroup]int{}
		h.groupsAround(at, r, func(g *cellGroup) { got[g]++ })
		want := map[*cellGroup]int{}
		for _, g := range all {
			if inArea(g.key.cell, at, r) {
				want[g] = 1
			}
		}
		require.Equal(t, want, got)
	})
}
