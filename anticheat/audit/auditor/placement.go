package auditor

import "time"

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
	// Away reports whether world's incarnation inc, which Worlds does not
	// list, moved (or is moving) to another group, as far as this node
	// knows: it only words what a lookup of the world answers.
	Away(world string, inc uint64) bool
	// Deleted reports positive evidence that world's incarnation inc was
	// deleted: a group of this node applied its delete while it lived
	// there (not the drop of a world that moved away). Under a shard map
	// a world that Worlds no longer lists (or lists in another
	// incarnation) is not taken for deleted without it, since this
	// node's map and its groups catch up independently: its tree is kept
	// without a tombstone, no longer followed, and asked about again at
	// every scan.
	Deleted(world string, inc uint64) bool
}

// Settler is what a Source has that can tell when its world list is the
// node's: after a restart a group lists the worlds created since its
// last snapshot only once it applied its log again, and a shard map's
// groups are placed only once the map is known. Until then the auditor
// neither follows nor buries, and a lookup of a world it does not follow
// yet answers ErrNotReady; it logs that it waits (every WaitLogEvery)
// and Stats says so.
type Settler interface {
	Settled() bool
}

// WaitLogEvery is how often an auditor whose source has not settled logs
// that it waits.
const WaitLogEvery = 30 * time.Second

// home returns the group world's feed comes from (Placement), 0 for a
// source of one group.
func (a *Auditor) home(id string) uint64 {
	if p, ok := a.src.(Placement); ok {
		return p.Home(id)
	}
	return 0
}
