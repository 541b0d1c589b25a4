package plan

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestRebalanceMovesFromTheBusiestToTheIdlest(t *testing.T) {
	shards := []Load{{ID: 1, Players: 40, Events: 8}, {ID: 2}, {ID: 3, Players: 5}}
	worlds := map[string]uint64{"a": 1, "b": 1, "c": 1, "d": 1, "e": 3}
	plan, err := Rebalance(shards, worlds, 0)
	require.NoError(t, err)
	// Shard 1 lists 4 worlds (10 players, 2 events/s each), shard 2 none:
	// a goes to 2 (1: 3 worlds, 2 and 3: 1); then 3 (5 players) has more
	// headroom than 2 (10): b goes to 3, and 1 and 3 list 2 worlds each.
	require.Equal(t, []Move{
		{World: "a", From: 1, To: 2, FromAfter: Load{ID: 1, Worlds: 3, Players: 30, Events: 6}, ToAfter: Load{ID: 2, Worlds: 1, Players: 10, Events: 2}},
		{World: "b", From: 1, To: 3, FromAfter: Load{ID: 1, Worlds: 2, Players: 20, Events: 4}, ToAfter: Load{ID: 3, Worlds: 2, Players: 15, Events: 2}},
	}, plan)
	one, err := Rebalance(shards, worlds, 1)
	require.NoError(t, err)
	require.Equal(t, plan[:1], one)
}

func TestRebalanceLeavesABalancedMapAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards []Load
		worlds map[string]uint64
	}{
		{"no shards", nil, map[string]uint64{"a": 1}},
		{"one shard", []Load{{ID: 1}}, map[string]uint64{"a": 1, "b": 1, "c": 1}},
		{"one world more", []Load{{ID: 1}, {ID: 2}}, map[string]uint64{"a": 1, "b": 1, "c": 2}},
		// Moving a's 30 players would leave 2 busier than 1.
		{"a move would overload the target", []Load{{ID: 1, Players: 60}, {ID: 2, Players: 31}},
			map[string]uint64{"a": 1, "b": 1, "c": 2}},
		{"worlds on unknown shards", []Load{{ID: 1}, {ID: 2}}, map[string]uint64{"a": 9, "b": 9, "c": 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Rebalance(tc.shards, tc.worlds, 0)
			require.NoError(t, err)
			require.Empty(t, plan)
		})
	}
}

func TestRebalanceRefusesBadInput(t *testing.T) {
	_, err := Rebalance([]Load{{ID: 1}}, nil, -1)
	require.ErrorIs(t, err, ErrPlan)
	_, err = Rebalance([]Load{{ID: 1}, {ID: 1}}, nil, 0)
	require.ErrorIs(t, err, ErrPlan)
	_, err = Drain([]Load{{ID: 1}, {ID: 1}}, nil, 1)
	require.ErrorIs(t, err, ErrPlan)
}

func TestDrainSendsEachWorldWherePlaceWould(t *testing.T) {
	shards := []Load{{ID: 1, Players: 9}, {ID: 2, Players: 3}, {ID: 3}}
	worlds := map[string]uint64{"a": 1, "b": 1, "c": 1, "d": 2, "e": 3}
	plan, err := Drain(shards, worlds, 1)
	require.NoError(t, err)
	// 2 and 3 list one world each; 3 has fewer players: a to 3 (3 players
	// come with it), then 2 (1 world, 3 players) and 3 (2 worlds): b to 2,
	// then both have 2 worlds, 2 has 6 players, 3 has 3: c to 3.
	require.Equal(t, []string{"a→3", "b→2", "c→3"}, steps(plan))
	require.Equal(t, Load{ID: 1}, plan[2].FromAfter)

	_, err = Drain(shards, worlds, 4)
	require.ErrorIs(t, err, ErrPlan)
	_, err = Drain([]Load{{ID: 1}}, worlds, 1)
	require.ErrorIs(t, err, ErrPlan)
	none, err := Drain(shards, map[string]uint64{"x": 2}, 1)
	require.NoError(t, err)
	require.Empty(t, none)
}

func steps(plan []Move) []string {
	out := make([]string, len(plan))
	for i, m := range plan {
		out[i] = fmt.Sprintf("%s→%d", m.World, m.To)
	}
	return out
}

