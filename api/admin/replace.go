package admin

import (
	"context"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/wire"
)

// voterReplacer is what the voter replacement route needs of the
// backend: gsd --meta's. Its errors wrap fsm.ErrMalformed,
// fsm.ErrNotFound, edge.ErrConflict, store.ErrVersionGate or
// store.ErrNotLeader.
type voterReplacer interface {
	ReplaceVoter(ctx context.Context, shard uint64, r wire.VoterReplace) (wire.VoterReplaced, error)
}

// ReplaceVoter handles POST /v1/cluster/shards/{id}/replace: a node
// takes another's seat in the shard (node evacuation). It answers once
// the meta map lists the replacement; the shard's nodes then carry it
// out (the new node joins and catches up, then the old one leaves), and
// the map's voters show when it is done. Repeating it answers the
// replacement under way.
func (a *API) ReplaceVoter(w http.ResponseWriter, r *http.Request) {
	e, ok := a.Backend().(voterReplacer)
	if !ok {
		a.notMeta(w)
		return
	}
	id, ok := a.shardID(w, r)
	if !ok {
		return
	}
	var body wire.VoterReplace
	if !a.ReadJSON(w, r, a.Config().MaxBodyBytes, &body) {
		return
	}
	if err := edge.CheckName("old", body.Old); err != nil {
		a.WriteError(w, err, true)
		return
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	got, err := e.ReplaceVoter(ctx, id, body)
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.WriteJSON(w, http.StatusOK, got)
}
