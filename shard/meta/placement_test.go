package meta

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func genShardLoads(t *rapid.T) []ShardLoad {
	ids := rapid.SliceOfNDistinct(rapid.Uint64Range(0, 50), 1, 12, rapid.ID[uint64]).Draw(t, "ids")
	out := make([]ShardLoad, len(ids))
	for i, id := range ids {
		out[i] = ShardLoad{ID: id,
			Worlds:  rapid.IntRange(0, 5).Draw(t, "worlds"),
			Players: rapid.Uint64Range(0, 3).Draw(t, "players"),
			Events:  rapid.Uint64Range(0, 3).Draw(t, "events")}
	}
	return out
}

// PlaceWorld picks a shard no other shard beats on (worlds, players,
// events, id), whatever the order of the shards.
func TestPlaceWorldPicksTheMostHeadroomInAnyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		shards := genShardLoads(t)
		id, ok := PlaceWorld(shards)
		if !ok {
			t.Fatal("no pick among shards")
		}
		i := slices.IndexFunc(shards, func(s ShardLoad) bool { return s.ID == id })
		if i < 0 {
			t.Fatalf("picked %d, not a shard", id)
		}
		best := shards[i]
		key := func(s ShardLoad) [4]uint64 {
			return [4]uint64{uint64(s.Worlds), s.Players, s.Events, s.ID}
		}
		for _, s := range shards {
			if a, b := key(s), key(best); slices.Compare(a[:], b[:]) < 0 {
				t.Fatalf("picked %+v, but %+v has more headroom", best, s)
			}
		}
		perm := rapid.Permutation(shards).Draw(t, "perm")
		if again, _ := PlaceWorld(perm); again != id {
			t.Fatalf("order changed the pick: %d then %d", id, again)
		}
	})
	_, ok := PlaceWorld(nil)
	require.False(t, ok)
}

func genNodes(t *rapid.T, regions int) []NodeSeats {
	n := rapid.IntRange(0, 9).Draw(t, "nodes")
	out := make([]NodeSeats, n)
	for i := range out {
		out[i] = NodeSeats{ID: fmt.Sprintf("n%d", i), Seats: rapid.IntRange(0, 4).Draw(t, "seats")}
		if regions > 0 {
			out[i].Region = fmt.Sprintf("r%d", rapid.IntRange(0, regions-1).Draw(t, "region"))
		}
	}
	return out
}

// A new shard's voters are distinct known nodes, as many as there can
// be, the same whatever the order of the nodes, and, with regions,
// spread over as many regions as there are voters where it can.
func TestSpreadVotersPicksDistinctNodesInAnyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nodes := genNodes(t, rapid.IntRange(0, 4).Draw(t, "regions"))
		replicas := rapid.IntRange(0, 7).Draw(t, "replicas")
		voters := SpreadVoters(nodes, replicas)
		if want := min(replicas, len(nodes)); len(voters) != want {
			t.Fatalf("%d voters, want %d", len(voters), want)
		}
		region := map[string]string{}
		for _, n := range nodes {
			region[n.ID] = n.Region
		}
		seen := map[string]bool{}
		regions := map[string]int{}
		for _, v := range voters {
			if _, ok := region[v]; !ok || seen[v] {
				t.Fatalf("voter %q unknown or twice in %v", v, voters)
			}
			seen[v] = true
			regions[region[v]]++
		}
		all := map[string]bool{}
		for _, n := range nodes {
			all[n.Region] = true
		}
		if want := min(len(voters), len(all)); len(regions) != want {
			t.Fatalf("voters %v in %d regions, want %d", voters, len(regions), want)
		}
		perm := rapid.Permutation(nodes).Draw(t, "perm")
		if again := SpreadVoters(perm, replicas); !slices.Equal(again, voters) {
			t.Fatalf("order changed the voters: %v then %v", voters, again)
		}
	})
}

