package auditor

// A node under a shard map runs several groups, and a world moves
// between them with its incarnation and seqs: its tree goes on. The
// Source says where each world lives (Placement), and when its world
// list can be trusted (Settler).

// Placement is what a Source has whose worlds live on several groups of
// a shard map (cmd/gsd's source over shard.FeedSource). A world moves
// between groups with its incarnation, so its tree goes on across the
// move: the auditor only has to follow the feed of its new home.
//
// One auditor per node, not one per group: a tree belongs to a world
// incarnation, not to a group, and a node that runs both groups of a
// move must not keep two followers (two writers) of the same tree, nor
// bury the tree at the old home when the world leaves it.
type Placement interface {
	// Home names the group world's feed comes from on this node now: a
	// follower started on another group is stopped and started again
	// (Source.Subscribe crosses the move from the tree's size on).
	Home(world string) uint64
	// Away reports whether world's incarnation inc, which Worlds no
	// longer lists, still lives: moved (or moving) to a group this node
	// does not run, rather than deleted. Its tree is kept without a
	// tombstone, and no longer followed here.
	Away(world string, inc uint64) bool
}

// Settler is what a Source has that can tell when its world list is the
// node's: after a restart a group lists the worlds created since its
// last snapshot only once it applied its log again, and a shard map's
// groups are placed only once the map is known. Until then the auditor
// neither follows nor buries from the list (a world missing from it may
// only not be replayed yet); HTTP lookups of a world still follow it.
type Settler interface {
	Settled() bool
}

// home returns the group world's feed comes from (Placement), 0 for a
// source of one group.
func (a *Auditor) home(id string) uint64 {
	if p, ok := a.src.(Placement); ok {
		return p.Home(id)
	}
	return 0
}
