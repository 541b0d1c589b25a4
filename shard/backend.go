package shard

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Backend serves the edge's node-local reads (api/edge.Backend) over the
// node's groups: a world's stale reads, hashes, event feed, sessions and
// bans come from this node's replica of the world's group; the node's own
// status, readiness and snapshot from the membership group (the node
// table's). A world whose group this node does not run answers
// store.ErrNotLeader (and ErrUnknownGroup), as the Router does.
type Backend struct {
	r      *Router
	home   *store.Store
	copied movedCopies // archivemove.go
}

// NewBackend returns the Backend of r's node; the node must run r's
// membership group.
func NewBackend(r *Router) (*Backend, error) {
	membership := r.Map().Membership
	home, ok := r.mgr.Group(membership)
	if !ok {
		return nil, fmt.Errorf("shard backend: membership group %d: %w", membership, ErrUnknownGroup)
	}
	return &Backend{r: r, home: home}, nil
}

// group returns this node's replica of world's group.
func (b *Backend) group(world string) (*store.Store, error) {
	g, err := shardOf(b.r.src.View(), world)
	if err != nil {
		return nil, err
	}
	st, ok := b.r.mgr.Group(g)
	if !ok {
		return nil, fmt.Errorf("%w: world %q is on group %d: %w", store.ErrNotLeader, world, g, ErrUnknownGroup)
	}
	return st, nil
}

// Worlds lists the worlds of every group this node runs, by id, each from
// the group the map places it on, as World reads it: a world that moved
// between two groups of this node (migrate.go) is on both, fenced on the
// old one until dropped there, imported on the new one.
func (b *Backend) Worlds() []fsm.WorldInfo {
	v := b.r.src.View()
	var out []fsm.WorldInfo
	for _, g := range b.r.mgr.Groups() {
		if st, ok := b.r.mgr.Group(g); ok {
			for _, w := range st.Worlds() {
				// A map without shards yet places nothing: list it all.
				if h, err := shardOf(v, w.ID); err != nil || h == g {
					out = append(out, w)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b fsm.WorldInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// World returns world's summary from its group on this node.
func (b *Backend) World(world string) (fsm.WorldInfo, error) {
	st, err := b.group(world)
	if err != nil {
		return fsm.WorldInfo{}, err
	}
	return st.World(world)
}

// HeldWorld returns world's summary from the group the map places it on,
// or else from any group of this node that holds a copy (fenced by a move
// to a group this node does not run): edge.HeldWorlds, so that the audit
// tree this node keeps of a moved world is guarded by its rules.
func (b *Backend) HeldWorld(world string) (fsm.WorldInfo, bool) {
	if w, err := b.World(world); err == nil {
		return w, true
	}
	for _, id := range b.r.mgr.Groups() {
		if st, ok := b.r.mgr.Group(id); ok {
			if w, err := st.World(world); err == nil {
				return w, true
			}
		}
	}
	return fsm.WorldInfo{}, false
}

// Entity reads an entity from world's group on this node.
func (b *Backend) Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error) {
	st, err := b.group(world)
	if err != nil {
		return fsm.EntityView{}, err
	}
	return st.Entity(ctx, world, id, c)
}

// Hash returns world's state hash at seq from its group on this node.
func (b *Backend) Hash(world string, seq uint64) (fsm.HashPoint, error) {
	st, err := b.group(world)
	if err != nil {
		return fsm.HashPoint{}, err
	}
	return st.Hash(world, seq)
}

// Subscribe follows world's events from its group on this node, across
// the world's moves to groups this node runs (follow.go).
func (b *Backend) Subscribe(world string, from uint64) (*store.Subscription, error) {
	st, err := b.group(world)
	if err != nil {
		return nil, err
	}
	return b.subscribe(st, world, from)
}

// SessionInfo reads a session of world from its group on this node.
func (b *Backend) SessionInfo(world, id string) (fsm.SessionInfo, error) {
	st, err := b.group(world)
	if err != nil {
		return fsm.SessionInfo{}, err
	}
	return st.SessionInfo(world, id)
}

// Sessions lists world's sessions from its group on this node.
func (b *Backend) Sessions(world string) ([]fsm.SessionInfo, error) {
	st, err := b.group(world)
	if err != nil {
		return nil, err
	}
	return st.Sessions(world)
}

// Banned reports whether player is banned from world; a world whose group
// this node does not run reports no ban (the group's leader checks again).
func (b *Backend) Banned(world, player string) (string, bool) {
	st, err := b.group(world)
	if err != nil {
		return "", false
	}
	return st.Banned(world, player)
}

// Bans lists world's bans from its group on this node.
func (b *Backend) Bans(world string) ([]fsm.Ban, error) {
	st, err := b.group(world)
	if err != nil {
		return nil, err
	}
	return st.Bans(world)
}

// Status is the membership group's status on this node.
func (b *Backend) Status() store.Status { return b.home.Status() }

// Ready reports whether the membership group knows a leader.
func (b *Backend) Ready() bool { return b.home.Ready() }

// Snapshot snapshots the membership group on this node.
func (b *Backend) Snapshot(ctx context.Context) (uint64, error) { return b.home.Snapshot(ctx) }

// Entities reads world's entities and their seq in this node's replica of
// its group (stale: a keyframe's state).
func (b *Backend) Entities(world string) ([]fsm.EntityView, uint64, error) {
	st, err := b.group(world)
	if err != nil {
		return nil, 0, err
	}
	return st.Entities(world)
}

// Event returns one committed event of world if this node's replica of
// its group holds it.
func (b *Backend) Event(world string, seq uint64) (*fsm.Event, bool) {
	st, err := b.group(world)
	if err != nil {
		return nil, false
	}
	return st.Event(world, seq)
}
