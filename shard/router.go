package shard

import (
	"fmt"

	"github.com/gsd-dev/gsd/store"
)

// Location is where a world's commands go: this node's Store of the
// world's group when this node leads it, else the node that does.
type Location struct {
	Group uint64       // the group that holds the world
	Store *store.Store // set when this node leads Group
	Node  string       // otherwise, the leader's node id
	Addr  string       // and its HTTP address
}

// Router places worlds with a shard map and finds their groups' leaders
// among the Manager's groups: the multi-group router behind the edge's
// Router (cmd/gsd adapts Locate to api/edge.Route; shard does not import
// the edge).
type Router struct {
	mgr  *Manager
	smap *Map
}

// NewRouter routes with smap (validated) over mgr's groups.
func NewRouter(mgr *Manager, smap *Map) *Router { return &Router{mgr: mgr, smap: smap} }

// Map returns the router's shard map.
func (r *Router) Map() *Map { return r.smap }

// Locate answers where world's commands go; world "" is the membership
// group. It does not block: it reads the group's Raft state and the map.
// The errors wrap store.ErrNotLeader (the edge answers 503 not_leader, a
// retry may succeed): no leader of the group is known, or this node does
// not run the world's group (ErrUnknownGroup too) — only a replica learns
// its group's leader until the meta group gives every node the leaders of
// all groups.
func (r *Router) Locate(world string) (Location, error) {
	g := r.smap.Membership
	if world != "" {
		g = r.smap.ShardOf(world)
	}
	st, ok := r.mgr.Group(g)
	if !ok {
		return Location{}, fmt.Errorf("%w: world %q is on group %d: %w", store.ErrNotLeader, world, g, ErrUnknownGroup)
	}
	if st.IsLeader() {
		return Location{Group: g, Store: st}, nil
	}
	id, addr := st.Leader()
	if addr == "" && id != "" {
		// The group's node table learns a leader's address once it has
		// led; the map knows it from the start.
		addr = r.smap.Nodes[id].HTTP
	}
	if addr == "" {
		return Location{}, fmt.Errorf("%w: no known leader of group %d", store.ErrNotLeader, g)
	}
	return Location{Group: g, Node: id, Addr: addr}, nil
}
