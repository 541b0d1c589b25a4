package plan

import (
	"cmp"
	"errors"
	"slices"
)

// ErrPlan: a plan cannot be made (an unknown shard, the last shard, bad
// limits).
var ErrPlan = errors.New("gsd/plan: no plan")

// Load is what placement knows of a shard: its worlds (those the map
// lists on it) and the load its leader last reported.
type Load struct {
	ID      uint64
	Worlds  int
	Players uint64
	Events  uint64 // events per second
}

// Compare orders shards by headroom: a shard with fewer worlds, then
// fewer players, then fewer events per second has more headroom and
// sorts first. The id is not compared (ties are broken by the caller).
func Compare(a, b Load) int {
	return cmp.Or(cmp.Compare(a.Worlds, b.Worlds), cmp.Compare(a.Players, b.Players), cmp.Compare(a.Events, b.Events))
}

// byHeadroom is Compare, then the lower id first: a total order.
func byHeadroom(a, b Load) int { return cmp.Or(Compare(a, b), cmp.Compare(a.ID, b.ID)) }

// Place returns the shard a new world goes to: the one with the most
// headroom (Compare), and among equals the lowest id. It ignores the
// order of shards. ok is false without shards.
func Place(shards []Load) (id uint64, ok bool) {
	if len(shards) == 0 {
		return 0, false
	}
	return slices.MinFunc(shards, byHeadroom).ID, true
}