// Shards created one after another on nodes without regions spread their
// seats evenly: the busiest node has at most one seat more than the
// idlest.
func TestSpreadVotersBalancesSeats(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 9).Draw(t, "nodes")
		replicas := rapid.IntRange(1, 5).Draw(t, "replicas")
		nodes := make([]NodeSeats, n)
		for i := range nodes {
			nodes[i].ID = fmt.Sprintf("n%d", i)
		}
		for range rapid.IntRange(1, 20).Draw(t, "shards") {
			for _, v := range SpreadVoters(nodes, replicas) {
				nodes[slices.IndexFunc(nodes, func(s NodeSeats) bool { return s.ID == v })].Seats++
			}
			lo := slices.MinFunc(nodes, func(a, b NodeSeats) int { return a.Seats - b.Seats }).Seats
			hi := slices.MaxFunc(nodes, func(a, b NodeSeats) int { return a.Seats - b.Seats }).Seats
			if hi-lo > 1 {
				t.Fatalf("seats %v", nodes)
			}
		}
	})
}

// With 5 and with 7 nodes, shards of 3 voters created through the meta
// group survive the loss of any one node: each loses at most one voter
// and keeps a quorum, and every node holds its share of the seats.
func TestShardsOnFiveAndSevenNodesSurviveAnyOneNode(t *testing.T) {
	for _, nodes := range []int{5, 7} {
		t.Run(fmt.Sprintf("%d nodes", nodes), func(t *testing.T) {
			f := withNodes(t, nodes)
			const shards, replicas = 10, 3
			for id := range uint64(shards) {
				mustApply(t, f, Command{Op: OpCreateShard, Shard: id + 1, Replicas: replicas})
			}
			m := f.View().Map
			seats := map[string]int{}
			for _, s := range m.Shards {
				require.Len(t, s.Voters, replicas)
				for _, v := range s.Voters {
					seats[v]++
				}
			}
			for lost := range m.Nodes {
				for _, s := range m.Shards {
					left := slices.DeleteFunc(slices.Clone(s.Voters), func(v string) bool { return v == lost })
					require.GreaterOrEqual(t, len(left), len(s.Voters)-1, "losing %s costs shard %d one voter at most", lost, s.ID)
					require.Greater(t, len(left), replicas/2, "shard %d keeps a quorum without %s", s.ID, lost)
				}
			}
			require.Len(t, seats, nodes, "every node holds seats")
			lo, hi := shards*replicas, 0
			for _, n := range seats {
				lo, hi = min(lo, n), max(hi, n)
			}
			require.LessOrEqual(t, hi-lo, 1, "seats %v", seats)
		})
	}
}

// With fewer nodes than replicas a shard gets every node as a voter:
// with 2 nodes, losing either loses the quorum (documented).
func TestFewerNodesThanReplicasGiveSmallerShards(t *testing.T) {
	f := withNodes(t, 2)
	res := mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	require.Equal(t, []string{"n1", "n2"}, res.Voters)
}

func TestReportedRatesAndWhatIsWorthAReport(t *testing.T) {
	t0 := time.Unix(100, 0)
	_, ok := mark{}.rate(10, t0)
	require.False(t, ok, "no mark yet")
	m := mark{events: 100, at: t0}
	r, ok := m.rate(300, t0.Add(2*time.Second))
	require.True(t, ok)
	require.Equal(t, uint64(100), r)
	_, ok = m.rate(50, t0.Add(time.Second))
	require.False(t, ok, "a world was deleted")
	_, ok = m.rate(200, t0)
	require.False(t, ok, "no time passed")

	require.True(t, changed(Load{Players: 1}, Load{Players: 2}))
	require.False(t, changed(Load{Events: 100}, Load{Events: 109}))
	require.True(t, changed(Load{Events: 100}, Load{Events: 111}))
	require.True(t, changed(Load{Events: 100}, Load{Events: 80}))
	require.False(t, changed(Load{Events: 0}, Load{Events: 1}))
	require.True(t, changed(Load{Events: 0}, Load{Events: 2}))
}
