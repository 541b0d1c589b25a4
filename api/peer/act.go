package peer

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
)

// ActRoute handles POST /internal/v1/worlds/{world}/actions:forward, the
// compact act route through which other nodes run their play
// connections' actions on the world's leader (edge/actforward.go says why
// it is shaped so): the body is the actions in the log's binary form, the
// answer one result per action. Only forwarded requests are served, and
// never sent on.
func (p *API) ActRoute(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(edge.HeaderActRoute, "1") // this node has the route (a 404 too)
	if !p.ForwardedOnly(w, r) {
		return
	}
	world := r.PathValue("world")
	actions, err := p.actRouteActions(w, r, world)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	err = p.RouteCall(world, edge.KindWrite, edge.PeerHop(r), func(g edge.Group) error {
		results := make([]edge.ActRouteResult, len(actions))
		p.runActs(r, g, actions, results)
		p.WriteJSON(w, http.StatusOK, edge.ActRouteAnswer{Results: results})
		return nil
	}, nil)
	if err != nil {
		p.WriteError(w, err, true)
	}
}

// actRouteActions decodes the compact act route's actions of world and
// settles who each acts as. A call from a peer beyond doubt (a cluster
// secret, which checkAccess compared, or mutual TLS) is trusted with the
// player and role its actions carry: the calling node verified the
// player's token at the hello and refuses an action naming another
// player. Any other caller may be anyone who reaches the port: with auth
// on the token it passes on is verified here and must name each action's
// player, whose role it gives; with auth off actions carry no role, as on
// the public route.
func (p *API) actRouteActions(w http.ResponseWriter, r *http.Request, world string) ([]*fsm.Action, error) {
	cfg := p.Config()
	body, err := edge.ReadBody(w, r, cfg.MaxBatchBodyBytes)
	if err != nil {
		return nil, err
	}
	b, err := fsm.DecodeBatch(body)
	if err != nil {
		return nil, err
	}
	switch {
	case len(b.Commands) == 0:
		return nil, fmt.Errorf("%w: no action", fsm.ErrMalformed)
	case len(b.Commands) > cfg.MaxBatchActions:
		return nil, fmt.Errorf("%w: %d actions, limit %d", edge.ErrTooLarge, len(b.Commands), cfg.MaxBatchActions)
	}
	trusted := len(cfg.ClusterSecret) > 0 || cfg.PeerCert != nil
	var id edge.Identity
	if !trusted && p.Auth() != nil {
		if id, err = p.Identify(r); err != nil {
			return nil, err
		}
	}
	actions := make([]*fsm.Action, len(b.Commands))
	for i, c := range b.Commands {
		a := c.Action
		switch {
		case c.Kind != fsm.CmdAction:
			return nil, fmt.Errorf("%w: command %d is not an action (kind %d)", fsm.ErrMalformed, i, c.Kind)
		case a.World != world:
			return nil, fmt.Errorf("%w: action %d is of world %q, the path names %q", fsm.ErrMalformed, i, a.World, world)
		case trusted:
		case p.Auth() == nil:
			a.Role = ""
		case a.Player != id.Player:
			return nil, fmt.Errorf("%w: the token is for player %q, the action names %q", edge.ErrForbidden, id.Player, a.Player)
		default:
			a.Role = id.Role
		}
		actions[i] = a
	}
	return actions, nil
}

// runActs runs actions on g and puts each one's result in results: the
// first here, the others concurrently (at most BatchConcurrency at once),
// so that the group's batcher packs them.
func (p *API) runActs(r *http.Request, g edge.Group, actions []*fsm.Action, results []edge.ActRouteResult) {
	if len(actions) == 1 {
		results[0] = p.runAct(r, g, actions[0])
		return
	}
	sem := make(chan struct{}, p.Config().BatchConcurrency)
	var wg sync.WaitGroup
	for i, a := range actions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// The request's recover does not reach this goroutine.
			defer func() {
				if v := recover(); v != nil {
					p.Log().Error("forwarded action panic", "panic", v, "stack", string(debug.Stack()))
					results[i] = p.actResult(fmt.Errorf("%w: %v", edge.ErrInternal, v))
				}
			}()
			results[i] = p.runAct(r, g, a)
		})
	}
	wg.Wait()
}

// runAct runs one action: checked as the public route checks it (valid,
// its player not banned; the calling node admitted it to its rate limit)
// and acted on g, answered with the uncut event.
func (p *API) runAct(r *http.Request, g edge.Group, a *fsm.Action) edge.ActRouteResult {
	err := a.Validate()
	if err == nil {
		err = p.CheckBan(a.World, a.Player)
	}
	if err != nil {
		return p.actResult(err)
	}
	ctx, cancel := p.RequestContext(r)
	defer cancel()
	ev, dup, err := g.Act(ctx, a)
	if err != nil {
		return p.actResult(err)
	}
	e := edge.EventJSON(ev, dup)
	return edge.ActRouteResult{Event: &e}
}

// actResult is err as an action's result.
func (p *API) actResult(err error) edge.ActRouteResult {
	status, body := p.ErrorFor(err, true)
	return edge.ActRouteResult{Status: status, Code: body.Code, Error: body.Error}
}
