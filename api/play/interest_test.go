package play

import (
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The hub's plan gives each member exactly the events wants gives it, in
// order: for random worlds (positions, teams, entities without either),
// random batches and every player, with a grid, teams, both, radius 0–2,
// in a new plan or one reused from an earlier batch.
func TestInterestPlanSelectsWhatWantsWants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := InterestConfig{X: "x", Y: "y", Radius: rapid.IntRange(0, 2).Draw(t, "radius")}
		if rapid.Bool().Draw(t, "grid") {
			cfg.Cell = 100
		}
		if rapid.Bool().Draw(t, "teams") || cfg.Cell == 0 {
			cfg.Team = "team"
		}
		names := []string{"p0", "p1", "p2", "p3", "e0", "e1", "e2"}
		state := fakeEntities{}
		for _, n := range names {
			f := map[string]fsm.Value{}
			if rapid.IntRange(0, 3).Draw(t, n+"pos") > 0 {
				f["x"] = fsm.Int(rapid.Int64Range(-300, 300).Draw(t, n+"x"))
				f["y"] = fsm.Int(rapid.Int64Range(-300, 300).Draw(t, n+"y"))
			}
			if team := rapid.SampledFrom([]string{"", "red", "blue"}).Draw(t, n+"team"); team != "" {
				f["team"] = fsm.String(team)
			}
			if rapid.IntRange(0, 5).Draw(t, n+"exists") > 0 {
				state[n] = f
			}
		}
		ix := newInterestIndex(cfg, state.lookup)
		batch := func(label string) []*hubEvent {
			var hevs []*hubEvent
			for i := range rapid.IntRange(1, 12).Draw(t, label) {
				ents := rapid.SliceOfNDistinct(rapid.SampledFrom(names), 0, 3, rapid.ID[string]).Draw(t, fmt.Sprint(label, "ents", i))
				hevs = append(hevs, &hubEvent{ev: &fsm.Event{Seq: uint64(i + 1), Player: rapid.SampledFrom(names[:4]).Draw(t, fmt.Sprint(label, "player", i))}, entities: ents})
			}
			return hevs
		}
		hevs := batch("events")
		plan := ix.plan(hevs)
		if rapid.Bool().Draw(t, "reused") { // a hub's plan of an earlier batch, reused
			plan = ix.planInto(ix.plan(batch("earlier")), hevs)
		}
		var sel []*hubEvent
		var idx []int
		for _, player := range append(names[:4], "stranger") {
			var want []*hubEvent
			for _, he := range hevs {
				if ix.wants(player, he) {
					want = append(want, he)
				}
			}
			sel, idx = ix.selectFor(plan, player, hevs, sel, idx)
			require.Equal(t, seqsOf(want), seqsOf(sel), "player %s", player)
		}
	})
}

func seqsOf(hevs []*hubEvent) []uint64 {
	out := []uint64{}
	for _, he := range hevs {
		out = append(out, he.ev.Seq)
	}
	return out
}

// A reused plan map is cleared, unless it held a big batch's keys: then a
// new one replaces it (clearing costs as much as the room it keeps).
func TestReusedPlanMapIsClearedOrReplacedWhenBig(t *testing.T) {
	small := map[string][]int{"p1": {0}, "p2": {1}}
	got := reused(small)
	require.Empty(t, got)
	require.Empty(t, small, "the same map, cleared")
	big := map[cellKey][]int{}
	for i := range 300 {
		big[cellKey{int64(i), 0}] = []int{i}
	}
	require.Empty(t, reused(big))
	require.Len(t, big, 300, "a new map, the big one left alone")
}
