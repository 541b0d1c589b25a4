package admin

import (
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/wire"
)

// DeleteWorld handles DELETE /v1/worlds/{world}[?incarnation=N]: the
// world and everything keyed by it go on every replica (its state,
// sessions, idempotency windows, bans, player data, hash history and its
// events in every node's archive); connected players' connections close
// with unknown_world, later requests for it answer unknown_world. With
// incarnation, only that incarnation goes (a re-created world stays). The
// answer is the world as it was.
func (a *API) DeleteWorld(w http.ResponseWriter, r *http.Request) {
	inc, err := edge.ParseSeq(r, "incarnation")
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	world := r.PathValue("world")
	path := edge.InternalWorldPath(world, "")
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	a.OnLeader(w, r, world, edge.KindWrite, path, nil, func(g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		wi, err := g.DeleteWorld(ctx, world, inc)
		if err != nil {
			return err
		}
		a.WriteJSON(w, http.StatusOK, wire.World{ID: wi.ID, Origin: wi.Origin, Seq: wi.Seq, Index: wi.Index,
			Entities: wi.Entities, Players: wi.Players, Hash: wire.Hash(wire.HashString(wi.Hash)), Rules: wi.Rules.Wire(),
			RulesVersion: wi.RulesVersion, Incarnation: wi.Incarnation, Sessions: wi.Sessions})
		return nil
	})
}
