package admin

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// nodeMarker is what the down route needs of the backend: gsd --meta's.
// Its errors wrap fsm.ErrMalformed, fsm.ErrNotFound, edge.ErrConflict,
// store.ErrVersionGate or store.ErrNotLeader.
type nodeMarker interface {
	MarkNodesDown(ctx context.Context, d wire.NodesDown) error
}

// MarkNodesDown handles POST /v1/cluster/shards/nodes:down: nodes that
// are down for good leave the meta group, so its version gate no longer
// waits for them and their shards can be evacuated. A node that answers
// is refused (conflict), as is one the map does not hold (not_found).
func (a *API) MarkNodesDown(w http.ResponseWriter, r *http.Request) {
	e, ok := a.Backend().(nodeMarker)
	if !ok {
		a.notMeta(w)
		return
	}
	var body wire.NodesDown
	if !a.ReadJSON(w, r, a.Config().MaxBodyBytes, &body) {
		return
	}
	if len(body.Nodes) == 0 {
		a.WriteError(w, fmt.Errorf("%w: give the nodes that are down", fsm.ErrMalformed), true)
		return
	}
	for _, n := range body.Nodes {
		if err := edge.CheckName("node", n); err != nil {
			a.WriteError(w, err, true)
			return
		}
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	if err := e.MarkNodesDown(ctx, body); err != nil {
		a.WriteError(w, err, true)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
