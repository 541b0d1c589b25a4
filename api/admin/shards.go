package admin

import (
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// shardMapper is what the shard map route needs of the backend:
// *shard.Backend (gsd --shard-map, with or without --meta). A single-group
// backend answers not_supported.
type shardMapper interface {
	ShardMap() wire.ShardMap
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
