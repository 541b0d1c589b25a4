package public

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
)

// Act handles POST /v1/worlds/{world}/actions: one action, answered with its
// committed event (200 whatever its status) or an error. In a world whose
// rules restrict fields the event is cut to what its player may see
// (answer).
func (p *API) Act(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, p.Config().MaxBodyBytes)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	id, err := p.Identify(r)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	sight, err := p.Sight(r)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	a, err := edge.DecodeAction(body, r.PathValue("world"), id)
	if err == nil {
		err = p.CheckBan(a.World, a.Player)
	}
	if err == nil {
		err = p.Admit(r, a.Player, "http")
	}
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	err = p.RouteCall(a.World, edge.KindWrite, edge.HopOf(r), func(g edge.Group) error {
		ctx, cancel := p.RequestContext(r)
		defer cancel()
		ev, dup, err := g.Act(ctx, a)
		if err == nil {
			ev, err = p.answer(a.World, a.Player, ev, sight)
		}
		if err == nil {
			p.WriteJSON(w, http.StatusOK, edge.EventJSON(ev, dup))
		}
		return err
	}, func(rt edge.Route) error {
		return p.Relay(w, r, rt, http.MethodPost, withSight(edge.InternalActPath(a.World), sight), body)
	})
	if err != nil {
		p.WriteError(w, err, true)
	}
}

// batchRequest is the body of POST /v1/worlds/{world}/actions:batch.
type batchRequest struct {
	Actions []json.RawMessage `json:"actions"`
}

// batchResponse answers a batch: one item per action, in request order,
// each an event (wire.Event) or an ErrorBody.
type batchResponse struct {
	Results []any `json:"results"`
}

// ActBatch handles POST /v1/worlds/{world}/actions:batch: the actions are
// submitted concurrently, so the leader's batcher packs them into few log
// entries, and each is answered on its own. A malformed action fails only
// its own item. An item that meets a leadership change is answered
// not_leader (or outcome_unknown) for the client to retry with the same seq.
func (p *API) ActBatch(w http.ResponseWriter, r *http.Request) {
	id, err := p.Identify(r)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	sight, err := p.Sight(r)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	body, err := edge.ReadBody(w, r, p.Config().MaxBatchBodyBytes)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	var req batchRequest
	if err := edge.DecodeStrict(body, &req); err != nil {
		p.WriteError(w, err, true)
		return
	}
	switch {
	case len(req.Actions) == 0:
		p.WriteError(w, fmt.Errorf("%w: a batch needs at least one action", fsm.ErrMalformed), true)
		return
	case len(req.Actions) > p.Config().MaxBatchActions:
		p.WriteError(w, fmt.Errorf("%w: %d actions, limit %d", edge.ErrTooLarge, len(req.Actions), p.Config().MaxBatchActions), true)
		return
	}
	world := r.PathValue("world")
	err = p.RouteCall(world, edge.KindWrite, edge.HopOf(r), func(g edge.Group) error {
		p.WriteJSON(w, http.StatusOK, p.runBatch(r, g, world, id, sight, req.Actions))
		return nil
	}, func(rt edge.Route) error {
		return p.Relay(w, r, rt, http.MethodPost, withSight(edge.InternalBatchPath(world), sight), body)
	})
	if err != nil {
		p.WriteError(w, err, true)
	}
}

// runBatch runs a batch's actions on g, concurrently, and answers each.
func (p *API) runBatch(r *http.Request, g edge.Group, world string, id edge.Identity, sight edge.Sight, actions []json.RawMessage) batchResponse {
	results := make([]any, len(actions))
	sem := make(chan struct{}, p.Config().BatchConcurrency)
	var wg sync.WaitGroup
	for i, raw := range actions {
		a, err := edge.DecodeAction(raw, world, id)
		if err == nil {
			err = p.CheckBan(world, a.Player)
		}
		if err == nil {
			err = p.Admit(r, a.Player, "http") // one token per action
		}
		if err != nil {
			_, results[i] = p.ErrorFor(fmt.Errorf("action %d: %w", i, err), true)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// The request's recover does not reach this goroutine.
			defer func() {
				if v := recover(); v != nil {
					p.Log().Error("batch action panic", "panic", v, "stack", string(debug.Stack()))
					_, results[i] = p.ErrorFor(fmt.Errorf("%w: %v", edge.ErrInternal, v), true)
				}
			}()
			ctx, cancel := p.RequestContext(r)
			defer cancel()
			ev, dup, err := g.Act(ctx, a)
			if err == nil {
				ev, err = p.answer(world, a.Player, ev, sight)
			}
			if err != nil {
				_, results[i] = p.ErrorFor(err, true)
				return
			}
			results[i] = edge.EventJSON(ev, dup)
		})
	}
	wg.Wait()
	return batchResponse{Results: results}
}

// answer returns ev, the committed event of player's action in world, as
// the answer to the action: cut to what player may see in a world whose
// rules restrict fields (spectator.Access.Answer: a conflict's current
// values of a hidden field, a hidden counter's total are not the
// player's), whole for a caller who sees everything.
func (p *API) answer(world, player string, ev *fsm.Event, sight edge.Sight) (*fsm.Event, error) {
	if sight.All {
		return ev, nil
	}
	a, _, err := p.vis.Access(world)
	if errors.Is(err, fsm.ErrUnknownWorld) {
		// Deleted since it committed: its rules are gone with it, so the
		// answer keeps only the outcome.
		out := *ev
		out.Changes = nil
		return &out, nil
	}
	if err != nil || !a.Restricted() {
		return ev, err
	}
	view, _, err := a.Resolve(spectator.Viewer{Player: player})
	if err != nil {
		return nil, err
	}
	return a.Answer(view, ev, p.lookup(world), p.vis.TeamOf(world, a)), nil
}

// withSight returns path with the query that carries sight to the node a
// call is sent on to (edge.Sight.Query).
func withSight(path string, sight edge.Sight) string {
	if q := sight.Query().Encode(); q != "" {
		return path + "?" + q
	}
	return path
}
