package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// shardMapper is what the shard map route needs of the backend:
// *shard.Backend (gsd --shard-map, with or without --meta). A single-group
// backend answers not_supported.
type shardMapper interface {
	ShardMap() wire.ShardMap
}

// shardEditor is what the shard map's write routes need of the backend:
// gsd --meta's, which proposes to the meta group (forwarded to its
// leader by the meta group itself). Its errors wrap fsm.ErrMalformed,
// fsm.ErrNotFound, edge.ErrConflict or store.ErrNotLeader.
type shardEditor interface {
	CreateShard(ctx context.Context, c wire.ShardCreate) (wire.ShardInfo, error)
	RemoveShard(ctx context.Context, id uint64) error
	PlaceWorld(ctx context.Context, p wire.WorldPlacement) (wire.WorldPlacement, error)
	RemoveMapNode(ctx context.Context, id string) error
	AddMapNode(ctx context.Context, n wire.ShardNode) error
}

// Shards handles GET /v1/cluster/shards: the node's shard map (from the
// meta group with gsd --meta), with each shard's voters, last known
// leader, listed worlds and reported players.
func (a *API) Shards(w http.ResponseWriter, r *http.Request) {
	m, ok := a.Backend().(shardMapper)
	if !ok {
		a.WriteError(w, fmt.Errorf("%w: this node runs no shard map", fsm.ErrNotSupported), false)
		return
	}
	a.WriteJSON(w, http.StatusOK, m.ShardMap())
}

func (a *API) shardEditor(w http.ResponseWriter) (shardEditor, bool) {
	e, ok := a.Backend().(shardEditor)
	if !ok {
		a.notMeta(w)
	}
	return e, ok
}

// notMeta answers a map change on a node whose backend cannot make it.
func (a *API) notMeta(w http.ResponseWriter) {
	a.WriteError(w, fmt.Errorf("%w: this node's shard map is not the meta group's (gsd --meta)", fsm.ErrNotSupported), true)
}

// shardID reads the route's shard id, answering 400 when it is not one.
func (a *API) shardID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		a.WriteError(w, fmt.Errorf("%w: shard id %q", fsm.ErrMalformed, r.PathValue("id")), true)
		return 0, false
	}
	return id, true
}

// CreateShard handles POST /v1/cluster/shards: a new shard in the meta
// map; its voters start it (they open the shards the map gives them).
func (a *API) CreateShard(w http.ResponseWriter, r *http.Request) {
	e, ok := a.shardEditor(w)
	if !ok {
		return
	}
	var c wire.ShardCreate
	if !a.ReadJSON(w, r, a.Config().MaxBodyBytes, &c) {
		return
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	s, err := e.CreateShard(ctx, c)
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.WriteJSON(w, http.StatusCreated, s)
}

// RemoveShard handles DELETE /v1/cluster/shards/{id}: refused (conflict)
// while the map lists worlds on it. Its voters keep running it.
func (a *API) RemoveShard(w http.ResponseWriter, r *http.Request) {
	e, ok := a.shardEditor(w)
	if !ok {
		return
	}
	id, ok := a.shardID(w, r)
	if !ok {
		return
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	if err := e.RemoveShard(ctx, id); err != nil {
		a.WriteError(w, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// PlaceWorld handles POST /v1/cluster/shards/worlds: a world on the shard
// named, or, without one, where the meta group places it; with expect
// (and a shard), only while the world is on shard expect now (else
// conflict). Place a world before creating it: a world created first
// lives on the shard its name hashes to.
func (a *API) PlaceWorld(w http.ResponseWriter, r *http.Request) {
	e, ok := a.shardEditor(w)
	if !ok {
		return
	}
	var p wire.WorldPlacement
	if !a.ReadJSON(w, r, a.Config().MaxBodyBytes, &p) {
		return
	}
	if err := edge.CheckName("world", p.World); err != nil {
		a.WriteError(w, err, true)
		return
	}
	if p.Expect != nil && p.Shard == nil {
		a.WriteError(w, fmt.Errorf("%w: expect needs a shard: a placement by headroom keeps a placed world where it is", fsm.ErrMalformed), true)
		return
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	got, err := e.PlaceWorld(ctx, p)
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.WriteJSON(w, http.StatusOK, got)
}

// RemoveMapNode handles DELETE /v1/cluster/shards/nodes/{id}: the node
// leaves the meta map (after gsdctl node evacuate); refused (conflict,
// naming the shards) while it is a shard's voter or joining one, and
// not_found for a node the map does not hold. The node's membership of
// group 0 is DELETE /v1/cluster/nodes/{id}'s.
func (a *API) RemoveMapNode(w http.ResponseWriter, r *http.Request) {
	e, ok := a.shardEditor(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := edge.CheckName("node", id); err != nil {
		a.WriteError(w, err, true)
		return
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	if err := e.RemoveMapNode(ctx, id); err != nil {
		a.WriteError(w, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AddMapNode handles POST /v1/cluster/shards/nodes: a node (id, raft and
// http addresses, region) joins the meta map, or changes its addresses
// there; the meta group then adds it to its own members and placement
// may give it voters. A bad address is malformed.
func (a *API) AddMapNode(w http.ResponseWriter, r *http.Request) {
	e, ok := a.shardEditor(w)
	if !ok {
		return
	}
	var n wire.ShardNode
	if !a.ReadJSON(w, r, a.Config().MaxBodyBytes, &n) {
		return
	}
	if err := edge.CheckName("node", n.ID); err != nil {
		a.WriteError(w, err, true)
		return
	}
	if n.Down {
		a.WriteError(w, fmt.Errorf("%w: down is not set by adding a node (POST %s does)", fsm.ErrMalformed, wire.PathShardNodesDown), true)
		return
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	if err := e.AddMapNode(ctx, n); err != nil {
		a.WriteError(w, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
