package plan

import (
	"hash/fnv"
	"slices"
)

// Hashed returns the shard a world the map does not list lives on: the
// FNV-1a hash of its name modulo the number of shards, the shards in id
// order (shard.Map.ShardOf's rule, which a test in shard checks this
// against). ok is false without shards.
func Hashed(world string, ids []uint64) (id uint64, ok bool) {
	if len(ids) == 0 {
		return 0, false
	}
	sorted := slices.Sorted(slices.Values(ids))
	h := fnv.New64a()
	h.Write([]byte(world))
	return sorted[h.Sum64()%uint64(len(sorted))], true
}
