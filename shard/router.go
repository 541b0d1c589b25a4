package shard

import (
	"errors"
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

// View is a shard map as a MapSource publishes it, with the last known
// leader of each group. A published View is never modified: a source
// publishes a new one instead.
type View struct {
	Map *Map // validated; may have no shards yet (then no world routes)
	// Leaders are the groups' last known leaders (node ids) as the meta
	// group heard them from the nodes; nil for a static map. A hint: the
	// node named may have lost the leadership since.
	Leaders map[uint64]string
	// Players are each shard's players as its leader last reported them
	// to the meta group; nil for a static map.
	Players map[uint64]uint64
	// Events are each shard's events per second, as reported likewise.
	Events map[uint64]uint64
	// Replicated says the map is the meta group's (else a static file).
	Replicated bool
	// Joining names, by shard, the node taking a voter's seat while the
	// replacement is under way (shard/meta's replace_voter); nil for a
	// static map.
	Joining map[uint64]string
}

// MapSource gives the Router the current shard map. View is on the path
// of every request, so it must be cheap (an atomic load) and not block.
type MapSource interface {
	View() *View
}

// StaticMap is a MapSource of a map that never changes (gsd --shard-map).
type StaticMap struct{ v *View }

// NewStaticMap returns the source of m, which must have been validated.
func NewStaticMap(m *Map) *StaticMap { return &StaticMap{v: &View{Map: m}} }

// View returns the map.
func (s *StaticMap) View() *View { return s.v }

// errNoShards: the map holds no shard yet, so no world has a home.
var errNoShards = errors.New("the shard map has no shards yet")

// Router places worlds with a shard map and finds their groups' leaders
// among the Manager's groups, or from the map's leader hints for groups
// this node does not run: the multi-group router behind the edge's
// Router (cmd/gsd adapts Locate to api/edge.Route; shard does not import
// the edge).
type Router struct {
	mgr *Manager
	src MapSource
}

// NewRouter routes with the static map smap (validated) over mgr's
// groups.
func NewRouter(mgr *Manager, smap *Map) *Router { return NewRouterWith(mgr, NewStaticMap(smap)) }

// NewRouterWith routes with the map src publishes (the meta group's,
// shard/meta) over mgr's groups.
func NewRouterWith(mgr *Manager, src MapSource) *Router { return &Router{mgr: mgr, src: src} }

// Map returns the router's current shard map.
func (r *Router) Map() *Map { return r.src.View().Map }

// groupOf returns the group that holds world in v ("" is the membership
// group).
func groupOf(v *View, world string) (uint64, error) {
	if world == "" {
		return v.Map.Membership, nil
	}
	return shardOf(v, world)
}

// shardOf returns the shard that holds world in v.
func shardOf(v *View, world string) (uint64, error) {
	if len(v.Map.Shards) == 0 {
		return 0, fmt.Errorf("%w: world %q: %w", store.ErrNotLeader, world, errNoShards)
	}
	return v.Map.ShardOf(world), nil
}

// Locate answers where world's commands go; world "" is the membership
// group. It does not block: it reads the current map, the group's Raft
// state and the map's leader hints. The errors wrap store.ErrNotLeader
// (the edge answers 503 not_leader, a retry may succeed): no leader of
// the group is known, the map has no shards yet, or this node does not
// run the world's group and the map has no hint of its leader
// (ErrUnknownGroup too).
func (r *Router) Locate(world string) (Location, error) {
	v := r.src.View()
	g, err := groupOf(v, world)
	if err != nil {
		return Location{}, err
	}
	loc, err := r.locate(v, g)
	if err != nil && errors.Is(err, ErrUnknownGroup) {
		return Location{}, fmt.Errorf("%w: world %q is on group %d: %w", store.ErrNotLeader, world, g, ErrUnknownGroup)
	}
	return loc, err
}

// LocateIn answers as Locate, except that a world the current map does
// not place by name goes to shard g, when the map has it: the shard a
// node whose map places the world chose (a placement reaches the nodes'
// maps at different times, and this node's hash route would pick
// another shard). A world the map places goes where it says: that is
// this node's knowledge, and a world moved away is fenced at its old
// home whichever map is stale.
func (r *Router) LocateIn(world string, g uint64) (Location, error) {
	v := r.src.View()
	if _, placed := v.Map.Worlds[world]; placed || world == "" {
		return r.Locate(world)
	}
	if _, ok := v.Map.Shard(g); !ok {
		return r.Locate(world)
	}
	loc, err := r.locate(v, g)
	if err != nil && errors.Is(err, ErrUnknownGroup) {
		return Location{}, fmt.Errorf("%w: world %q is on group %d: %w", store.ErrNotLeader, world, g, ErrUnknownGroup)
	}
	return loc, err
}

// ShardOf returns the shard that holds world in the current map.
func (r *Router) ShardOf(world string) (uint64, error) { return shardOf(r.src.View(), world) }

// LocateGroup answers where group g's commands go, as Locate does for a
// world's group: a move's import goes to the target group's leader.
func (r *Router) LocateGroup(g uint64) (Location, error) { return r.locate(r.src.View(), g) }

func (r *Router) locate(v *View, g uint64) (Location, error) {
	st, ok := r.mgr.Group(g)
	if !ok {
		// Not a replica: only the map's hint knows the leader. A hint
		// naming this node is stale (it does not run the group).
		if id := v.Leaders[g]; id != "" && id != r.mgr.cfg.Store.ID {
			if addr := v.Map.Nodes[id].HTTP; addr != "" {
				return Location{Group: g, Node: id, Addr: addr}, nil
			}
		}
		return Location{}, fmt.Errorf("%w: group %d: %w", store.ErrNotLeader, g, ErrUnknownGroup)
	}
	if st.IsLeader() {
		return Location{Group: g, Store: st}, nil
	}
	id, addr := st.Leader()
	if addr == "" && id != "" {
		// The group's node table learns a leader's address once it has
		// led; the map knows it from the start.
		addr = v.Map.Nodes[id].HTTP
	}
	if addr == "" {
		return Location{}, fmt.Errorf("%w: no known leader of group %d", store.ErrNotLeader, g)
	}
	return Location{Group: g, Node: id, Addr: addr}, nil
}