func genMap(t *rapid.T) ([]Load, map[string]uint64) {
	ids := rapid.SliceOfNDistinct(rapid.Uint64Range(1, 20), 1, 6, rapid.ID[uint64]).Draw(t, "ids")
	shards := make([]Load, len(ids))
	for i, id := range ids {
		shards[i] = Load{ID: id, Worlds: rapid.IntRange(0, 9).Draw(t, "stale worlds"),
			Players: rapid.Uint64Range(0, 50).Draw(t, "players"), Events: rapid.Uint64Range(0, 50).Draw(t, "events")}
	}
	worlds := map[string]uint64{}
	for i := range rapid.IntRange(0, 30).Draw(t, "worlds") {
		// Now and then a world on a shard the map does not have.
		worlds[fmt.Sprintf("w%02d", i)] = rapid.Uint64Range(1, 21).Draw(t, "shard")
	}
	return shards, worlds
}

// replay checks each step starts where the world is and applies it.
func replay(t *rapid.T, worlds map[string]uint64, plan []Move) map[string]uint64 {
	w := maps.Clone(worlds)
	for _, m := range plan {
		if w[m.World] != m.From || m.From == m.To {
			t.Fatalf("step %+v: the world is on %d", m, w[m.World])
		}
		w[m.World] = m.To
	}
	return w
}

func count(shards []Load, worlds map[string]uint64) map[uint64]int {
	n := map[uint64]int{}
	for _, s := range shards {
		n[s.ID] = 0
	}
	for _, g := range worlds {
		if _, ok := n[g]; ok {
			n[g]++
		}
	}
	return n
}

// A rebalance never moves a world onto a shard with less headroom than
// its source has after the move, its steps add up to the map they
// claim, it ends with world counts within 2 of each other (within 1
// when no shard reports load), respects the move limit, and is the same
// plan whatever the order of shards.
func TestRebalanceProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shards, worlds := genMap(t)
		plan, err := Rebalance(shards, worlds, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Each step lowers the sum of squared world counts by 2 or more.
		squares := 0
		for _, c := range count(shards, worlds) {
			squares += c * c
		}
		if len(plan) > squares/2 {
			t.Fatalf("%d steps from a sum of squares of %d", len(plan), squares)
		}
		for _, m := range plan {
			if Compare(m.ToAfter, m.FromAfter) > 0 {
				t.Fatalf("step %+v leaves the target busier than the source", m)
			}
		}
		w := maps.Clone(worlds)
		for _, m := range plan {
			w = replay(t, w, []Move{m})
			n := count(shards, w)
			if m.FromAfter.ID != m.From || m.ToAfter.ID != m.To || n[m.From] != m.FromAfter.Worlds || n[m.To] != m.ToAfter.Worlds {
				t.Fatalf("step %+v does not match the map's counts %v", m, n)
			}
		}
		n := count(shards, w)
		counts := slices.Collect(maps.Values(n))
		spread, idle := slices.Max(counts)-slices.Min(counts), true
		for _, s := range shards {
			idle = idle && s.Players == 0 && s.Events == 0
		}
		if spread > 2 || idle && spread > 1 {
			t.Fatalf("ends with counts %v", n)
		}
		if again, _ := Rebalance(rapid.Permutation(shards).Draw(t, "perm"), maps.Clone(worlds), 0); !slices.Equal(again, plan) {
			t.Fatalf("order of shards changed the plan:\n%v\n%v", plan, again)
		}
		limit := rapid.IntRange(1, 5).Draw(t, "limit")
		if cut, _ := Rebalance(shards, worlds, limit); !slices.Equal(cut, plan[:min(limit, len(plan))]) {
			t.Fatalf("limit %d: %v, not a prefix of %v", limit, cut, plan)
		}
	})
}

// A drain moves every world the map lists on the shard, each to where
// Place puts a new world given the steps before, none back onto it.
func TestDrainProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shards, worlds := genMap(t)
		id := rapid.SampledFrom(shards).Draw(t, "drained").ID
		plan, err := Drain(shards, worlds, id)
		if len(shards) == 1 {
			if err == nil {
				t.Fatal("drained the last shard")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		after := replay(t, worlds, plan)
		if n := count(shards, after)[id]; n != 0 {
			t.Fatalf("%d worlds left on %d", n, id)
		}
		b, _ := newBoard(shards, worlds)
		for _, m := range plan {
			if want, _ := Place(b.sorted(id, true)); m.To != want {
				t.Fatalf("step %+v, Place says %d", m, want)
			}
			b.move(m.World, m.From, m.To)
		}
	})
}
