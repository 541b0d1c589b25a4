package shard

import (
	"slices"
	"testing"

	"github.com/gsd-dev/gsd/shard/meta/plan"
	"pgregory.net/rapid"
)

// plan.Hashed, which gsdctl uses to find where an unlisted world lives,
// is Map.ShardOf's rule for worlds the map does not list.
func TestPlanHashedIsShardOfForUnlistedWorlds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ids := rapid.SliceOfNDistinct(rapid.Uint64Range(0, 100), 1, 8, rapid.ID[uint64]).Draw(t, "ids")
		m := &Map{}
		for _, id := range ids {
			m.Shards = append(m.Shards, MapShard{ID: id})
		}
		slices.SortFunc(m.Shards, func(a, b MapShard) int { return cmpUint(a.ID, b.ID) })
		w := rapid.String().Draw(t, "world")
		if got, _ := plan.Hashed(w, ids); got != m.ShardOf(w) {
			t.Fatalf("%q: plan.Hashed %d, ShardOf %d", w, got, m.ShardOf(w))
		}
	})
}
