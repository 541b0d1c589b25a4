package meta

import (
	"cmp"
	"context"
	"slices"

	"github.com/gsd-dev/gsd/shard/meta/plan"
)

// ShardLoad is what placement knows of a shard: its worlds (those the map
// lists on it) and the load its leader last reported. It is plan's Load,
// so gsdctl plans moves by the same measure without linking Raft.
type ShardLoad = plan.Load

// PlaceWorld returns the shard a new world goes to: the one with the most
// headroom, that is the fewest worlds, then the fewest players, then the
// fewest events per second, and among equals the lowest id (plan.Place).
// It is pure and ignores the order of shards, so every replica picks
// alike. ok is false without shards.
func PlaceWorld(shards []ShardLoad) (id uint64, ok bool) { return plan.Place(shards) }

// NodeSeats is a node as voter placement sees it: its region label and
// how many shards it is already a voter of.
type NodeSeats struct {
	ID     string
	Region string
	Seats  int
}

// SpreadVoters picks a new shard's voters: min(replicas, len(nodes))
// distinct nodes, so losing one node costs the shard at most one voter.
// It takes one node at a time: first a region with the fewest voters
// chosen so far (so with as many regions as voters, each voter is in its
// own region), then within it the node with the fewest seats, then the
// lowest id; seats spread evenly over the nodes as shards are created
// (without region labels, and with the same replicas for every shard,
// the busiest and the idlest node differ by at most one seat).
// It is pure and ignores the order of nodes.
//
// With fewer nodes than replicas the shard has fewer voters: with 2 nodes
// a 3-voter shard gets 2, and losing either node loses its quorum; with
// 3 or 4 nodes and 3 replicas one node's loss leaves every shard a
// quorum, as it does from 5 nodes on for 5 replicas. A shard that needs
// to survive a node's loss needs at least 3 voters, so at least 3 nodes.
func SpreadVoters(nodes []NodeSeats, replicas int) []string {
	n := min(max(replicas, 0), len(nodes))
	left := slices.Clone(nodes)
	inRegion := map[string]int{}
	out := make([]string, 0, n)
	for range n {
		i := 0
		for j := 1; j < len(left); j++ {
			a, b := left[j], left[i]
			if cmp.Or(cmp.Compare(inRegion[a.Region], inRegion[b.Region]), cmp.Compare(a.Seats, b.Seats), cmp.Compare(a.ID, b.ID)) < 0 {
				i = j
			}
		}
		out = append(out, left[i].ID)
		inRegion[left[i].Region]++
		left = slices.Delete(left, i, i+1)
	}
	slices.Sort(out)
	return out
}

// Publish is a shard.Publish for shard.Move: it lists world on shard in
// the meta map (assign_world), so every node routes the moved world to
// its new home.
func (g *Group) Publish(ctx context.Context, world string, shard uint64) error {
	_, err := g.Propose(ctx, Command{Op: OpAssignWorld, World: world, Shard: shard})
	return err
}
