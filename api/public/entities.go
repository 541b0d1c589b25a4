package public

import (
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

func newEntityJSON(v fsm.EntityView) wire.Entity {
	out := wire.Entity{ID: v.ID, Version: v.Version, Seq: v.Seq,
		Fields: make(map[string]any, len(v.Fields)), Versions: make(map[string]uint64, len(v.Fields))}
	for _, f := range v.Fields {
		out.Fields[f.Name] = f.Plain()
		out.Versions[f.Name] = f.Version
	}
	return out
}

// Entity handles GET /v1/worlds/{world}/entities/{entity}?consistency=...
// A linearizable read (the default) is served by the world's leader,
// through this node's internal call if need be; a stale read by whichever
// node is asked.
func (p *API) Entity(w http.ResponseWriter, r *http.Request) {
	c, err := store.ParseConsistency(r.URL.Query().Get("consistency"))
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	if c == store.Linearizable && !store.BrokenLinearizableReads {
		p.LinearizableEntity(w, r)
		return
	}
	ctx, cancel := p.RequestContext(r)
	defer cancel()
	v, err := p.Backend().Entity(ctx, r.PathValue("world"), r.PathValue("entity"), c)
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	p.WriteJSON(w, http.StatusOK, newEntityJSON(v))
}

// LinearizableEntity reads an entity on its world's leader.
func (p *API) LinearizableEntity(w http.ResponseWriter, r *http.Request) {
	world, id := r.PathValue("world"), r.PathValue("entity")
	err := p.RouteCall(world, edge.KindRead, edge.IsForwarded(r), func(g edge.Group) error {
		ctx, cancel := p.RequestContext(r)
		defer cancel()
		v, err := g.Entity(ctx, world, id, store.Linearizable)
		if err == nil {
			p.WriteJSON(w, http.StatusOK, newEntityJSON(v))
		}
		return err
	}, func(rt edge.Route) error {
		return p.Relay(w, r, rt, http.MethodGet, edge.InternalEntityPath(world, id), nil)
	})
	if err != nil {
		p.WriteError(w, err, false)
	}
}
