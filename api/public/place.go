package public

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// worldPlacer is what a world's creation needs of a backend that places
// new worlds (gsd --meta's): whether the shard map lists a world, and
// placing one (the meta group's place_world: the shard with the most
// headroom, or the shard it has if placed already).
type worldPlacer interface {
	Listed(world string) bool
	PlaceNew(ctx context.Context, world string) (uint64, error)
}

// probeEntity is the entity whose linearizable read tells whether a world
// exists at its group's leader: not_found (or the entity) if it does,
// unknown_world if not.
const probeEntity = "gsd.place.probe"

// placeNew places world, about to be created, in the shard map when the
// backend places worlds and the map does not list it, unless it exists
// already on the shard its name hashes to (a world created before
// placement: it stays there, and its creation answers world_exists as
// before). Two creations of one name both place it; the meta group keeps
// the first placement, so both go to one shard and one of them creates
// the world. A forwarded creation was placed by the node that forwarded
// it.
func (p *API) placeNew(ctx context.Context, r *http.Request, world string) error {
	pl, ok := p.Backend().(worldPlacer)
	if !ok || edge.IsForwarded(r) || pl.Listed(world) {
		return nil
	}
	exists, err := p.worldExists(ctx, world)
	if err != nil || exists {
		return err
	}
	_, err = pl.PlaceNew(ctx, world)
	return err
}

// worldExists asks the leader of world's group (where the map places it
// now) whether the world exists.
func (p *API) worldExists(ctx context.Context, world string) (bool, error) {
	var exists bool
	answer := func(err error) error {
		switch {
		case err == nil || errors.Is(err, fsm.ErrNotFound):
			exists = true
		case errors.Is(err, fsm.ErrUnknownWorld):
		default:
			return err
		}
		return nil
	}
	err := p.RouteCall(world, edge.KindRead, edge.NoHop, func(g edge.Group) error {
		_, err := g.Entity(ctx, world, probeEntity, store.Linearizable)
		return answer(err)
	}, func(rt edge.Route) error {
		var v map[string]any
		err := p.CallNode(ctx, rt, http.MethodGet, edge.InternalEntityPath(world, probeEntity), nil, "", &v)
		if re, ok := errors.AsType[*edge.RemoteError](err); ok {
			switch re.Code {
			case fsm.CodeNotFound:
				return answer(fsm.ErrNotFound)
			case fsm.CodeUnknownWorld:
				return answer(fsm.ErrUnknownWorld)
			}
		}
		return answer(err)
	})
	if err != nil {
		return false, fmt.Errorf("place %s: does it exist: %w", world, err)
	}
	return exists, nil
}
