package public

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
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
// node is asked. Either answers the entity as the caller may see it
// (edge.Sight, the world's visibility rules): fields it may not see are
// gone with their versions, and an entity it may see nothing of is
// not_found.
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
	sight, err := p.Sight(r)
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	ctx, cancel := p.RequestContext(r)
	defer cancel()
	world := r.PathValue("world")
	v, err := p.Backend().Entity(ctx, world, r.PathValue("entity"), c)
	if err == nil {
		v, err = p.cut(world, v, sight)
	}
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	p.WriteJSON(w, http.StatusOK, newEntityJSON(v))
}

// LinearizableEntity reads an entity on its world's leader. A call sent
// on to the leader carries the caller's sight (edge.Sight.Query), so the
// leader cuts the entity as this node would.
func (p *API) LinearizableEntity(w http.ResponseWriter, r *http.Request) {
	sight, err := p.Sight(r)
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	world, id := r.PathValue("world"), r.PathValue("entity")
	err = p.RouteCall(world, edge.KindRead, edge.HopOf(r), func(g edge.Group) error {
		ctx, cancel := p.RequestContext(r)
		defer cancel()
		v, err := g.Entity(ctx, world, id, store.Linearizable)
		if err == nil {
			v, err = p.cut(world, v, sight)
		}
		if err == nil {
			p.WriteJSON(w, http.StatusOK, newEntityJSON(v))
		}
		return err
	}, func(rt edge.Route) error {
		return p.Relay(w, r, rt, http.MethodGet, withSight(edge.InternalEntityPath(world, id), sight), nil)
	})
	if err != nil {
		p.WriteError(w, err, false)
	}
}

// cut returns v, an entity of world, as sight may see it under the
// world's rules: fields it may not see gone (values, set elements,
// versions), or not_found when it may see none. A delayed view (a caster
// class) may not read the present: it reads through the event or watch
// streams, which hold events back (forbidden here).
func (p *API) cut(world string, v fsm.EntityView, sight edge.Sight) (fsm.EntityView, error) {
	if sight.All {
		return v, nil
	}
	a, _, err := p.vis.Access(world)
	if err != nil {
		return v, err
	}
	view, delay, filter, err := edge.ViewOf(a, sight)
	switch {
	case err != nil:
		return v, err
	case !filter:
		return v, nil
	case delay > 0:
		return v, fmt.Errorf("%w: this view is delayed by %s: read the world through its event or watch stream", edge.ErrForbidden, delay)
	}
	out, ok := a.Entity(view, v, p.lookup(world), p.vis.TeamOf(world, a))
	if !ok {
		return v, fmt.Errorf("%w: entity %s", fsm.ErrNotFound, v.ID)
	}
	return out, nil
}

// lookup reads world's entities on this node (stale), for what deciding
// who sees a field needs (owners, teams).
func (p *API) lookup(world string) spectator.Lookup {
	return func(id string) (fsm.EntityView, bool) {
		e, err := p.Backend().Entity(context.Background(), world, id, store.Stale)
		return e, err == nil
	}
}
